"""Persistence of engines, events, item properties, jobs and models.

Each public method is one transaction: a bulk import or an event batch is written whole or not
at all. The store knows nothing of HTTP or of the in-memory engine state; the service keeps the
two in step (write here first, then update memory).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from lerna.recommender.db import EngineRow, EventRow, ItemRow, JobRow, ModelRow

Op = tuple[str, str, Any]
"""One write: ``("insert", user, (event, item, time))``, ``("set", item, props)``,
``("unset", item, names)``, ``("delete_item", item, None)`` or ``("delete_user", user, None)``."""


@dataclass
class EventBatch:
    """Writes of one request, in the order they must apply (a bulk file may interleave them)."""

    ops: list[Op] = field(default_factory=list)


@dataclass(frozen=True)
class JobInfo:
    id: str
    engine_id: str
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    message: str


def _job(row: JobRow) -> JobInfo:
    return JobInfo(
        row.id, row.engine_id, row.status, row.created_at, row.started_at, row.finished_at,
        row.message,
    )  # fmt: skip


class RecommenderStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._sessions()

    # engines
    def get_engine(self, engine_id: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.get(EngineRow, engine_id)
            return None if row is None else dict(row.config)

    def list_engines(self) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(EngineRow.id).order_by(EngineRow.id)))

    def put_engine(self, engine_id: str, config: dict[str, Any], create: bool) -> bool:
        """Insert (``create``) or update; returns False when that is impossible (exists / absent)."""
        now = time.time()
        with self.session() as s, s.begin():
            row = s.get(EngineRow, engine_id)
            if create:
                if row is not None:
                    return False
                s.add(EngineRow(id=engine_id, config=config, created_at=now, updated_at=now))
            else:
                if row is None:
                    return False
                row.config = config
                row.updated_at = now
            return True

    def delete_engine(self, engine_id: str) -> bool:
        with self.session() as s, s.begin():
            for table in (EventRow, ItemRow, JobRow, ModelRow):
                s.execute(delete(table).where(table.engine_id == engine_id))
            return s.execute(delete(EngineRow).where(EngineRow.id == engine_id)).rowcount > 0  # type: ignore[attr-defined, no-any-return]

    # events and items
    def apply(self, engine_id: str, batch: EventBatch) -> None:
        with self.session() as s, s.begin():
            for kind, key, payload in batch.ops:
                if kind == "insert":
                    name, item, when = payload
                    s.add(EventRow(engine_id=engine_id, event=name, entity_id=key,
                                   target_entity_id=item, event_time=when))  # fmt: skip
                elif kind == "set":
                    row = s.get(ItemRow, (engine_id, key))
                    if row is None:
                        s.add(ItemRow(engine_id=engine_id, item_id=key, properties=dict(payload)))
                    else:
                        row.properties = {**row.properties, **payload}
                elif kind == "unset":
                    row = s.get(ItemRow, (engine_id, key))
                    if row is not None:
                        row.properties = {
                            k: v for k, v in row.properties.items() if k not in payload
                        }
                elif kind == "delete_item":
                    s.execute(delete(ItemRow).where(ItemRow.engine_id == engine_id,
                                                    ItemRow.item_id == key))  # fmt: skip
                elif kind == "delete_user":
                    s.execute(delete(EventRow).where(EventRow.engine_id == engine_id,
                                                     EventRow.entity_id == key))  # fmt: skip

    def item_properties(self, engine_id: str) -> list[tuple[str, dict[str, Any]]]:
        with self.session() as s:
            rows = s.execute(
                select(ItemRow.item_id, ItemRow.properties).where(ItemRow.engine_id == engine_id)
            )
            return [(i, dict(p)) for i, p in rows]

    def user_events(
        self, engine_id: str, user: str, names: Sequence[str] | None, limit: int | None
    ) -> list[tuple[str, str, float]]:
        """The user's events ``(event, item, time)``, newest first."""
        with self.session() as s:
            q = select(EventRow.event, EventRow.target_entity_id, EventRow.event_time).where(
                EventRow.engine_id == engine_id, EventRow.entity_id == user
            )
            if names is not None:
                q = q.where(EventRow.event.in_(names))
            q = q.order_by(EventRow.event_time.desc(), EventRow.id.desc())
            if limit is not None:
                q = q.limit(limit)
            return [(e, i, t) for e, i, t in s.execute(q)]

    def training_events(
        self, engine_id: str, names: Iterable[str], since: float | None
    ) -> list[tuple[str, str, str, float]]:
        """All ``(user, item, event, time)`` rows of the given event names, for training."""
        with self.session() as s:
            q = select(
                EventRow.entity_id, EventRow.target_entity_id, EventRow.event, EventRow.event_time
            ).where(EventRow.engine_id == engine_id, EventRow.event.in_(list(names)))
            if since is not None:
                q = q.where(EventRow.event_time >= since)
            return [(u, i, e, t) for u, i, e, t in s.execute(q)]

    # jobs
    def add_job(self, job_id: str, engine_id: str) -> JobInfo:
        with self.session() as s, s.begin():
            row = JobRow(id=job_id, engine_id=engine_id, status="queued", created_at=time.time(),
                         message="")  # fmt: skip
            s.add(row)
        return _job(row)

    def set_job(self, job_id: str, status: str, message: str = "") -> None:
        now = time.time()
        with self.session() as s, s.begin():
            row = s.get(JobRow, job_id)
            if row is None:
                return
            row.status = status
            row.message = message
            if status == "executing":
                row.started_at = now
            elif status in ("successful", "failed", "cancelled"):
                row.finished_at = now

    def get_job(self, job_id: str) -> JobInfo | None:
        with self.session() as s:
            row = s.get(JobRow, job_id)
            return None if row is None else _job(row)

    def jobs(self, engine_id: str) -> list[JobInfo]:
        with self.session() as s:
            q = select(JobRow).where(JobRow.engine_id == engine_id).order_by(JobRow.created_at)
            return [_job(r) for r in s.scalars(q)]

    def fail_unfinished_jobs(self, message: str) -> None:
        """Jobs a previous process left queued or executing can never finish now."""
        with self.session() as s, s.begin():
            for row in s.scalars(select(JobRow).where(JobRow.status.in_(["queued", "executing"]))):
                row.status, row.message, row.finished_at = "failed", message, time.time()

    # models
    def save_model(self, engine_id: str, trained_at: float, blob: bytes) -> None:
        with self.session() as s, s.begin():
            s.merge(ModelRow(engine_id=engine_id, trained_at=trained_at, blob=blob))

    def load_model(self, engine_id: str) -> bytes | None:
        with self.session() as s:
            row = s.get(ModelRow, engine_id)
            return None if row is None else row.blob
