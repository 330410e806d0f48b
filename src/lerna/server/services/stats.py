"""Overview figures for an app (the dashboard's first page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lerna.server.models import Device, DeviceWeek, MLTask, ModelVersion, PredictionStat, Round
from lerna.server.schemas import AppStats, WeekActivity


def _rate(session: Session, task_ids: list[int], version: int | None) -> tuple[float | None, int]:
    if version is None or not task_ids:
        return None, 0
    row = session.execute(
        select(func.sum(PredictionStat.predictions), func.sum(PredictionStat.successes)).where(
            PredictionStat.task_id.in_(task_ids),
            PredictionStat.version == version,
            PredictionStat.group == "personalized",
        )
    ).one()
    shown, won = int(row[0] or 0), int(row[1] or 0)
    return (won / shown if shown else None), shown


def app_stats(session: Session, app_id: int, now: datetime | None = None) -> AppStats:
    now = now or datetime.now(UTC)
    task_ids = list(session.scalars(select(MLTask.id).where(MLTask.app_id == app_id)))
    current = session.scalar(
        select(func.max(MLTask.current_version)).where(MLTask.app_id == app_id)
    )
    week, two_weeks = now - timedelta(days=7), now - timedelta(days=14)
    active = (
        session.scalar(
            select(func.count(Device.id)).where(Device.app_id == app_id, Device.last_seen >= week)
        )
        or 0
    )
    previous = (
        session.scalar(
            select(func.count(Device.id)).where(
                Device.app_id == app_id, Device.last_seen >= two_weeks, Device.last_seen < week
            )
        )
        or 0
    )
    enrolled = session.scalar(select(func.count(Device.id)).where(Device.app_id == app_id)) or 0
    examples = (
        session.scalar(
            select(func.sum(ModelVersion.num_examples)).where(ModelVersion.task_id.in_(task_ids))
        )
        or 0
        if task_ids
        else 0
    )
    versions = (
        session.scalar(
            select(func.count(ModelVersion.id)).where(
                ModelVersion.task_id.in_(task_ids), ModelVersion.version > 0
            )
        )
        or 0
        if task_ids
        else 0
    )
    last = (
        session.scalar(
            select(Round)
            .where(Round.task_id.in_(task_ids), Round.state != "open")
            .order_by(Round.closed_at.desc())
            .limit(1)
        )
        if task_ids
        else None
    )
    # Eligible for the last round: enrolled before it opened and not barred from training;
    # a device blacklisted since then still counts, since it did take part.
    enrolled_then = [Device.app_id == app_id, Device.block_training.is_(False)]
    if last is not None:
        enrolled_then.append(Device.created_at <= last.opened_at)
    eligible = session.scalar(select(func.count(Device.id)).where(*enrolled_then)) or 0
    if last is not None:
        eligible = max(eligible, last.uploads)
    rate, shown = _rate(session, task_ids, current)
    prev_rate, _ = _rate(session, task_ids, current - 1 if current else None)
    return AppStats(
        versions=int(versions),
        total_examples=int(examples),
        active_devices_7d=int(active),
        active_devices_prev_7d=int(previous),
        enrolled_devices=int(enrolled),
        last_round_participants=last.uploads if last else 0,
        last_round_eligible=int(eligible),
        success_rate=rate,
        previous_success_rate=prev_rate,
        predictions=shown,
    )


def weekly_active(
    session: Session, app_id: int, weeks: int, now: datetime | None = None
) -> list[WeekActivity]:
    """Active devices per ISO week, oldest first, zeros included."""
    now = now or datetime.now(UTC)
    monday = now.date() - timedelta(days=now.weekday())
    starts = [(monday - timedelta(weeks=i)).isoformat() for i in range(weeks - 1, -1, -1)]
    rows = session.execute(
        select(DeviceWeek.week, func.count(DeviceWeek.id))
        .where(DeviceWeek.app_id == app_id, DeviceWeek.week >= starts[0])
        .group_by(DeviceWeek.week)
    ).all()
    counts = {week: int(n) for week, n in rows}
    return [WeekActivity(week=w, active_devices=counts.get(w, 0)) for w in starts]
