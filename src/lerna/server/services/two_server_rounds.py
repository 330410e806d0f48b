"""Two-server rounds in the FL-API: tickets at check-in, masked uploads, unmasking at close.

A device checks in and gets a ticket for the MPC gateway (naming the round's vector length); it
fetches its per-round seed there and uploads ``quantise(contribution(update)) + PRG(seed)`` mod 2^32.
The FL-API adds each accepted upload into the round's uint32 running sum (the ``RoundAggregate``
row) and marks the device uploaded, in one transaction, and answers with a receipt the device
passes on to the MPC gateway (so the MPC service can add that device's mask into its own running
sum before the close, leaving next to nothing to do at the close). At close it asks the MPC service, once, for the negated mask sum
of exactly the devices it accepted (dropouts are simply not in the set), adds it, and decodes
the sum. The MPC service adds the central DP noise when the task's noise multiplier is above 0.

What the FL-API's database ever holds for such a round: the running masked sum, uniformly
random-looking until the MPC answer is added in memory at close. Never one device's update.

Failure rules: fewer accepted uploads than max(min_participants, t) fails the round without
asking the MPC service. A refusal from the MPC service fails the round. An unreachable MPC
service leaves the round open (the ticker retries) until ``stage_seconds`` past the upload
deadline, then fails it. If the FL-API dies after the MPC answered but before committing, the
retry is refused (one set per round) and the round fails: safe, never a second set.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from lerna.core.dp import PrivacyConfig
from lerna.core.protocol import MaskedUpload, TwoServerAssignment
from lerna.core.secagg import ProtocolError
from lerna.core.secagg.messages import decode_vector
from lerna.core.secagg.tickets import MAX_TTL_SECONDS, issue_receipt, issue_ticket
from lerna.core.secure_update import RoundSum, quantizer, unpack, vector_length
from lerna.server.errors import LernaError, Unprocessable
from lerna.server.models import Device, MLTask, Round, RoundAggregate, RoundParticipant
from lerna.server.services import participants
from lerna.server.services.mpc_client import MPCLink, MPCRefused, MPCUnavailable
from lerna.server.services.participants import aware

log = logging.getLogger("lerna.server.two_server")

SESSION_KEY = "mpc_link"
Publish = Callable[[RoundSum], None]


class MPCNotConfigured(LernaError):
    status, default_code = 503, "mpc_unavailable"


def privacy_of(rnd: Round) -> PrivacyConfig:
    return PrivacyConfig.model_validate(rnd.privacy)


def is_two_server(rnd: Round) -> bool:
    return bool(rnd.privacy) and privacy_of(rnd).mode == "two-server"


def link_of(session: Session) -> MPCLink | None:
    """The app's MPC link, carried by every session of its session factory."""
    link = session.info.get(SESSION_KEY)
    return link if isinstance(link, MPCLink) else None


def open_round(session: Session, rnd: Round, num_params: int) -> None:
    """A new two-server round: its MPC round id (random, so that a re-created FL-API database
    never reuses an id the MPC service has answered) and an all-zero uint32 running sum."""
    length = vector_length(num_params)
    rnd.secagg_config = {
        "mpc_round_id": f"lerna-{secrets.token_hex(8)}:round-{rnd.id}",
        "vector_length": length,
    }
    session.add(RoundAggregate(round_id=rnd.id, weighted_sum=bytes(4 * length)))


def assignment(rnd: Round, device: Device, session: Session, now: datetime) -> TwoServerAssignment:
    """The selected device's ticket for the MPC gateway (valid until the upload deadline)."""
    link = link_of(session)
    if link is None or not link.available:
        raise MPCNotConfigured(
            "this task uses two-server aggregation but the server has no MPC service"
            " (set LERNA_MPC_URL, or run the embedded `lerna serve all`)"
        )
    config = rnd.secagg_config or {}
    ttl = (aware(rnd.upload_deadline) - now).total_seconds() + 60.0
    seconds = int(min(max(ttl, 60.0), MAX_TTL_SECONDS))
    # the ticket names the vector length, so the MPC service can add each device's mask into
    # the round's running sum as it hands out the seed (the close then costs only dropouts)
    ticket = issue_ticket(
        link.ticket_key,
        str(device.id),
        config["mpc_round_id"],
        int(now.timestamp()),
        seconds,
        vector_length=int(config["vector_length"]),
    )
    return TwoServerAssignment(
        ticket=ticket,
        gateway_url=link.gateway_url,
        mpc_round_id=config["mpc_round_id"],
        max_parties=rnd.cohort_size,
        vector_length=config["vector_length"],
    )


