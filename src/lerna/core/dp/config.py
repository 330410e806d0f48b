"""The `privacy` section of an app's ML task config, shared by the FL-API, the SDK and the CLI.

Defaults follow the design: SecAgg+ on, DP on with a moderate noise multiplier. `threshold` is
the least number of devices whose sum may ever be revealed (secure aggregation and the MPC
service both enforce it); `expected_dropout` sizes the SecAgg+ graph.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PrivacyMode = Literal["secagg+", "two-server", "none"]


class PrivacyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: PrivacyMode = "secagg+"
    threshold: int = Field(10, ge=2, description="least devices in any revealed sum (t)")
    clip_norm: float = Field(1.0, gt=0, allow_inf_nan=False, description="L2 clip norm S")
    noise_multiplier: float = Field(1.0, ge=0, allow_inf_nan=False, description="z; 0 = no DP")
    target_delta: float = Field(1e-5, gt=0, lt=1)
    epsilon_budget: float | None = Field(8.0, gt=0, description="stop training when spent")
    expected_dropout: float = Field(0.1, ge=0, lt=0.5)

    @model_validator(mode="after")
    def _coherent(self) -> PrivacyConfig:
        if self.epsilon_budget is not None and self.noise_multiplier == 0:
            raise ValueError("an epsilon budget needs noise_multiplier > 0")
        return self

    @property
    def dp_enabled(self) -> bool:
        return self.noise_multiplier > 0
