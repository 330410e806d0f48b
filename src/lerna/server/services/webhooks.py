"""Webhooks: configuration, the transactional outbox, and the claim/record steps of delivery.

Events enter the outbox in the transaction that made them happen (``round_finalized`` is called
from ``rounds.finalize``), so a rolled-back round never notifies and a committed one always
does. Delivery is at least once: a receiver must deduplicate on the delivery id it is sent.
Secrets are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under ``settings.secrets_key``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lerna.server.errors import LernaError, NotFound
from lerna.server.models import MLTask, Round
from lerna.server.models_ops import Webhook, WebhookDelivery

EVENTS = ("round_completed", "round_failed", "version_published")
KINDS = ("slack", "fcm", "https")
MAX_BACKOFF = timedelta(hours=1)


class NotConfigured(LernaError):
    status, default_code = 503, "not_configured"


class SecretBox:
    """Encrypts secrets at rest; the key never touches the database."""

    def __init__(self, key: str | None) -> None:
        self._fernet = Fernet(key.encode()) if key else None

    def encrypt(self, secret: str) -> bytes:
        if self._fernet is None:
            raise NotConfigured(
                "the server has no LERNA_SECRETS_KEY, so it cannot store secrets", "no_secrets_key"
            )
        return self._fernet.encrypt(secret.encode())

    def decrypt(self, token: bytes | None) -> str | None:
        if token is None or self._fernet is None:
            return None
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:  # key rotated without re-encrypting: treat as no secret
            return None


def list_for_app(session: Session, app_id: int) -> list[Webhook]:
    return list(
        session.scalars(select(Webhook).where(Webhook.app_id == app_id).order_by(Webhook.id))
    )


def get_in_app(session: Session, app_id: int, webhook_id: int) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None or hook.app_id != app_id:
        raise NotFound(f"webhook {webhook_id} not found")
    return hook


def create(
    session: Session,
    box: SecretBox,
    app_id: int,
    *,
    kind: str,
    url: str,
    events: list[str],
    enabled: bool,
    secret: str | None,
) -> Webhook:
    hook = Webhook(
        app_id=app_id,
        kind=kind,
        url=url,
        events=list(events),
        enabled=enabled,
        secret_encrypted=box.encrypt(secret) if secret else None,
    )
    session.add(hook)
    session.flush()
    return hook


def update(hook: Webhook, box: SecretBox, changes: dict[str, Any]) -> Webhook:
    for name in ("kind", "url", "enabled"):
        if name in changes:
            setattr(hook, name, changes[name])
    if "events" in changes:
        hook.events = list(changes["events"])
    if "secret" in changes:
        secret = changes["secret"]
        hook.secret_encrypted = box.encrypt(secret) if secret else None
    return hook


def emit(session: Session, app_id: int, event: str, data: dict[str, Any], now: datetime) -> int:
    """Queue ``event`` for every enabled webhook of the app that subscribed to it."""
    queued = 0
    for hook in list_for_app(session, app_id):
        if hook.enabled and event in hook.events:
            session.add(
                WebhookDelivery(
                    webhook_id=hook.id,
                    event=event,
                    payload=data,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            queued += 1
    return queued


def round_finalized(session: Session, task: MLTask, rnd: Round) -> None:
    """The one call ``rounds.finalize`` makes: the round's outcome becomes outbox rows."""
    now = rnd.closed_at or datetime.now(UTC)  # every closing path sets it; never fail a close
    data: dict[str, Any] = {
        "app_id": task.app_id,
        "task_id": task.id,
        "task": task.name,
        "round_id": rnd.id,
        "round": rnd.number,
        "state": rnd.state,
        "selected": rnd.selected,
        "participants": rnd.uploads,
        "dropouts": rnd.selected - rnd.uploads,
        "base_version": rnd.base_version,
        "version": rnd.result_version,
        "failure": rnd.failure,
    }
    if rnd.state == "completed":
        emit(session, task.app_id, "round_completed", data, now)
        emit(session, task.app_id, "version_published", data, now)
    else:
        emit(session, task.app_id, "round_failed", data, now)


@dataclass(frozen=True)
class Claimed:
    """A delivery taken by one worker, with everything needed to send it outside a transaction."""

    id: int
    app_id: int
    kind: str
    url: str
    secret: str | None
    event: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


def claim_due(
    session: Session, box: SecretBox, now: datetime, lease: timedelta, limit: int = 20
) -> list[Claimed]:
    """Take up to ``limit`` due deliveries. Rows locked by another replica are skipped
    (PostgreSQL ``SKIP LOCKED``; SQLite serialises writers), and each claimed row's next attempt
    moves ``lease`` ahead, so no other worker sends it while this one does."""
    rows = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for row in rows:
        hook = session.get(Webhook, row.webhook_id)
        if hook is None or not hook.enabled:
            row.state, row.last_error = "cancelled", "webhook disabled"
            continue
        row.attempts += 1
        row.next_attempt_at = now + lease
        claimed.append(
            Claimed(
                id=row.id,
                app_id=hook.app_id,
                kind=hook.kind,
                url=hook.url,
                secret=box.decrypt(hook.secret_encrypted),
                event=row.event,
                payload=dict(row.payload),
                attempts=row.attempts,
                created_at=row.created_at,
            )
        )
    return claimed


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Exponential: base, 2*base, 4*base, ... capped at an hour."""
    return min(timedelta(seconds=base_seconds * 2 ** (attempts - 1)), MAX_BACKOFF)


def record(
    session: Session,
    delivery_id: int,
    *,
    delivered: bool,
    status_code: int | None,
    error: str | None,
    now: datetime,
    max_attempts: int,
    base_seconds: float,
) -> None:
    row = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if row is None or row.state != "pending":
        return
    row.last_status, row.last_error = status_code, (error or None) and error[:255]
    if delivered:
        row.state, row.delivered_at = "delivered", now
    elif row.attempts >= max_attempts:
        row.state = "failed"
    else:
        row.next_attempt_at = now + backoff(row.attempts, base_seconds)


def deliveries(session: Session, webhook_id: int, limit: int = 50) -> list[WebhookDelivery]:
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


def outbox_depth(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.state == "pending")
        )
        or 0
    )
