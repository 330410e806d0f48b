"""Request bodies read with a size limit, and the device behind a bearer credential, for the
routes that read their body themselves (binary uploads, protocol messages, logs) or open their
own session (the device routes: see ``with_device``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from sqlalchemy.orm import Session

from lerna.server.errors import PayloadTooLarge
from lerna.server.models import Device
from lerna.server.services import devices

T = TypeVar("T")


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


def _credential(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


def training_device(session: Session, request: Request) -> Device:
    """The device whose credential the request carries, refused if it may not train."""
    device = devices.authenticate(session, _credential(request))
    devices.require_training(device)
    return device


def reading_device(session: Session, request: Request) -> Device:
    """``training_device`` for read-only transactions: the lookup writes nothing."""
    device = devices.identify(session, _credential(request))
    devices.require_training(device)
    return device


def with_device(request: Request, work: Callable[[Session, Device], T]) -> T:
    """``work(session, device)`` in one transaction, committed before it returns.

    What ``SessionDep`` plus ``CurrentDevice`` do for a sync route, in one worker-thread hop
    instead of one per dependency, per route body, per response check and per session exit:
    the device routes run for every device every round, and every hop costs the server CPU
    (a thread wake-up and a hand-over of the GIL). Call it through ``threadpool.run_sync`` from
    an async route."""
    with request.app.state.session_factory() as session, session.begin():
        return work(session, devices.authenticate(session, _credential(request)))
