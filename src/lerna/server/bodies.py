"""Request bodies read with a size limit, and the device behind a bearer credential, for the
routes that read their body themselves (binary uploads, protocol messages, logs)."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session

from lerna.server.errors import PayloadTooLarge
from lerna.server.models import Device
from lerna.server.services import devices


async def read_limited(request: Request, limit: int, what: str = "upload") -> bytes:
    """The whole body, refused with 413 as soon as it passes ``limit`` bytes (declared or sent)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"{what} is over the {limit}-byte limit")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"{what} is over the {limit}-byte limit")
    return bytes(body)


def training_device(session: Session, request: Request) -> Device:
    """The device whose credential the request carries, refused if it may not train."""
    auth = request.headers.get("authorization", "")
    device = devices.authenticate(session, auth[7:] if auth.lower().startswith("bearer ") else None)
    devices.require_training(device)
    return device


def reading_device(session: Session, request: Request) -> Device:
    """``training_device`` for read-only transactions: the lookup writes nothing."""
    auth = request.headers.get("authorization", "")
    device = devices.identify(session, auth[7:] if auth.lower().startswith("bearer ") else None)
    devices.require_training(device)
    return device