def receive(
    session: Session, rnd: Round, device: Device, upload: MaskedUpload, now: datetime
) -> None:
    """Add one masked upload to the running sum, or refuse it with nothing written.

    The caller holds the task lock and has checked the round is open and two-server."""
    part = participants.uploader(session, rnd, device, upload.upload_id, upload.base_version, now)
    length = int((rnd.secagg_config or {})["vector_length"])
    try:
        vector = decode_vector(upload.vector, length)
    except ProtocolError as exc:
        raise Unprocessable(f"vector: {exc.reason}", "bad_update") from None
    agg = session.get(RoundAggregate, rnd.id, with_for_update=True)
    assert agg is not None
    total = np.frombuffer(agg.weighted_sum, dtype="<u4").astype(np.uint32)
    total += vector  # uint32 arithmetic wraps: addition modulo 2^32
    agg.weighted_sum = total.astype("<u4").tobytes()
    part.state, part.upload_id, part.uploaded_at = "uploaded", upload.upload_id, now
    rnd.uploads += 1


def receipt(rnd: Round, device: Device, session: Session, now: datetime) -> str | None:
    """The device's receipt for its accepted upload, to pass on to the MPC gateway, so the MPC
    service adds its mask into the round's running sum before the close (None without a link).
    It names only what the MPC service learns at the close anyway: that this device is in."""
    link = link_of(session)
    if link is None:
        return None
    ttl = (aware(rnd.upload_deadline) - now).total_seconds() + 60.0
    seconds = int(min(max(ttl, 60.0), MAX_TTL_SECONDS))
    mpc_round_id = (rnd.secagg_config or {})["mpc_round_id"]
    return issue_receipt(
        link.ticket_key, str(device.id), mpc_round_id, int(now.timestamp()), seconds
    )


def everyone_uploaded(rnd: Round, now: datetime) -> bool:
    """The cohort is closed and every selected device uploaded: close without waiting."""
    closed = rnd.selected >= rnd.cohort_size or now >= aware(rnd.selection_deadline)
    return closed and rnd.uploads == rnd.selected


def finalize(
    session: Session,
    task: MLTask,
    rnd: Round,
    num_params: int,
    now: datetime,
    publish: Publish,
) -> None:
    """Unmask and publish, or fail the round; leaves it open only while the MPC is unreachable."""
    privacy = privacy_of(rnd)
    accepted = [
        str(d)
        for d in session.scalars(
            select(RoundParticipant.device_id)
            .where(RoundParticipant.round_id == rnd.id, RoundParticipant.state == "uploaded")
            .order_by(RoundParticipant.device_id)
        )
    ]
    needed = max(rnd.min_participants, privacy.threshold)
    if len(accepted) < needed:
        fail(session, rnd, f"{len(accepted)} uploads, fewer than the minimum of {needed}", now)
        return
    config = rnd.secagg_config or {}
    length = int(config["vector_length"])
    q = quantizer(privacy, rnd.cohort_size)
    noise = (
        {
            "clip_norm": privacy.clip_norm,
            "noise_multiplier": privacy.noise_multiplier,
            "scale": q.scale,
        }
        if privacy.dp_enabled
        else None
    )
    link = link_of(session)
    try:
        if link is None:
            raise MPCUnavailable("no MPC service is configured")
        unmask = link.negated_mask_sum(config["mpc_round_id"], accepted, length, noise)
    except MPCUnavailable as exc:
        grace = aware(rnd.upload_deadline) + timedelta(seconds=task.stage_seconds)
        if now < grace:
            log.warning("round %s: %s; will retry", rnd.id, exc)
            return
        fail(session, rnd, f"MPC service unavailable: {exc}", now)
        return
    except MPCRefused as exc:
        fail(session, rnd, f"MPC service refused the set: {exc}", now)
        return
    agg = session.get(RoundAggregate, rnd.id, with_for_update=True)
    assert agg is not None
    total = np.frombuffer(agg.weighted_sum, dtype="<u4").astype(np.uint32) + unmask
    rnd.uploads = len(accepted)
    publish(unpack(q.dequantize_sum(total, len(accepted)), num_params))
    session.delete(agg)


def fail(session: Session, rnd: Round, reason: str, now: datetime) -> None:
    rnd.state, rnd.failure, rnd.closed_at = "failed", reason[:255], now
    agg = session.get(RoundAggregate, rnd.id)
    if agg is not None:
        session.delete(agg)
