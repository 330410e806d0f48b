"""Webhooks of one app (customer API). The secret is write-only: it is never returned."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lerna.server.db import transaction
from lerna.server.deps import BearerDep, OwnedApp, SessionDep, SettingsDep
from lerna.server.errors import Unauthorized, Unprocessable
from lerna.server.models_ops import Webhook
from lerna.server.security import decode_access_token
from lerna.server.services import apps, webhooks
from lerna.server.services.webhooks import Claimed, SecretBox
from lerna.server.settings import Settings
from lerna.server.webhook_worker import BlockedDestination, check_registration, new_client, send

router = APIRouter(prefix="/api/apps/{app_id}/webhooks", tags=["webhooks"])

Kind = Literal["slack", "fcm", "https"]
Event = Literal["round_completed", "round_failed", "version_published"]
Secret = Annotated[str, Field(min_length=16, max_length=4096)]


def _valid_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    return value


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("url", check_fields=False)
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else _valid_url(v)

    @field_validator("events", check_fields=False)
    @classmethod
    def _events(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError("events must not repeat")
        return v


class WebhookCreate(_In):
    kind: Kind
    url: str = Field(max_length=2048)
    events: list[Event] = Field(min_length=1, max_length=len(webhooks.EVENTS))
    enabled: bool = True
    secret: Secret | None = None


class WebhookUpdate(_In):
    kind: Kind | None = None
    url: str | None = Field(None, max_length=2048)
    events: list[Event] | None = Field(None, min_length=1, max_length=len(webhooks.EVENTS))
    enabled: bool | None = None
    secret: Secret | None = None


class WebhookPublic(BaseModel):
    id: int
    kind: Kind
    url: str
    events: list[Event]
    enabled: bool
    has_secret: bool


class WebhookTestResult(BaseModel):
    delivered: bool
    status_code: int | None
    error: str | None


class DeliveryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    event: str
    state: str
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def secret_box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box


BoxDep = Annotated[SecretBox, Depends(secret_box)]


def _public(hook: Webhook) -> WebhookPublic:
    return WebhookPublic(
        id=hook.id,
        kind=hook.kind,
        url=hook.url,
        events=hook.events,
        enabled=hook.enabled,
        has_secret=hook.secret_encrypted is not None,
    )


def _check(settings: Settings, kind: str, url: str, has_secret: bool) -> None:
    """Rules that span fields or depend on the deployment."""
    if urlsplit(url).scheme != "https" and not settings.webhook_allow_http:
        raise Unprocessable("url: webhooks must use https", "insecure_url")
    if not settings.webhook_allow_private:
        try:
            check_registration(url)
        except BlockedDestination as exc:
            raise Unprocessable(f"url: {exc}", "forbidden_destination") from None
    if kind in ("https", "fcm") and not has_secret:
        what = "signing secret" if kind == "https" else "FCM access token"
        raise Unprocessable(f"secret: a {kind} webhook needs a {what}", "secret_required")


@router.get("", response_model=list[WebhookPublic])
def list_webhooks(app: OwnedApp, session: SessionDep) -> list[WebhookPublic]:
    return [_public(h) for h in webhooks.list_for_app(session, app.id)]


@router.post("", response_model=WebhookPublic, status_code=201)
def create_webhook(
    data: WebhookCreate, app: OwnedApp, session: SessionDep, settings: SettingsDep, box: BoxDep
) -> WebhookPublic:
    _check(settings, data.kind, data.url, data.secret is not None)
    hook = webhooks.create(session, box, app.id, **data.model_dump())
    return _public(hook)


@router.patch("/{webhook_id}", response_model=WebhookPublic)
def update_webhook(
    webhook_id: int,
    data: WebhookUpdate,
    app: OwnedApp,
    session: SessionDep,
    settings: SettingsDep,
    box: BoxDep,
) -> WebhookPublic:
    hook = webhooks.get_in_app(session, app.id, webhook_id)
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    for name in ("kind", "url", "events", "enabled"):
        if name in changes and changes[name] is None:
            raise Unprocessable(f"{name}: may not be null", "invalid")
    has_secret = (
        changes["secret"] is not None if "secret" in changes else hook.secret_encrypted is not None
    )
    _check(settings, changes.get("kind", hook.kind), changes.get("url", hook.url), has_secret)
    return _public(webhooks.update(hook, box, changes))


@router.delete("/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: int, app: OwnedApp, session: SessionDep) -> None:
    session.delete(webhooks.get_in_app(session, app.id, webhook_id))


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryPublic])
def list_deliveries(webhook_id: int, app: OwnedApp, session: SessionDep) -> list[DeliveryPublic]:
    hook = webhooks.get_in_app(session, app.id, webhook_id)
    return [DeliveryPublic.model_validate(d) for d in webhooks.deliveries(session, hook.id)]


@router.post("/{webhook_id}/test", response_model=WebhookTestResult)
def test_webhook(
    app_id: int, webhook_id: int, request: Request, creds: BearerDep, box: BoxDep
) -> WebhookTestResult:
    """Send one ``test`` event now, outside the outbox, and report what the receiver said.

    The lookup runs in its own short transaction, closed before the HTTP call: a slow receiver
    must not hold a database transaction (on SQLite, the write lock) open."""
    if creds is None:
        raise Unauthorized("log in first (missing bearer token)", "not_authenticated")
    customer_id = decode_access_token(creds.credentials, request.app.state.jwt_secret)
    if customer_id is None:
        raise Unauthorized("session expired or invalid; log in again", "bad_token")
    with transaction(request.app.state.session_factory) as session:
        apps.get_owned(session, customer_id, app_id)
        hook = webhooks.get_in_app(session, app_id, webhook_id)
        now = datetime.now(UTC)
        job = Claimed(
            id=0,
            app_id=app_id,
            kind=hook.kind,
            url=hook.url,
            secret=box.decrypt(hook.secret_encrypted),
            event="test",
            payload={"app_id": app_id, "message": "test delivery from Lerna"},
            attempts=1,
            created_at=now,
        )
    settings: Settings = request.app.state.settings
    with new_client(settings) as client:
        outcome = send(client, job, now, allow_private=settings.webhook_allow_private)
    return WebhookTestResult(
        delivered=outcome.delivered, status_code=outcome.status_code, error=outcome.error
    )
