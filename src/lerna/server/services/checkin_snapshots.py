"""Check-ins that can only be told "wait", answered without the task lock or a query.

Most check-ins of a busy task come from devices that are not in its open round while the round
is full or past selection. Answering them on the locked path (``rounds.checkin``) would queue
them behind the lock that serialises round changes across replicas; instead each process keeps,
per task, a snapshot of such a closed round (its deadlines and member set), at most
``SNAPSHOT_SECONDS`` old and never past a deadline it knows, and drops it the moment a commit in
this process changes a round's state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from lerna.core.protocol import CheckinResponse
from lerna.server.errors import NotFound
from lerna.server.models import Device, MLTask, Round, RoundParticipant
from lerna.server.services import secure_rounds
from lerna.server.services.participants import aware
from lerna.server.services.per_engine import PerEngine


@dataclass(frozen=True)
class _Closed:
    """An open round that takes no more devices (full, or past selection), as read from the
    database: until a deadline passes, the only answer it gives a non-member is "wait", and its
    member set cannot grow."""

    app_id: int
    upload_deadline: datetime
    stage_deadline: datetime | None
    members: frozenset[int]
    expires: float  # time.monotonic()

    def answers(self, now: datetime) -> bool:
        return (
            time.monotonic() < self.expires
            and now < self.upload_deadline
            and (self.stage_deadline is None or now < self.stage_deadline)
        )


SNAPSHOT_SECONDS = 1.0
# per engine (see ``per_engine``), per task id
_closed: PerEngine[dict[int, _Closed]] = PerEngine(dict)


def _snapshots(session: Session) -> dict[int, _Closed]:
    found = _closed.of(session)
    return {} if found is None else found


_CLOSING = (
    "lerna.checkin_snapshots.closing"  # session.info: task ids whose open round changed state
)


@event.listens_for(Session, "before_flush")
def _note_closing(session: Session, _context: object, _instances: object) -> None:
    """Rounds leave "open" on several paths (finalize, secure aborts, two-server closes): any
    flush that changes a round's state marks its task, whichever path it was."""
    for obj in session.dirty:
        if isinstance(obj, Round) and inspect(obj).attrs.state.history.has_changes():
            session.info.setdefault(_CLOSING, set()).add(obj.task_id)


@event.listens_for(Session, "after_commit")
def _drop_snapshots(session: Session) -> None:
    """This process answers from the database again at once; other replicas within
    ``SNAPSHOT_SECONDS``."""
    closing: set[int] | None = session.info.pop(_CLOSING, None)
    if closing:
        snapshots = _snapshots(session)
        for task_id in closing:
            snapshots.pop(task_id, None)


@event.listens_for(Session, "after_rollback")
def _keep_snapshots(session: Session) -> None:
    session.info.pop(_CLOSING, None)


def _wait(rnd_deadline: datetime, now: datetime) -> CheckinResponse:
    return CheckinResponse(
        action="wait", retry_after=max(1.0, (rnd_deadline - now).total_seconds())
    )


def busy(session: Session, task_id: int, device: Device, now: datetime) -> CheckinResponse | None:
    """A "wait" answer found without the task lock: the open round is full or past selection and
    this device is not in it. Most check-ins of a busy task end here, so they do not queue
    behind the lock that serialises round changes across replicas. Anything else (no open
    round, room in it, a deadline to act on, a member) returns None and takes the locked path.

    The answer comes from a per-process snapshot of the closed round, at most
    ``SNAPSHOT_SECONDS`` old and never past a deadline it knows: it is exactly what the
    database said that long ago, as if the device had checked in a moment earlier. A busy
    check-in then costs no query at all (with the device lookup cached, not even a connection).
    Raises NotFound for a task that is not the device's app's."""
    snapshots = _snapshots(session)
    snap = snapshots.get(task_id)
    if snap is None or not snap.answers(now):
        snap = _read_closed(session, task_id, device, now)
        if snap is None:
            return None
        snapshots[task_id] = snap
    if snap.app_id != device.app_id:
        raise NotFound(f"task {task_id} not found")
    if device.id in snap.members:
        return None
    return _wait(snap.upload_deadline, now)


def _read_closed(session: Session, task_id: int, device: Device, now: datetime) -> _Closed | None:
    row = session.execute(
        select(MLTask.app_id, Round)
        .outerjoin(Round, (Round.task_id == MLTask.id) & (Round.state == "open"))
        .where(MLTask.id == task_id)
    ).first()
    if row is None or row[0] != device.app_id:
        raise NotFound(f"task {task_id} not found")
    rnd: Round | None = row[1]
    if rnd is None or now >= aware(rnd.upload_deadline):
        return None
    if rnd.stage_deadline is not None and now >= aware(rnd.stage_deadline):
        return None
    if rnd.selected < rnd.cohort_size and now < aware(rnd.selection_deadline):
        return None
    if (
        now >= aware(rnd.selection_deadline)
        and rnd.stage == "selection"
        and secure_rounds.is_secure(rnd)
    ):
        return None
    members = session.scalars(
        select(RoundParticipant.device_id).where(RoundParticipant.round_id == rnd.id)
    )
    return _Closed(
        app_id=row[0],
        upload_deadline=aware(rnd.upload_deadline),
        stage_deadline=aware(rnd.stage_deadline) if rnd.stage_deadline is not None else None,
        members=frozenset(members),
        expires=time.monotonic() + SNAPSHOT_SECONDS,
    )
