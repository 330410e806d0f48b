"""Device enrollment, authentication and the blacklist."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from lerna.server.errors import Forbidden, NotFound, Unauthorized
from lerna.server.models import App, Device, DeviceWeek
from lerna.server.security import new_token, token_hash

SEEN_RESOLUTION = timedelta(minutes=5)


def enroll(session: Session, app: App, device_uid: str, platform: str) -> tuple[Device, str]:
    """Enroll or re-enroll: a reinstalled app gets a fresh credential; a blacklist stays."""
    credential = new_token("dev")
    device = session.scalar(
        select(Device).where(Device.app_id == app.id, Device.device_uid == device_uid)
    )
    if device is None:
        device = Device(
            app_id=app.id,
            device_uid=device_uid,
            platform=platform,
            credential_hash=token_hash(credential),
        )
        session.add(device)
    else:
        if device.block_training and device.block_predictions:
            raise Forbidden("this device is blacklisted", "device_blacklisted")
        device.credential_hash = token_hash(credential)
    session.flush()
    mark_active(session, device, datetime.now(UTC))
    return device, credential


def authenticate(session: Session, credential: str | None) -> Device:
    if not credential:
        raise Unauthorized("missing device credential", "missing_credential")
    device = session.scalar(select(Device).where(Device.credential_hash == token_hash(credential)))
    if device is None:
        raise Unauthorized("unknown device credential", "bad_credential")
    now = datetime.now(UTC)
    last = device.last_seen if device.last_seen.tzinfo else device.last_seen.replace(tzinfo=UTC)
    if now - last > SEEN_RESOLUTION or week_of(now) != week_of(last):
        device.last_seen = now
        mark_active(session, device, now)
    return device


def week_of(moment: datetime) -> str:
    return (moment.date() - timedelta(days=moment.weekday())).isoformat()


def mark_active(session: Session, device: Device, now: datetime) -> None:
    """Record that the device was active this week (idempotent, safe under concurrency)."""
    values = {"app_id": device.app_id, "device_id": device.id, "week": week_of(now)}
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(DeviceWeek).values(**values).on_conflict_do_nothing())


def require_training(device: Device) -> None:
    if device.block_training:
        raise Forbidden("training is disabled for this device", "device_blacklisted")


def search(session: Session, app_id: int, query: str, limit: int = 50) -> list[Device]:
    stmt = select(Device).where(Device.app_id == app_id)
    if query:
        stmt = stmt.where(or_(Device.device_uid.contains(query, autoescape=True)))
    return list(session.scalars(stmt.order_by(Device.id).limit(limit)))


def get_in_app(session: Session, app_id: int, device_id: int) -> Device:
    device = session.get(Device, device_id)
    if device is None or device.app_id != app_id:
        raise NotFound(f"device {device_id} not found")
    return device
