"""Secure-aggregation stages of the device protocol (SecAgg+).

A device polls ``GET .../secagg`` for its round's stage and what it needs for it, then posts
its message for that stage. Bodies are the pydantic messages of ``lerna.core.secagg``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from lerna.core.protocol import SecAggStatus
from lerna.core.secagg.messages import ROUND_HEADER, SENDER_HEADER
from lerna.server.bodies import read_limited, reading_device, training_device
from lerna.server.errors import NotFound
from lerna.server.models import Device, MLTask, Round
from lerna.server.services import round_owners, rounds, secure_rounds
from lerna.server.threadpool import run_sync

router = APIRouter(prefix="/v1/device/rounds", tags=["device protocol"])

Kind = Literal["keys", "shares", "masked", "unmask"]


def _round(session: Session, round_id: int, device: Device) -> tuple[MLTask, Round]:
    task, rnd = rounds.lock_round(session, round_id, device)
    if not secure_rounds.is_secure(rnd):
        raise NotFound(f"round {round_id} does not use secure aggregation", "not_secure")
    return task, rnd


@router.get("/{round_id}/secagg", response_model=SecAggStatus)
async def secagg_status(round_id: int, request: Request) -> SecAggStatus:
    return await run_sync(_status, request, round_id)


def _status(request: Request, round_id: int) -> SecAggStatus:
    """Most polls are answered from a read-only transaction, outside the writers' queue; a
    poll that may have to move the round on (a deadline passed) takes the task lock."""
    status = None
    with request.app.state.read_session_factory() as session, session.begin():
        device = reading_device(session, request)
        rnd = session.get(Round, round_id)
        if rnd is not None and secure_rounds.is_secure(rnd):  # else the locked path says why
            owner = round_owners.owner(session, round_id)
            if owner is None or (owner[0], owner[1]) != (rnd.task_id, device.app_id):
                owner = round_owners.owner(session, round_id, fresh=True)  # stale or foreign
            if owner is None or owner[1] != device.app_id:
                raise NotFound(f"round {round_id} not found")
            status = secure_rounds.read_status(session, rnd, device, datetime.now(UTC))
    return status if status is not None else _locked_status(request, round_id)


def _locked_status(request: Request, round_id: int) -> SecAggStatus:
    with request.app.state.session_factory() as session, session.begin():
        device = training_device(session, request)
        task, rnd = _round(session, round_id, device)
        if rnd.state == "open":
            rounds._close_if_due(session, task, rnd, datetime.now(UTC))
        return secure_rounds.status(session, rnd, device)


@router.post(
    "/{round_id}/secagg/{kind}",
    response_model=SecAggStatus,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
            "required": True,
        }
    },
)
async def secagg_message(round_id: int, kind: Kind, request: Request) -> SecAggStatus:
    """Body: the stage's message (KeyAdvertisement, SharesUpload, MaskedInput or UnmaskResponse)
    as JSON; a masked input may instead be its raw little-endian uint32 vector
    (``application/octet-stream``) with ``X-SecAgg-Round`` and ``X-SecAgg-Sender`` headers."""
    body = await read_limited(request, request.app.state.settings.max_upload_bytes, "message")
    binary = None
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() == "application/octet-stream":
        binary = (request.headers.get(ROUND_HEADER), request.headers.get(SENDER_HEADER))
    return await run_sync(_accept, request, round_id, kind, body, binary)


def _accept(
    request: Request,
    round_id: int,
    kind: Kind,
    body: bytes,
    binary: tuple[str | None, str | None] | None,
) -> SecAggStatus:
    with request.app.state.session_factory() as session, session.begin():
        device = training_device(session, request)
        task, rnd = _round(session, round_id, device)
        secure_rounds.receive(session, task, rnd, device, kind, body, binary)
        rounds.advance_secure(session, task, rnd, datetime.now(UTC))
        return secure_rounds.status(session, rnd, device)
