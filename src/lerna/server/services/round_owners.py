"""Which task and app a round belongs to, remembered per process.

A round's task (and so its app) is fixed when the round is created, so once read it can be
reused by every later request: the locked paths lock the task without first reading the
round, and a status poll checks the device's app without reading the task. A stale entry (a
round deleted with its app, its id reused) is caught by the callers, which compare it with the
rows they read anyway and then ask again with ``fresh``.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lerna.server.models import MLTask, Round
from lerna.server.services.per_engine import PerEngine

# per engine (see ``per_engine``): round id -> (task id, app id)
_owners: PerEngine[dict[int, tuple[int, int]]] = PerEngine(dict)


def owner(session: Session, round_id: int, *, fresh: bool = False) -> tuple[int, int] | None:
    """(task id, app id) of the round, or None when there is no such round; ``fresh`` reads
    the database even when an entry exists (the caller found that it disagreed)."""
    table = _owners.of(session)
    if table is not None and not fresh and (found := table.get(round_id)) is not None:
        return found
    row = session.execute(
        select(Round.task_id, MLTask.app_id)
        .join(MLTask, MLTask.id == Round.task_id)
        .where(Round.id == round_id)
    ).first()
    if row is None:
        if table is not None:
            table.pop(round_id, None)
        return None
    found = (int(row[0]), int(row[1]))
    if table is not None:
        table[round_id] = found
    return found
