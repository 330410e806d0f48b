"""What the MPC service decides: who gets a seed, and which one set per round gets a mask sum.

The rules that keep the FL-API from isolating a device live here, in one place:
- a set must hold at least `threshold` distinct devices (the larger of this service's floor and
  nothing the FL-API can lower);
- every device in the set must have fetched its seed for that round (the FL-API cannot pad a
  set with devices that never took part);
- exactly one set per round is ever answered: the answered set's row is committed before the sum
  is computed, and its primary key refuses a second one, so two overlapping sets can never be
  differenced;
- once a round is answered no further seeds or receipts are taken for it.

The running sums (`lerna.mpc.running_sums`) only make the answer cheap; none of these rules
depends on them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from lerna.core.dp import discrete_gaussian, noise_rng
from lerna.core.secagg import ProtocolError, two_server
from lerna.core.secagg.messages import encode_vector
from lerna.core.secagg.tickets import TicketClaims, verify_receipt, verify_ticket
from lerna.mpc.db import AnsweredSet, SeedIssue, transaction
from lerna.mpc.errors import (
    InvalidRequest,
    NoiseTooLow,
    RoundClosed,
    SetTooSmall,
    Unauthorized,
    UnknownDevices,
)
from lerna.mpc.running_sums import RunningSums, set_mask_sum
from lerna.mpc.schemas import MaskSumCreate, MaskSumPublic, ReceiptPublic, SeedPublic
from lerna.mpc.settings import MPCSettings

log = logging.getLogger("lerna.mpc")


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
        self.sums = RunningSums(
            settings.running_sum_max_length, settings.running_sum_memory_mb * 2**20
        )

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

        Two first requests racing for one device: the loser's insert fails on the primary key
        and it tries again, then finds the winner's row."""
        length = claims.vector_length
        if length is not None and length > self.settings.max_vector_length:
            raise InvalidRequest(f"vector_length exceeds {self.settings.max_vector_length}")
        for attempt in range(3):
            try:
                with transaction(self.sessions) as session:
                    if session.get(AnsweredSet, claims.round_id) is not None:
                        raise RoundClosed("this round's mask sum was already released")
                    if session.get(SeedIssue, (claims.round_id, claims.device_id)) is None:
                        session.add(
                            SeedIssue(
                                round_id=claims.round_id,
                                device_id=claims.device_id,
                                issued_at=datetime.now(UTC),
                            )
                        )
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        self.sums.open(claims.round_id, length)
        seed = two_server.device_seed(self.master_key, claims.round_id, claims.device_id)
        return SeedPublic(round_id=claims.round_id, device_id=claims.device_id, seed=seed)

    def receipt_claims(self, receipt: str | None) -> TicketClaims:
        if not receipt:
            raise Unauthorized("an upload receipt from the FL-API is required")
        try:
            return verify_receipt(self.settings.secret("ticket_key"), receipt, int(self.clock()))
        except ProtocolError as exc:
            raise Unauthorized(exc.reason) from exc

    def accept_receipt(self, claims: TicketClaims) -> ReceiptPublic:
        """The FL-API accepted this device's upload: its mask joins the round's running sum.

        Refused for a device that never took a seed, and once the round's set is answered. Only
        reads the database: the sum is a cache (see `lerna.mpc.running_sums`)."""
        with transaction(self.sessions) as session:
            if session.get(AnsweredSet, claims.round_id) is not None:
                raise RoundClosed("this round's mask sum was already released")
            if session.get(SeedIssue, (claims.round_id, claims.device_id)) is None:
                raise UnknownDevices("this device never received a seed for this round")
        seed = two_server.device_seed(self.master_key, claims.round_id, claims.device_id)
        self.sums.add(claims.round_id, claims.device_id, seed)
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
        """-(sum of the set's masks) (+ central noise), released at most once per round.

        The set is recorded (and the round closed) in a transaction that commits before the sum
        is computed: a sum is only ever computed for the one set the database accepted."""
        self._validate(body)
        devices = sorted(body.device_ids)
        digest = hashlib.sha256("\n".join(devices).encode()).hexdigest()
        try:
            with transaction(self.sessions) as session:
                if session.get(AnsweredSet, round_id) is not None:
                    raise RoundClosed("a set was already answered for this round")
                issued = set(
                    session.scalars(
                        select(SeedIssue.device_id).where(SeedIssue.round_id == round_id)
                    )
                )
                missing = [d for d in devices if d not in issued]
                if missing:
                    raise UnknownDevices(
                        f"{len(missing)} device(s) never received a seed for this round"
                    )
                session.add(
                    AnsweredSet(
                        round_id=round_id,
                        device_count=len(devices),
                        devices_sha256=digest,
                        answered_at=datetime.now(UTC),
                    )
                )
        except IntegrityError as exc:  # a concurrent request answered first
            raise RoundClosed("a set was already answered for this round") from exc
        masks, expanded = set_mask_sum(
            self.master_key, round_id, devices, body.vector_length, self.sums.take(round_id)
        )
        log.info(
            "answered round %s: %d devices, %d masks expanded at close",
            round_id,
            len(devices),
            expanded,
        )
        return MaskSumPublic(
            round_id=round_id,
            device_count=len(devices),
            vector_length=body.vector_length,
            noise_added=body.noise is not None and body.noise.noise_multiplier > 0,
            negated_mask_sum=encode_vector(self._noised(np.negative(masks, out=masks), body)),
        )

    @property
    def master_key(self) -> bytes:
        return self.settings.secret("master_key")

    @staticmethod
    def _noised(total: npt.NDArray[np.uint32], body: MaskSumCreate) -> npt.NDArray[np.uint32]:
        """Central DP noise, a discrete Gaussian on the devices' quantised lattice (no
        floating-point noise is released: see `lerna.core.dp.discrete`), added in place."""
        if body.noise is not None and body.noise.noise_multiplier > 0:
            std = body.noise.noise_multiplier * body.noise.clip_norm * body.noise.scale
            noise = discrete_gaussian(std, body.vector_length, noise_rng())
            total += (noise & 0xFFFFFFFF).astype(np.uint32)
        return total
