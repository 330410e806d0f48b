"""SDK log upload (device credential) and log reading (customer)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from lerna.server.bodies import read_limited
from lerna.server.db import transaction
from lerna.server.deps import OwnedApp
from lerna.server.errors import Forbidden, Unprocessable
from lerna.server.services import devices, logstore, remote_config
from lerna.server.services.logstore import LogStore
from lerna.server.settings import Settings

router = APIRouter(prefix="/api/apps/{app_id}/logs", tags=["logs"])
device_router = APIRouter(prefix="/v1/device", tags=["device protocol"])


class LogPublic(BaseModel):
    key: str
    size: int
    device_id: int | None


@device_router.post(
    "/logs",
    response_model=LogPublic,
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "required": True,
        }
    },
)
async def upload_log(
    request: Request, kind: Literal["error", "debug"] = "error", user_opted_in: bool = False
) -> LogPublic:
    """Store one log file. ``debug`` data needs the app's opt-in (remote config
    ``upload_debug_data``) *and* the user's (``user_opted_in=true``, which the SDK sends only
    after asking); error logs need ``upload_error_logs``, on by default."""
    settings: Settings = request.app.state.settings
    body = await read_limited(request, settings.max_log_bytes, "log")
    if not body:
        raise Unprocessable("the log is empty", "empty_log")
    return await run_in_threadpool(_store, request, kind, user_opted_in, bytes(body))


def _store(request: Request, kind: str, user_opted_in: bool, body: bytes) -> LogPublic:
    settings: Settings = request.app.state.settings
    auth = request.headers.get("authorization", "")
    with transaction(request.app.state.session_factory) as session:
        device = devices.authenticate(
            session, auth[7:] if auth.lower().startswith("bearer ") else None
        )
        _, config = remote_config.load(
            session, request.app.state.cache, device.app_id, settings.cache_ttl_seconds
        )
        app_id, device_id = device.app_id, device.id
    if kind == "debug" and not (config.upload_debug_data and user_opted_in):
        raise Forbidden("debug upload needs the app's and the user's opt-in", "not_opted_in")
    if kind == "error" and not config.upload_error_logs:
        raise Forbidden("this app turned error-log upload off", "log_upload_disabled")
    store: LogStore = request.app.state.log_store
    key = logstore.new_key(kind, device_id, datetime.now(UTC))
    obj = store.put(app_id, key, body)
    return LogPublic(key=obj.key, size=obj.size, device_id=obj.device_id)


@router.get("", response_model=list[LogPublic])
def list_logs(
    app: OwnedApp, request: Request, kind: Literal["error", "debug"] | None = None, limit: int = 100
) -> list[LogPublic]:
    store: LogStore = request.app.state.log_store
    return [
        LogPublic(key=o.key, size=o.size, device_id=o.device_id)
        for o in store.list(app.id, kind, min(max(limit, 1), 1000))
    ]


@router.get(
    "/{key:path}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def read_log(key: str, app: OwnedApp, request: Request) -> Response:
    store: LogStore = request.app.state.log_store
    return Response(store.get(app.id, key), media_type="application/octet-stream")
