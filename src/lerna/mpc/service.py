"""What the MPC service decides: who gets a seed, and which one set per round gets a mask sum.

The rules that keep the FL-API from isolating a device live here, in one place:
- a set must hold at least `threshold` distinct devices (the larger of this service's floor and
  nothing the FL-API can lower);
- every device in the set must have fetched its seed for that round (the FL-API cannot pad a
  set with devices that never took part);
- exactly one set per round is ever answered, recorded in the same transaction that releases
  the sum, so two overlapping sets can never be differenced;
- once a round is answered no further seeds are handed out for it.

Seed issues, upload receipts and the answer of one round serialise on the round's running-sum
row (and on SQLite on the database's write lock), so an answer sees every issue and receipt that
committed before it and none is taken after it (see `lerna.mpc.running_sums` for why the sum is
kept and why it grows with receipts rather than with seed issues).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from lerna.core.secagg import ProtocolError, two_server
from lerna.core.secagg.messages import encode_vector
from lerna.core.secagg.tickets import TicketClaims, verify_receipt, verify_ticket
from lerna.mpc import running_sums
from lerna.mpc.db import AnsweredSet, RunningMaskSum, SeedIssue, transaction
from lerna.mpc.errors import (
    InvalidRequest,
    NoiseTooLow,
    RoundClosed,
    SetTooSmall,
    Unauthorized,
    UnknownDevices,
)
from lerna.mpc.schemas import MaskSumCreate, MaskSumPublic, ReceiptPublic, SeedPublic
from lerna.mpc.settings import MPCSettings


class MaskService:
    def __init__(
        self,
        settings: MPCSettings,
        sessions: sessionmaker[Session],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock

    # -- credentials --------------------------------------------------------------------------

    def device_claims(self, ticket: str | None) -> TicketClaims:
        if not ticket:
            raise Unauthorized("a device ticket from the FL-API is required")
        try:
            return verify_ticket(self.settings.secret("ticket_key"), ticket, int(self.clock()))
        except ProtocolError as exc:
            raise Unauthorized(exc.reason) from exc

    def check_fl_api(self, token: str | None) -> None:
        expected = self.settings.secret("api_token")
        if not token or not hmac.compare_digest(token.encode(), expected):
            raise Unauthorized("invalid service token")

    # -- seeds --------------------------------------------------------------------------------

    def issue_seed(self, claims: TicketClaims) -> SeedPublic:
        """The device's seed for the ticket's round; asking again returns the same seed.

        Two first requests racing for one round or one device: the loser's insert fails on a
        primary key and it tries again, then finds the winner's rows."""
        length = claims.vector_length
        if length is not None and length > self.settings.max_vector_length:
            raise InvalidRequest(f"vector_length exceeds {self.settings.max_vector_length}")
        if length is not None and length > self.settings.running_sum_max_length:
            length = None  # too long to keep a running sum of: computed at close instead
        master = self.settings.secret("master_key")
        for attempt in range(3):
            try:
                with transaction(self.sessions) as session:
                    running = running_sums.locked(session, claims.round_id)
                    if session.get(AnsweredSet, claims.round_id) is not None:
                        raise RoundClosed("this round's mask sum was already released")
                    if session.get(SeedIssue, (claims.round_id, claims.device_id)) is None:
                        running_sums.record_issue(
                            session, master, running, claims.round_id, claims.device_id, length
                        )
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        seed = two_server.device_seed(master, claims.round_id, claims.device_id)
        return SeedPublic(round_id=claims.round_id, device_id=claims.device_id, seed=seed)

    def receipt_claims(self, receipt: str | None) -> TicketClaims:
        if not receipt:
            raise Unauthorized("an upload receipt from the FL-API is required")
        try:
            return verify_receipt(self.settings.secret("ticket_key"), receipt, int(self.clock()))
        except ProtocolError as exc:
            raise Unauthorized(exc.reason) from exc

    def accept_receipt(self, claims: TicketClaims) -> ReceiptPublic:
        """The FL-API accepted this device's upload: its mask may join the round's running sum.

        Refused for a device that never took a seed, and once the round's set is answered."""
        with transaction(self.sessions) as session:
            running = running_sums.locked(session, claims.round_id)
            if session.get(AnsweredSet, claims.round_id) is not None:
                raise RoundClosed("this round's mask sum was already released")
            issue = session.get(SeedIssue, (claims.round_id, claims.device_id))
            if issue is None:
                raise UnknownDevices("this device never received a seed for this round")
            running_sums.record_receipt(
                session,
                self.settings.secret("master_key"),
                running,
                issue,
                self.settings.fold_batch,
            )
        return ReceiptPublic(round_id=claims.round_id, device_id=claims.device_id)

    # -- mask sums ----------------------------------------------------------------------------

    def _validate(self, body: MaskSumCreate) -> None:
        if len(set(body.device_ids)) != len(body.device_ids):
            raise InvalidRequest("device_ids lists a device more than once")
        if len(body.device_ids) < self.settings.threshold:
            raise SetTooSmall(
                f"a set needs at least {self.settings.threshold} devices, got {len(body.device_ids)}"
            )
        if body.vector_length > self.settings.max_vector_length:
            raise InvalidRequest(f"vector_length exceeds {self.settings.max_vector_length}")
        floor = self.settings.min_noise_multiplier
        given = body.noise.noise_multiplier if body.noise else 0.0
        if given < floor:
            raise NoiseTooLow(f"noise_multiplier must be at least {floor}")

    def negated_mask_sum(self, round_id: str, body: MaskSumCreate) -> MaskSumPublic:
        """-(sum of the set's masks) (+ central noise), released at most once per round."""
        self._validate(body)
        devices = sorted(body.device_ids)
        digest = hashlib.sha256("\n".join(devices).encode()).hexdigest()
        try:
            with transaction(self.sessions) as session:
                running = running_sums.locked(session, round_id)
                if session.get(AnsweredSet, round_id) is not None:
                    raise RoundClosed("a set was already answered for this round")
                rows = session.execute(
                    select(SeedIssue.device_id, SeedIssue.folded).where(
                        SeedIssue.round_id == round_id
                    )
                ).all()
                issued = {device for device, _ in rows}
                folded = {device for device, is_folded in rows if is_folded}
                missing = [d for d in devices if d not in issued]
                if missing:
                    raise UnknownDevices(
                        f"{len(missing)} device(s) never received a seed for this round"
                    )
                if running is not None and running.vector_length != body.vector_length:
                    raise InvalidRequest(
                        f"vector_length must be {running.vector_length}, the length this"
                        " round's tickets named"
                    )
                session.add(
                    AnsweredSet(
                        round_id=round_id,
                        device_count=len(devices),
                        devices_sha256=digest,
                        answered_at=datetime.now(UTC),
                    )
                )
                session.flush()
                total = self._compute(round_id, devices, folded, running, body)
                if running is not None:
                    session.delete(running)  # no further seeds for an answered round
        except IntegrityError as exc:  # a concurrent request answered first
            raise RoundClosed("a set was already answered for this round") from exc
        return MaskSumPublic(
            round_id=round_id,
            device_count=len(devices),
            vector_length=body.vector_length,
            noise_added=body.noise is not None and body.noise.noise_multiplier > 0,
            negated_mask_sum=total,
        )

    def _compute(
        self,
        round_id: str,
        devices: list[str],
        folded: set[str],
        running: RunningMaskSum | None,
        body: MaskSumCreate,
    ) -> bytes:
        master = self.settings.secret("master_key")
        masks = running_sums.set_mask_sum(
            master, round_id, devices, folded, running, body.vector_length
        )
        total = np.negative(masks, out=masks)
        if body.noise is not None and body.noise.noise_multiplier > 0:
            std = body.noise.noise_multiplier * body.noise.clip_norm * body.noise.scale
            rng = np.random.default_rng(secrets.randbits(128))
            noise = np.rint(rng.normal(0.0, std, body.vector_length)).astype(np.int64)
            total += noise.astype(np.uint32)
        return encode_vector(total)
