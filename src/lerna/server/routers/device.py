"""The device protocol (what the SDK calls). Authenticated by the device credential."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from lerna.core.features import FeatureSchema
from lerna.core.protocol import (
    CatalogPublic,
    CheckinResponse,
    DeviceConfig,
    EnrollRequest,
    EnrollResponse,
    TaskPublic,
    Telemetry,
    UploadAccepted,
    UploadMeta,
)
from lerna.core.weights import WeightsFormatError, load_archive
from lerna.server import cache
from lerna.server.bodies import read_limited, training_device, with_device
from lerna.server.deps import BEARER, CurrentDevice, SessionDep, TokenApp
from lerna.server.errors import Unprocessable
from lerna.server.models import Device, MLTask, PredictionStat
from lerna.server.services import devices, rounds, tasks
from lerna.server.threadpool import run_sync

router = APIRouter(prefix="/v1", tags=["device protocol"])


@router.post("/devices/enroll", response_model=EnrollResponse, status_code=201)
def enroll(data: EnrollRequest, app: TokenApp, session: SessionDep) -> EnrollResponse:
    device, credential = devices.enroll(session, app, data.device_uid, data.platform)
    return EnrollResponse(device_id=device.id, app_id=app.id, credential=credential)


@router.get("/device/config", response_model=DeviceConfig, dependencies=BEARER)
async def device_config(request: Request) -> DeviceConfig:
    return await run_sync(with_device, request, _config)


def _config(session: Session, device: Device) -> DeviceConfig:
    return DeviceConfig(
        training_enabled=not device.block_training, predictions_enabled=not device.block_predictions
    )


def _public(task: MLTask) -> TaskPublic:
    return TaskPublic(
        id=task.id,
        name=task.name,
        model_type=task.model_type,
        hyper=task.hyper,
        feature_schema=FeatureSchema.model_validate(task.feature_schema),
        current_version=task.current_version,
        num_items=task.num_items,
        local_epochs=task.local_epochs,
        privacy=tasks.privacy_of(task),
    )


@router.get("/device/tasks", response_model=list[TaskPublic], dependencies=BEARER)
async def device_tasks(request: Request) -> list[TaskPublic]:
    return await run_sync(with_device, request, _tasks)


def _tasks(session: Session, device: Device) -> list[TaskPublic]:
    return [
        _public(t)
        for t in session.scalars(
            select(MLTask).where(MLTask.app_id == device.app_id).order_by(MLTask.id)
        )
    ]


@router.get(
    "/device/tasks/{task_id}/catalog",
    response_class=Response,
    responses={200: {"model": CatalogPublic}},
    dependencies=BEARER,
)
async def catalog(request: Request, task_id: int) -> Response:
    """A task's catalog never changes after creation, so its JSON is encoded once and cached
    (the key carries the creation time, so a re-created database never meets an old entry)."""
    return await run_sync(
        with_device, request, lambda session, device: _catalog(request, session, device, task_id)
    )


def _catalog(request: Request, session: Session, device: Device, task_id: int) -> Response:
    task = tasks.get_in_app(session, device.app_id, task_id)

    def encode() -> bytes:
        return (
            CatalogPublic(
                item_ids=task.catalog.get("item_ids", []), metadata=task.catalog.get("metadata", [])
            )
            .model_dump_json()
            .encode()
        )

    body = cache.cached(
        request.app.state.cache,
        f"catalog:{task.id}:{task.created_at.timestamp()}",
        request.app.state.settings.cache_ttl_seconds,
        encode,
    )
    return Response(body, media_type="application/json")


@router.get(
    "/device/tasks/{task_id}/model",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        304: {"description": "not modified"},
    },
    dependencies=BEARER,
)
async def download_model(
    request: Request,
    task_id: int,
    version: int | None = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    def work(session: Session, device: Device) -> Response:
        return _model(request, session, device, task_id, version, if_none_match)

    return await run_sync(with_device, request, work)


def _model(
    request: Request,
    session: Session,
    device: Device,
    task_id: int,
    version: int | None,
    if_none_match: str | None,
) -> Response:
    task = tasks.get_in_app(session, device.app_id, task_id)
    wanted = task.current_version if version is None else version
    etag = f'"t{task.id}-v{wanted}"'
    if if_none_match == etag:
        return Response(status_code=304, headers={"ETag": etag})
    # Published versions never change: cache their archives (Redis when configured).
    archive = cache.cached(
        request.app.state.cache,
        f"model:{task.id}:{wanted}",
        request.app.state.settings.cache_ttl_seconds,
        lambda: tasks.get_version(session, task.id, wanted).archive,
    )
    return Response(
        archive,
        media_type="application/octet-stream",
        headers={"ETag": etag, "X-Model-Version": str(wanted)},
    )


@router.post("/device/tasks/{task_id}/checkin", response_model=CheckinResponse, dependencies=BEARER)
async def checkin(task_id: int, request: Request) -> CheckinResponse:
    def work(session: Session, device: Device) -> CheckinResponse:
        devices.require_training(device)
        return rounds.checkin(session, task_id, device, datetime.now(UTC))

    return await run_sync(with_device, request, work)


@router.post(
    "/device/rounds/{round_id}/upload",
    response_model=UploadAccepted,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "required": True,
        }
    },
)
async def upload(round_id: int, request: Request) -> UploadAccepted:
    """Body: an update archive (core.weights, kind ``update``) whose ``meta`` is an UploadMeta."""
    body = await read_limited(request, request.app.state.settings.max_upload_bytes)
    return await run_sync(_store_upload, request, round_id, body)


def _store_upload(request: Request, round_id: int, body: bytes) -> UploadAccepted:
    try:
        manifest, arrays = load_archive(body, max_bytes=request.app.state.settings.max_upload_bytes)
        meta = UploadMeta.model_validate(manifest.meta)
    except WeightsFormatError as exc:
        raise Unprocessable(str(exc), "bad_archive") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise Unprocessable(
            f"meta.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}", "bad_meta"
        ) from None
    if manifest.kind != "update" or meta.round_id != round_id:
        raise Unprocessable("archive must be an update for this round", "bad_archive")
    with request.app.state.session_factory() as session, session.begin():
        device = training_device(session, request)
        rnd = rounds.upload(session, round_id, device, meta, arrays, datetime.now(UTC))
        return UploadAccepted(round_id=round_id, uploads=rnd.uploads)


@router.post("/device/tasks/{task_id}/telemetry", status_code=204)
def telemetry(task_id: int, data: Telemetry, device: CurrentDevice, session: SessionDep) -> None:
    task = tasks.get_in_app(session, device.app_id, task_id)
    day = datetime.now(UTC).date().isoformat()
    stmt = select(PredictionStat).where(
        PredictionStat.task_id == task.id,
        PredictionStat.version == data.version,
        PredictionStat.day == day,
        PredictionStat.group == data.group,
    )
    row = session.scalar(stmt.with_for_update())
    if row is None:
        row = PredictionStat(
            task_id=task.id,
            version=data.version,
            day=day,
            group=data.group,
            predictions=0,
            successes=0,
        )
        session.add(row)
    row.predictions += data.predictions
    row.successes += data.successes
