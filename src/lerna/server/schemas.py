"""Customer-facing API schemas (``*Create``, ``*Update``, ``*Public``). Device wire schemas
live in ``lerna.core.protocol`` because the SDK shares them."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from lerna.core.dp import PrivacyConfig
from lerna.core.features import FeatureSchema, MetadataValue


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CustomerCreate(In):
    email: EmailStr
    password: str = Field(min_length=8, max_length=128)
    name: str = Field(min_length=1, max_length=120)
    company: str = Field("", max_length=120)
    position: str = Field("", max_length=120)


class CustomerUpdate(In):
    name: str | None = Field(None, min_length=1, max_length=120)
    company: str | None = Field(None, max_length=120)
    position: str | None = Field(None, max_length=120)


class PasswordChange(In):
    current_password: str = Field(max_length=128)
    new_password: str = Field(min_length=8, max_length=128)


class Login(In):
    email: EmailStr
    password: str = Field(max_length=128)


class CustomerPublic(Out):
    id: int
    email: str
    name: str
    company: str
    position: str
    created_at: datetime


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class AppCreate(In):
    name: str = Field(min_length=1, max_length=120)


class AppUpdate(In):
    name: str = Field(min_length=1, max_length=120)


class AppPublic(Out):
    id: int
    name: str
    token_prefix: str
    created_at: datetime


class AppWithToken(AppPublic):
    token: str = Field(description="Shown once; store it in your app's configuration")


class TaskConfig(In):
    """The ML task's tunable part; every field has bounds so the dashboard can show why a value is refused."""

    model_type: str = Field("logistic", max_length=32)
    hyper: dict[str, Any] = Field(default_factory=dict)
    cohort_size: int = Field(100, ge=1, le=100_000)
    min_participants: int = Field(10, ge=1, le=100_000)
    selection_seconds: float = Field(60.0, gt=0, le=86_400)
    upload_seconds: float = Field(600.0, gt=0, le=7 * 86_400)
    local_epochs: int = Field(1, ge=1, le=50)
    server_learning_rate: float = Field(1.0, gt=0, le=10)
    stage_seconds: float = Field(
        60.0, gt=0, le=86_400, description="deadline of each secure-aggregation stage"
    )
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)

    @model_validator(mode="after")
    def _min_le_cohort(self) -> TaskConfig:
        if self.min_participants > self.cohort_size:
            raise ValueError("min_participants cannot exceed cohort_size")
        if self.privacy.mode != "none" and self.privacy.threshold > self.min_participants:
            raise ValueError(
                "privacy.threshold cannot exceed min_participants: a round could never be unmasked"
            )
        return self


class TaskUpdate(In):
    hyper: dict[str, Any] | None = None
    privacy: PrivacyConfig | None = None
    stage_seconds: float | None = Field(None, gt=0, le=86_400)
    cohort_size: int | None = Field(None, ge=1, le=100_000)
    min_participants: int | None = Field(None, ge=1, le=100_000)
    selection_seconds: float | None = Field(None, gt=0, le=86_400)
    upload_seconds: float | None = Field(None, gt=0, le=7 * 86_400)
    local_epochs: int | None = Field(None, ge=1, le=50)
    server_learning_rate: float | None = Field(None, gt=0, le=10)


class CatalogIn(In):
    """Item metadata for the model's catalog (non-sensitive: it is the app's own content)."""

    items: dict[str, dict[str, MetadataValue]] = Field(max_length=200_000)

    @model_validator(mode="after")
    def _finite(self) -> CatalogIn:
        for item_id, meta in self.items.items():
            if not 1 <= len(item_id) <= 128:
                raise ValueError("item ids must be 1 to 128 characters")
            for key, value in meta.items():
                if isinstance(value, float) and not math.isfinite(value):
                    raise ValueError(f"item {item_id!r}: {key} must be finite")
        return self


class TaskCreate(TaskConfig):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    feature_schema: FeatureSchema = Field(default_factory=FeatureSchema)
    catalog: CatalogIn = Field(default_factory=lambda: CatalogIn(items={}))


class PrivacySpentPublic(BaseModel):
    mode: str
    epsilon: float | None = Field(description="None when differential privacy is off")
    delta: float
    budget: float | None
    rounds: int
    exhausted: bool


class TaskPublic(Out):
    id: int
    app_id: int
    name: str
    model_type: str
    hyper: dict[str, Any]
    feature_schema: dict[str, Any]
    cohort_size: int
    min_participants: int
    selection_seconds: float
    upload_seconds: float
    local_epochs: int
    server_learning_rate: float
    stage_seconds: float
    privacy: dict[str, Any]
    privacy_spent: PrivacySpentPublic | None = None
    current_version: int
    num_items: int
    created_at: datetime


class VersionPublic(BaseModel):
    version: int
    round_id: int | None
    participants: int
    num_examples: int
    metrics: dict[str, float]
    reports: int
    epsilon: float | None = None
    delta: float | None = None
    created_at: datetime


class RoundPublic(Out):
    id: int
    number: int
    base_version: int
    state: str
    cohort_size: int
    min_participants: int
    selected: int
    uploads: int
    dropouts: int
    opened_at: datetime
    closed_at: datetime | None
    seconds: float | None
    result_version: int | None
    failure: str | None


class DevicePublic(Out):
    id: int
    device_uid: str
    platform: str
    block_training: bool
    block_predictions: bool
    created_at: datetime
    last_seen: datetime


class BlacklistUpdate(In):
    block_training: bool
    block_predictions: bool


class AppStats(BaseModel):
    versions: int
    total_examples: int
    active_devices_7d: int
    active_devices_prev_7d: int
    enrolled_devices: int
    last_round_participants: int
    last_round_eligible: int
    success_rate: float | None
    previous_success_rate: float | None
    predictions: int


class WeekActivity(BaseModel):
    week: str = Field(description="Monday of the ISO week")
    active_devices: int
