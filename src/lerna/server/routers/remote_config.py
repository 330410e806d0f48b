"""Remote config: the customer edits it per app; each device reads it with its overrides."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from lerna.server.deps import CurrentDevice, OwnedApp, SessionDep, SettingsDep
from lerna.server.services import remote_config
from lerna.server.services.remote_config import DeviceRemoteConfig, RemoteConfigValues

router = APIRouter(prefix="/api/apps/{app_id}/remote-config", tags=["remote config"])
device_router = APIRouter(prefix="/v1/device", tags=["device protocol"])


class RemoteConfigPublic(RemoteConfigValues):
    revision: int


@router.get("", response_model=RemoteConfigPublic)
def get_config(
    app: OwnedApp, session: SessionDep, request: Request, settings: SettingsDep
) -> RemoteConfigPublic:
    revision, values = remote_config.load(
        session, request.app.state.cache, app.id, settings.cache_ttl_seconds
    )
    return RemoteConfigPublic(**values.model_dump(), revision=revision)


@router.put("", response_model=RemoteConfigPublic)
def put_config(
    data: RemoteConfigValues, app: OwnedApp, session: SessionDep, request: Request
) -> RemoteConfigPublic:
    """Replace the whole config (fields left out take their defaults)."""
    revision = remote_config.save(session, request.app.state.cache, app.id, data)
    return RemoteConfigPublic(**data.model_dump(), revision=revision)


@router.get(
    "/devices/{device_id}",
    response_model=DeviceRemoteConfig,
    summary="Preview what one device receives",
)
def preview_for_device(
    device_id: int, app: OwnedApp, session: SessionDep, request: Request, settings: SettingsDep
) -> DeviceRemoteConfig:
    from lerna.server.services import devices

    device = devices.get_in_app(session, app.id, device_id)
    config, _ = remote_config.for_device(
        session, request.app.state.cache, device, settings.cache_ttl_seconds
    )
    return config


@device_router.get(
    "/remote-config",
    response_model=DeviceRemoteConfig,
    responses={304: {"description": "not modified (ETag)"}},
)
def device_remote_config(
    device: CurrentDevice,
    session: SessionDep,
    request: Request,
    response: Response,
    settings: SettingsDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> DeviceRemoteConfig | Response:
    config, etag = remote_config.for_device(
        session, request.app.state.cache, device, settings.cache_ttl_seconds
    )
    if if_none_match == etag:
        return Response(status_code=304, headers={"ETag": etag})
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "private, max-age=60"
    return config
