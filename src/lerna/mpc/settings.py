"""MPC service settings (`LERNA_MPC_*`), separate from the FL-API's so it can live elsewhere.

Three secrets, none with a default outside demo mode:
- `master_key`: derives every device's per-round seed; never leaves this service.
- `ticket_key`: HMAC key shared with the FL-API, which signs device tickets with it.
- `api_token`: the FL-API's credential for asking for mask sums (a different secret from the
  ticket key, so a leaked ticket key cannot be used to ask for sums, and vice versa).
In demo mode missing secrets are generated at start-up (random, per process) and readable from
the settings object, which is how the embedded `lerna serve` hands them to its FL-API.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

WEAK = {"changeme", "change-me", "secret", "password", "dev", "test"}


class MPCSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LERNA_MPC_", extra="ignore", validate_by_name=True, validate_by_alias=True
    )

    data_dir: Path = Field(
        Path(".lerna"), validation_alias=AliasChoices("LERNA_MPC_DATA_DIR", "LERNA_DATA_DIR")
    )
    database_url: str | None = None
    master_key: SecretStr | None = None
    ticket_key: SecretStr | None = None
    api_token: SecretStr | None = None
    demo: bool = False
    threshold: int = Field(10, ge=2, description="least devices in a set this service answers")
    min_noise_multiplier: float = Field(0.0, ge=0.0)
    max_vector_length: int = Field(10_000_000, ge=1)
    running_sum_max_length: int = Field(
        4_000_000,
        ge=0,
        description="longest vector whose round keeps a running sum of receipted masks in"
        " memory; longer rounds compute the sum from the set's seeds at close",
    )
    running_sum_memory_mb: int = Field(
        256,
        ge=0,
        description="memory for running sums across open rounds (4 bytes per coordinate per"
        " round); least recently used rounds are dropped and answered from seeds",
    )

    @model_validator(mode="after")
    def _secrets(self) -> MPCSettings:
        for name in ("master_key", "ticket_key", "api_token"):
            value: SecretStr | None = getattr(self, name)
            if value is None:
                if not self.demo:
                    raise ValueError(f"LERNA_MPC_{name.upper()} must be set (or LERNA_MPC_DEMO=1)")
                setattr(self, name, SecretStr(secrets.token_urlsafe(48)))
            elif len(value.get_secret_value()) < 32 or value.get_secret_value().lower() in WEAK:
                raise ValueError(f"LERNA_MPC_{name.upper()} must be at least 32 random characters")
        return self

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'mpc.db').resolve()}"

    def secret(self, name: str) -> bytes:
        value: SecretStr | None = getattr(self, name)
        assert value is not None  # filled by the validator
        return value.get_secret_value().encode()
