"""A device's place in a round, shared by every aggregation mode's upload path."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lerna.server.errors import Conflict, Forbidden
from lerna.server.models import Device, Round, RoundParticipant


def aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored one is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def uploader(
    session: Session, rnd: Round, device: Device, upload_id: str, base_version: int, now: datetime
) -> RoundParticipant:
    """The device's place in the round, if it may upload now: selected, not yet uploaded (the
    same upload id again is ``already_uploaded``, another is a ``replay``), on the round's
    version, before the deadline."""
    part = session.scalar(
        select(RoundParticipant).where(
            RoundParticipant.round_id == rnd.id, RoundParticipant.device_id == device.id
        )
    )
    if part is None:
        raise Forbidden("this device was not selected for the round", "not_selected")
    if part.state == "uploaded":
        code = "already_uploaded" if part.upload_id == upload_id else "replay"
        raise Conflict("this device already uploaded its update for the round", code)
    if base_version != rnd.base_version:
        raise Conflict(
            f"update is for version {base_version}, the round trains version {rnd.base_version}",
            "stale_version",
        )
    if now > aware(rnd.upload_deadline):
        raise Conflict(f"round {rnd.id} upload deadline has passed", "deadline_passed")
    return part
