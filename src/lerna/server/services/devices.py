"""Device enrollment, authentication and the blacklist.

Every device request authenticates, so the credential-to-device lookup is cached once the app
factory calls ``use_cache`` (Redis when configured, shared by every replica; in-process
otherwise). A cached device must never outlive a change to it, whichever code makes the change:
every flush that changes or deletes a ``Device`` (blacklist, re-enrollment, ``last_seen``) or
deletes its ``App`` replaces the device's entry, once the transaction commits, with a short
"changed" marker. Readers fill the cache only where nothing is (SET NX), so a reader that loaded
the old row just before the commit cannot put it back. With Redis, every replica therefore
refuses a blacklisted or re-keyed device on its next request; an in-process cache cannot hear
other processes (``lerna serve --workers N`` without Redis), so its entries live at most
``LOCAL_TTL`` seconds. The server keeps no consent state (consent is the device's own switch).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import chain
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event, inspect, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, make_transient_to_detached

from lerna.server.cache import Cache, MemoryCache
from lerna.server.errors import Forbidden, NotFound, Unauthorized
from lerna.server.models import App, Device, DeviceWeek
from lerna.server.security import new_token, token_hash
from lerna.server.services.per_engine import engine_of

SEEN_RESOLUTION = timedelta(minutes=5)
LOCAL_TTL = 5.0  # in-process entries: other worker processes cannot invalidate them
MARKER_SECONDS = 10.0  # longer than any read-then-fill gap of a request
_CHANGED = b"-"
_PENDING = "lerna.devices.changed"  # session.info: credential hashes to drop at commit
_FIELDS = ("id", "app_id", "device_uid", "credential_hash", "platform")
_lookups: WeakKeyDictionary[Engine, tuple[Cache, float]] = WeakKeyDictionary()


def use_cache(engine: Engine, cache: Cache, ttl: float) -> None:
    """Cache device lookups for sessions bound to ``engine`` for ``ttl`` seconds (0: off)."""
    if ttl <= 0:
        _lookups.pop(engine, None)
        return
    _lookups[engine] = (cache, min(ttl, LOCAL_TTL) if isinstance(cache, MemoryCache) else ttl)


def _lookup_for(session: Session) -> tuple[Cache, float] | None:
    if not _lookups:
        return None
    engine = engine_of(session)
    return None if engine is None else _lookups.get(engine)


def _key(credential_hash: str) -> str:
    return f"device:{credential_hash}"


def _dump(device: Device) -> bytes:
    data: dict[str, Any] = {name: getattr(device, name) for name in _FIELDS}
    data["block"] = [device.block_training, device.block_predictions]
    data["seen"] = [device.created_at.isoformat(), device.last_seen.isoformat()]
    return json.dumps(data, separators=(",", ":")).encode()


def _from_cache(session: Session, credential_hash: str) -> Device | None:
    """The cached device, attached to ``session`` without a query (a persistent, clean
    instance, as if loaded: changes to it flush as usual)."""
    lookup = _lookup_for(session)
    raw = lookup[0].get(_key(credential_hash)) if lookup else None
    if raw is None or raw == _CHANGED:
        return None
    try:
        data = json.loads(raw)
        device = Device(**{name: data[name] for name in _FIELDS})
        device.block_training, device.block_predictions = (bool(b) for b in data["block"])
        device.created_at, device.last_seen = (datetime.fromisoformat(t) for t in data["seen"])
    except (ValueError, KeyError, TypeError):
        return None  # written by another version of this code: a miss
    if device.credential_hash != credential_hash:
        return None
    make_transient_to_detached(device)
    return session.merge(device, load=False)


def _fill(session: Session, device: Device) -> None:
    lookup = _lookup_for(session)
    if lookup is not None:
        lookup[0].add(_key(device.credential_hash), _dump(device), lookup[1])


@event.listens_for(Session, "before_flush")
def _collect_changes(session: Session, _context: object, _instances: object) -> None:
    if _lookup_for(session) is None:
        return
    changed: set[str] = session.info.setdefault(_PENDING, set())
    for obj in chain(session.dirty, session.deleted):
        if isinstance(obj, Device):
            changed.add(obj.credential_hash)
            changed.update(inspect(obj).attrs.credential_hash.history.deleted or ())
        elif isinstance(obj, App) and obj in session.deleted:
            changed.update(
                session.scalars(select(Device.credential_hash).where(Device.app_id == obj.id))
            )


@event.listens_for(Session, "after_commit")
def _invalidate(session: Session) -> None:
    changed: set[str] | None = session.info.pop(_PENDING, None)
    lookup = _lookup_for(session) if changed else None
    if changed and lookup is not None:
        for credential_hash in changed:
            lookup[0].set(_key(credential_hash), _CHANGED, MARKER_SECONDS)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)


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


def identify(session: Session, credential: str | None) -> Device:
    """The device a credential belongs to, writing nothing (for read-only transactions)."""
    if not credential:
        raise Unauthorized("missing device credential", "missing_credential")
    digest = token_hash(credential)
    device = _from_cache(session, digest)
    if device is None:
        device = session.scalar(select(Device).where(Device.credential_hash == digest))
        if device is None:
            raise Unauthorized("unknown device credential", "bad_credential")
        _fill(session, device)
    return device


def authenticate(session: Session, credential: str | None) -> Device:
    device = identify(session, credential)
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
