"""Wire schemas of the device protocol, shared by the SDK and the FL-API.

Keeping them in ``core`` means the two sides cannot drift: a field renamed here is renamed
for both, and mypy checks every use.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lerna.core.dp import PrivacyConfig
from lerna.core.features import FeatureSchema, MetadataValue
from lerna.core.secagg.messages import (
    B64Bytes,
    KeyDirectory,
    RoundConfig,
    SharesInbox,
    UnmaskRequest,
)

DEVICE_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrollRequest(Strict):
    """A device asks to join an app; the app token travels in the ``X-App-Token`` header."""

    device_uid: str = Field(
        pattern=DEVICE_ID_PATTERN, description="Stable id the app gives this install"
    )
    platform: str = Field("python", max_length=32)


class EnrollResponse(Strict):
    device_id: int
    app_id: int
    credential: str = Field(description="Bearer credential for every later device call")


class DeviceConfig(Strict):
    """Remote switches for one device (blacklist overrides included)."""

    training_enabled: bool
    predictions_enabled: bool


class TaskPublic(Strict):
    """What a device needs to train a task: model type, hyper-parameters, feature layout."""

    id: int
    name: str
    model_type: str
    hyper: dict[str, Any]
    feature_schema: FeatureSchema
    current_version: int
    num_items: int
    local_epochs: int
    privacy: PrivacyConfig = Field(
        default_factory=lambda: PrivacyConfig(mode="none", noise_multiplier=0, epsilon_budget=None)
    )


class CatalogPublic(Strict):
    item_ids: list[str]
    metadata: list[dict[str, MetadataValue]]


class CandidatePublic(Strict):
    item: str
    score: float


class CandidatesPublic(Strict):
    """The server's candidates for one device, best first; the device re-ranks them.
    ``personalized``: ranked with the device's forwarded events, not the same list for all."""

    items: list[CandidatePublic]
    personalized: bool


EVENT_NAME = r"^[A-Za-z][A-Za-z0-9_\-.]{0,63}$"  # no "$": devices never send $set or $delete


class RecommendationEvent(Strict):
    """Something this user did with an item (a purchase, a view), for an app that forwards
    recommendation events; the server stores it under a pseudonym of the device."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    event: str = Field(pattern=EVENT_NAME)
    item: str = Field(min_length=1, max_length=256)
    time: datetime | None = None


class RecommendationEvents(Strict):
    events: list[RecommendationEvent] = Field(min_length=1, max_length=100)


class TwoServerAssignment(Strict):
    """What a device needs for a two-server round: a ticket for the MPC gateway, where the
    gateway is (absolute, or relative to the FL-API's base URL), and the fixed-point range."""

    ticket: str = Field(max_length=2048)
    gateway_url: str = Field(max_length=2048)
    mpc_round_id: str = Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")
    max_parties: int = Field(ge=1)
    vector_length: int = Field(ge=1)


class CheckinResponse(Strict):
    action: Literal["train", "wait"]
    round_id: int | None = None
    base_version: int | None = None
    upload_deadline: datetime | None = None
    retry_after: float = 0.0
    secure: bool = False
    two_server: TwoServerAssignment | None = None
    reason: str = ""


class MaskedUpload(Strict):
    """Two-server mode, device -> FL-API: the quantised packed update plus the PRG mask of the
    device's MPC seed, little-endian uint32 (base64). Uniformly random-looking on its own."""

    round_id: int = Field(ge=1)
    base_version: int = Field(ge=0)
    upload_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$", description="Idempotency key")
    vector: B64Bytes


class UploadMeta(Strict):
    """Metadata carried in an update archive's manifest ``meta``."""

    round_id: int = Field(ge=1)
    base_version: int = Field(ge=0)
    num_examples: int = Field(ge=1, le=10_000_000)
    upload_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$", description="Idempotency key")
    metrics: dict[str, float] = Field(default_factory=dict, max_length=16)

    @field_validator("metrics")
    @classmethod
    def _metrics_in_range(cls, v: dict[str, float]) -> dict[str, float]:
        for name, value in v.items():
            if len(name) > 32 or not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"metric {name!r} must be a finite number in [0, 1]")
        return v


class UploadAccepted(Strict):
    round_id: int
    accepted: bool = True
    uploads: int


class Telemetry(Strict):
    """Aggregate-safe counters: how many predictions were shown and how many succeeded."""

    version: int = Field(ge=0)
    predictions: int = Field(ge=0, le=1_000_000)
    successes: int = Field(ge=0, le=1_000_000)
    group: Literal["personalized", "random"] = "personalized"

    @field_validator("successes")
    @classmethod
    def _not_more_than_predictions(cls, v: int, info: Any) -> int:
        if v > info.data.get("predictions", v):
            raise ValueError("successes cannot exceed predictions")
        return v


class ErrorBody(Strict):
    """Every 4xx/5xx body: a stable machine code and a readable message."""

    code: str
    message: str


class SecAggStatus(Strict):
    """A secure round as one device sees it: the stage, and what the device needs for it.

    Stages: ``selection`` (waiting for the cohort), ``advertise_keys``, ``share_keys``,
    ``masked_input``, ``unmasking``, then ``completed`` or ``failed``.
    """

    round_id: int
    stage: str
    party: int | None = None
    config: RoundConfig | None = None
    directory: KeyDirectory | None = None
    inbox: SharesInbox | None = None
    unmask: UnmaskRequest | None = None
    stage_deadline: datetime | None = None
    failure: str | None = None
