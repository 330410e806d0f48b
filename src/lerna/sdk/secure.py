"""The device side of a SecAgg+ round over HTTP.

``SecureRound.step()`` never blocks: it asks the server for the round's stage, sends this
device's message for it if not sent yet, and returns the stage it saw. A host app (or the
simulator driving thousands of devices with a few threads) calls it until the round is
``completed`` or ``failed``; ``LernaClient.train_round`` wraps it in a polling loop.

The float update arrives packed and clipped (``lerna.core.secure_update.contribution``); it is
quantised and given this device's discrete Gaussian noise share (``to_lattice``) only when the
masked-input stage opens, so it exists in the clear only inside this object.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel

from lerna.core.dp import PrivacyConfig
from lerna.core.protocol import SecAggStatus
from lerna.core.secagg import SecAggClient, SecAggError
from lerna.core.secure_update import to_lattice
from lerna.sdk.api import DeviceAPI
from lerna.sdk.errors import ProtocolError

Progress = Literal[
    "selection",
    "advertise_keys",
    "share_keys",
    "masked_input",
    "unmasking",
    "completed",
    "failed",
    "dropped",
]
FINAL = ("completed", "failed", "dropped")


class SecureRound:
    def __init__(
        self,
        api: DeviceAPI,
        round_id: int,
        vector: np.ndarray,
        privacy: PrivacyConfig,
        rng: np.random.Generator,
    ) -> None:
        self.api = api
        self.round_id = round_id
        self._vector: np.ndarray | None = vector
        self.privacy = privacy
        self.rng = rng
        self.client: SecAggClient | None = None
        self.sent: set[str] = set()
        self.progress: Progress = "selection"
        self.failure = ""

    @property
    def done(self) -> bool:
        return self.progress in FINAL

    def step(self) -> Progress:
        """Do what the current stage asks of this device (at most once per stage)."""
        if self.done:
            return self.progress
        try:
            status = self.api.secagg_status(self.round_id)
            while True:
                nxt = self._act(status)
                if nxt is None:
                    break
                status = nxt
        except (SecAggError, ProtocolError) as exc:
            self._vector = None
            self.progress, self.failure = "dropped", str(exc)
        return self.progress

    def _act(self, status: SecAggStatus) -> SecAggStatus | None:
        """Send this stage's message if due; the server's answer may already show the next stage."""
        self.progress = status.stage  # type: ignore[assignment]
        if status.stage in ("completed", "failed"):
            self._vector = None
            self.failure = status.failure or ""
            return None
        if status.stage == "selection" or status.party is None or status.config is None:
            return None
        if self.client is None:
            self.client = SecAggClient(status.party)
        stage = status.stage
        if stage in self.sent:
            return None
        message: BaseModel
        if stage == "advertise_keys":
            message, kind = self.client.advertise_keys(status.config), "keys"
        elif stage == "share_keys" and status.directory is not None:
            message, kind = self.client.share_keys(status.directory), "shares"
        elif stage == "masked_input" and status.inbox is not None and self._vector is not None:
            parties = len(status.config.parties)
            quantised = to_lattice(self._vector, self.privacy, parties, self.rng)
            self._vector = None
            message, kind = self.client.masked_input(status.inbox, quantised), "masked"
        elif stage == "unmasking" and status.unmask is not None:
            if self.client.party not in status.unmask.survivors:
                self.progress = "dropped"
                return None
            message, kind = self.client.unmask(status.unmask), "unmask"
        else:
            self.progress = "dropped"  # the round moved past a stage this device missed
            return None
        self.sent.add(stage)
        return self.api.secagg_send(self.round_id, kind, message)
