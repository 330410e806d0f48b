"""Request and response bodies of the MPC service (bytes as base64)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lerna.core.secagg.messages import B64Bytes, RoundId

DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedPublic(_Schema):
    round_id: RoundId
    device_id: DeviceId
    seed: B64Bytes


class ReceiptPublic(_Schema):
    """The gateway took the FL-API's receipt for this device's upload."""

    round_id: RoundId
    device_id: DeviceId


MAX_NOISE_STD = 2.0**31


class NoiseSpec(_Schema):
    """Central DP noise in quantised units: standard deviation noise_multiplier * clip_norm *
    scale, where scale is the fixed-point scale the devices quantised with."""

    clip_norm: float = Field(gt=0, allow_inf_nan=False)
    noise_multiplier: float = Field(ge=0, allow_inf_nan=False)
    scale: float = Field(gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _fits(self) -> NoiseSpec:
        # noise wider than the int32 range the devices' fixed point decodes would drown the sum
        if self.noise_multiplier * self.clip_norm * self.scale > MAX_NOISE_STD:
            raise ValueError(
                "noise standard deviation (noise_multiplier * clip_norm * scale) exceeds"
                " 2^31, the range of the devices' fixed point"
            )
        return self


class MaskSumCreate(_Schema):
    device_ids: list[DeviceId] = Field(min_length=1, max_length=100_000)
    vector_length: int = Field(ge=1)
    noise: NoiseSpec | None = None


class MaskSumPublic(_Schema):
    round_id: RoundId
    device_count: int
    vector_length: int
    noise_added: bool
    negated_mask_sum: B64Bytes


class ErrorPublic(_Schema):
    code: str
    detail: str
