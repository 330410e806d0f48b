"""Federated rounds: cohort selection, uploads, deadlines and aggregation.

Invariants (every function here keeps them, on SQLite and PostgreSQL alike):
- all round state is in the database, changed in one transaction per request, so an upload
  that was acknowledged survives a crash and one that was not can simply be sent again;
- the task row is locked (``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE``) before its rounds are
  touched, so concurrent requests and replicas serialise per task and exactly one closes a round;
- a device is counted at most once per round (unique participant row, state check);
- aggregation keeps one running weighted sum per round, never a list of updates.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from lerna.core.protocol import CheckinResponse, UploadMeta
from lerna.core.secure_update import RoundSum
from lerna.core.weights import flatten, unflatten
from lerna.server.errors import Conflict, NotFound, Unprocessable
from lerna.server.models import (
    Device,
    MLTask,
    ModelVersion,
    Round,
    RoundAggregate,
    RoundParticipant,
)
from lerna.server.services import (
    checkin_snapshots,
    participants,
    round_owners,
    secure_rounds,
    two_server_rounds,
    webhooks,
)
from lerna.server.services import tasks as task_service
from lerna.server.services.aggregation import PlainAggregator, merge_sums, private_mean
from lerna.server.services.participants import aware

aggregator = PlainAggregator()


def lock_task(session: Session, task_id: int) -> MLTask:
    task = session.get(MLTask, task_id, with_for_update=True, populate_existing=True)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


def lock_round(session: Session, round_id: int, device: Device) -> tuple[MLTask, Round]:
    """A round of the device's app with its task locked (the lock that serialises every change
    to a round), read under that lock; another app's round is "not found".

    The round's task comes from ``round_owners`` (fixed at creation), so a request reads the
    round once, locked, instead of reading it, locking the task and reading it again. An entry
    that disagrees with the rows (a round deleted with its app, its id reused) is asked again."""
    for fresh in (False, True):
        found = round_owners.owner(session, round_id, fresh=fresh)
        if found is None:
            break
        if found[1] != device.app_id:
            continue
        task = session.get(MLTask, found[0], with_for_update=True, populate_existing=True)
        rnd = session.get(Round, round_id, with_for_update=True, populate_existing=True)
        if task is not None and rnd is not None and rnd.task_id == task.id:
            return task, rnd
    raise NotFound(f"round {round_id} not found")


def open_round(session: Session, task: MLTask) -> Round | None:
    stmt = select(Round).where(Round.task_id == task.id, Round.state == "open").with_for_update()
    return session.scalar(stmt)


def _new_round(session: Session, task: MLTask, now: datetime) -> Round:
    number = (
        session.scalar(select(func.max(Round.number)).where(Round.task_id == task.id)) or 0
    ) + 1
    selection = now + timedelta(seconds=task.selection_seconds)
    rnd = Round(
        task_id=task.id,
        number=number,
        base_version=task.current_version,
        state="open",
        cohort_size=task.cohort_size,
        min_participants=task.min_participants,
        opened_at=now,
        selection_deadline=selection,
        upload_deadline=selection + timedelta(seconds=task.upload_seconds),
        privacy=task_service.privacy_of(task).model_dump(),
        stage="selection",
    )
    session.add(rnd)
    session.flush()
    if two_server_rounds.is_two_server(rnd):
        two_server_rounds.open_round(session, rnd, task_service.num_params(session, task))
    elif not secure_rounds.is_secure(rnd):
        empty = aggregator.empty(task_service.num_params(session, task))
        session.add(RoundAggregate(round_id=rnd.id, weighted_sum=empty))
    return rnd


def checkin(session: Session, task_id: int, device: Device, now: datetime) -> CheckinResponse:
    busy = checkin_snapshots.busy(session, task_id, device, now)
    if busy is not None:
        return busy
    task = lock_task(session, task_id)
    if task.app_id != device.app_id:
        raise NotFound(f"task {task_id} not found")
    rnd = open_round(session, task)
    if rnd is not None and _close_if_due(session, task, rnd, now):
        rnd = None
    if rnd is None:
        spent = task_service.privacy_spent(session, task)
        if spent.exhausted:
            return CheckinResponse(
                action="wait", retry_after=86_400.0, reason="privacy budget spent: training stopped"
            )
        rnd = _new_round(session, task, now)
    part = session.scalar(
        select(RoundParticipant).where(
            RoundParticipant.round_id == rnd.id, RoundParticipant.device_id == device.id
        )
    )
    wait = CheckinResponse(
        action="wait", retry_after=max(1.0, (aware(rnd.upload_deadline) - now).total_seconds())
    )
    if part is not None:
        return _assignment(rnd, device, session, now) if part.state == "selected" else wait
    if now >= aware(rnd.selection_deadline) or rnd.selected >= rnd.cohort_size:
        return wait
    session.add(RoundParticipant(round_id=rnd.id, device_id=device.id, selected_at=now))
    rnd.selected += 1
    if secure_rounds.is_secure(rnd) and rnd.selected >= rnd.cohort_size:
        session.flush()
        secure_rounds.start(session, task, rnd, task_service.num_params(session, task), now)
    return _assignment(rnd, device, session, now)


def _assignment(rnd: Round, device: Device, session: Session, now: datetime) -> CheckinResponse:
    return CheckinResponse(
        action="train",
        round_id=rnd.id,
        base_version=rnd.base_version,
        upload_deadline=aware(rnd.upload_deadline),
        secure=secure_rounds.is_secure(rnd),
        two_server=two_server_rounds.assignment(rnd, device, session, now)
        if two_server_rounds.is_two_server(rnd)
        else None,
    )


def upload(
    session: Session,
    round_id: int,
    device: Device,
    meta: UploadMeta,
    update: dict[str, np.ndarray],
    now: datetime,
) -> Round:
    """Add one device's update to the round's running sum, or refuse it with nothing written."""
    task, rnd = lock_round(session, round_id, device)
    if rnd.state != "open":
        raise Conflict(f"round {round_id} is {rnd.state}", "round_closed")
    if secure_rounds.is_secure(rnd):
        raise Conflict(
            "this round uses secure aggregation: send the update through its secagg stages",
            "secure_round",
        )
    if two_server_rounds.is_two_server(rnd):
        raise Conflict(
            "this round uses two-server aggregation: send the masked update", "two_server_round"
        )
    part = participants.uploader(session, rnd, device, meta.upload_id, meta.base_version, now)
    layout = task_service.layout(session, task, rnd.base_version)
    expected = {s.name: s for s in layout}
    if set(update) != set(expected):
        raise Unprocessable(
            f"update must contain arrays {sorted(expected)}, got {sorted(update)}", "bad_update"
        )
    for name, spec in expected.items():
        arr = update[name]
        if tuple(arr.shape) != spec.shape or str(arr.dtype) != spec.dtype:
            raise Unprocessable(
                f"update array {name!r} must be {spec.dtype}{list(spec.shape)}, got {arr.dtype}{list(arr.shape)}",
                "bad_update",
            )
    agg = session.get(RoundAggregate, rnd.id, with_for_update=True)
    assert agg is not None
    aggregator.add(agg, flatten(update, layout), meta)
    part.state, part.upload_id, part.uploaded_at = "uploaded", meta.upload_id, now
    rnd.uploads += 1
    if rnd.uploads == rnd.selected and (
        rnd.selected >= rnd.cohort_size or now >= aware(rnd.selection_deadline)
    ):
        finalize(session, task, rnd, now)
    return rnd


def _close_if_due(session: Session, task: MLTask, rnd: Round, now: datetime) -> bool:
    """Close an open round whose time is up (or move a secure round on); True when it closed."""
    selection_over = now >= aware(rnd.selection_deadline)
    if secure_rounds.is_secure(rnd):
        if rnd.stage == "selection":
            if not selection_over:
                return False
            if rnd.selected < rnd.min_participants:
                secure_rounds.fail(
                    session,
                    rnd,
                    f"{rnd.selected} devices selected, fewer than the minimum of {rnd.min_participants}",
                    now,
                )
                webhooks.round_finalized(session, task, rnd)
                return True
            secure_rounds.start(session, task, rnd, task_service.num_params(session, task), now)
            return False
        if rnd.stage_deadline is not None and now >= aware(rnd.stage_deadline):
            advance_secure(session, task, rnd, now, deadline_passed=True)
        return rnd.state != "open"
    if now >= aware(rnd.upload_deadline) or (
        selection_over and rnd.selected < rnd.min_participants
    ):
        finalize(session, task, rnd, now)
        return rnd.state != "open"  # a two-server round waits while the MPC is unreachable
    if selection_over and rnd.selected > 0 and rnd.uploads == rnd.selected:
        finalize(session, task, rnd, now)
        return rnd.state != "open"
    return False


def finalize(session: Session, task: MLTask, rnd: Round, now: datetime) -> None:
    """Close a plain round: publish the weighted mean of its uploads, or fail it."""
    if two_server_rounds.is_two_server(rnd):

        def publish_sum(result: RoundSum) -> None:
            result = private_mean(session, task, rnd, result)  # DP: the fixed denominator
            publish(session, task, rnd, result.mean_delta, result.num_examples,
                    result.metrics, result.metric_reports, now)  # fmt: skip

        num_params = task_service.num_params(session, task)
        two_server_rounds.finalize(session, task, rnd, num_params, now, publish_sum)
        if rnd.state != "open":
            webhooks.round_finalized(session, task, rnd)
        return
    agg = session.get(RoundAggregate, rnd.id, with_for_update=True)
    if agg is None or rnd.uploads < rnd.min_participants:
        rnd.state, rnd.closed_at = "failed", now
        rnd.failure = f"{rnd.uploads} uploads, fewer than the minimum of {rnd.min_participants}"
    else:
        publish(
            session,
            task,
            rnd,
            aggregator.mean(agg),
            agg.num_examples,
            agg.metrics_sum,
            agg.metrics_count,
            now,
        )
    if agg is not None:
        session.delete(agg)
    webhooks.round_finalized(session, task, rnd)  # outbox row in this same transaction


def advance_secure(
    session: Session, task: MLTask, rnd: Round, now: datetime, *, deadline_passed: bool = False
) -> None:
    """Move a secure round on; when its sum is unmasked, publish the new version."""

    def finish(total: np.ndarray, survivors: int) -> None:
        num_params = task_service.num_params(session, task)
        result = private_mean(session, task, rnd, secure_rounds.unpack_sum(total, num_params))
        rnd.uploads = survivors
        publish(
            session,
            task,
            rnd,
            result.mean_delta,
            result.num_examples,
            result.metrics,
            result.metric_reports,
            now,
        )
        secure_rounds.cleanup(session, rnd)

    secure_rounds.advance(session, task, rnd, now, finish, deadline_passed=deadline_passed)
    if rnd.state != "open":
        webhooks.round_finalized(session, task, rnd)


def publish(
    session: Session,
    task: MLTask,
    rnd: Round,
    mean_delta: np.ndarray,
    num_examples: int,
    metrics_sum: dict[str, float],
    metrics_count: int,
    now: datetime,
) -> None:
    """Apply the round's mean update to its base version and publish the next version."""
    base = task_service.get_version(session, task.id, rnd.base_version)
    manifest, weights = task_service.load_weights(base)
    vector = flatten(weights, manifest.arrays) + task.server_learning_rate * mean_delta
    new_version = task.current_version + 1
    archive = task_service.model_archive(
        task.model_type, new_version, unflatten(vector, manifest.arrays)
    )
    privacy = task_service.privacy_of(task)
    if privacy.mode != "none" and privacy.dp_enabled:
        task.dp_rounds += 1
    spent = task_service.privacy_spent(session, task)
    session.add(
        ModelVersion(
            task_id=task.id,
            version=new_version,
            archive=archive,
            round_id=rnd.id,
            participants=rnd.uploads,
            num_examples=num_examples,
            epsilon=spent.epsilon,
            delta=spent.delta if spent.epsilon is not None else None,
        )
    )
    base.metrics_sum = merge_sums(base.metrics_sum, metrics_sum)
    base.metrics_count += metrics_count
    task.current_version = new_version
    rnd.state, rnd.result_version, rnd.closed_at = "completed", new_version, now


def due_rounds(session: Session, now: datetime) -> list[tuple[int, int]]:
    """(task id, round id) of open rounds with a passed deadline, in lock order (task id)."""
    rows = session.execute(
        select(Round.task_id, Round.id)
        .where(
            Round.state == "open", or_(Round.selection_deadline <= now, Round.stage_deadline <= now)
        )
        .order_by(Round.task_id, Round.id)
    ).all()
    return [(int(t), int(r)) for t, r in rows]


def close_if_due(session: Session, task_id: int, round_id: int, now: datetime) -> bool:
    """Close (or move on) one round whose deadline passed; run in its own transaction, so a
    replica holds one task lock at a time and two replicas' tickers cannot deadlock."""
    task = lock_task(session, task_id)
    rnd = session.get(Round, round_id, with_for_update=True, populate_existing=True)
    return rnd is not None and rnd.state == "open" and _close_if_due(session, task, rnd, now)
