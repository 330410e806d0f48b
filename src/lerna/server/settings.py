"""FL-API settings: environment variables (``LERNA_*``) and an optional env file.

Secrets have no insecure defaults. On the embedded default (SQLite) a missing JWT secret is
generated once and kept in the data directory with mode 0600, which is as safe as any file a
user would write by hand; on any other database it must be given explicitly.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

WEAK_SECRETS = {"changeme", "secret", "change-me", "dev", "test", "password"}
FERNET_KEY_FORMAT = (
    "a Fernet key: 32 random bytes in url-safe base64 (44 characters ending in '='), as printed"
    " by: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def check_fernet_key(value: str, where: str) -> None:
    """Refuse a malformed key at startup, naming where it came from and what it must look like:
    Fernet's own message ("Fernet key must be 32 url-safe base64-encoded bytes") names neither."""
    try:
        Fernet(value.encode())
    except (ValueError, TypeError):
        raise ValueError(f"{where} must be {FERNET_KEY_FORMAT}") from None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LERNA_",
        env_file=os.environ.get("LERNA_ENV_FILE", "lerna.env"),
        extra="ignore",
        hide_input_in_errors=True,  # a startup error must not print the secret it refused
    )

    data_dir: Path = Path(".lerna")
    database_url: str | None = None
    jwt_secret: str | None = None
    jwt_minutes: int = Field(60 * 12, ge=1, le=60 * 24 * 30)
    redis_url: str | None = None
    max_upload_bytes: int = Field(32 << 20, ge=1024)
    tick_seconds: float = Field(1.0, gt=0)
    cors_origins: list[str] = Field(default_factory=list)
    # operations (issue 7): webhooks, logs, remote config, rate limits; see docs/operations.md
    secrets_key: str | None = None  # Fernet key for secrets at rest; generated when embedded
    webhook_allow_http: bool = False
    # Deliver to loopback, private and link-local addresses (a local receiver in tests and the
    # demo). Off in production: a customer's webhook URL must not reach the cloud metadata
    # service or the operator's internal network (SSRF); see webhook_worker.destinations.
    webhook_allow_private: bool = False
    webhook_max_attempts: int = Field(8, ge=1, le=30)
    webhook_backoff_seconds: float = Field(5.0, gt=0)
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    worker_poll_seconds: float = Field(1.0, gt=0)
    log_storage: Literal["fs", "s3"] = "fs"
    log_dir: Path | None = None  # default: <data_dir>/logs
    log_s3_bucket: str | None = None
    log_s3_prefix: str = "lerna-logs"
    log_s3_endpoint_url: str | None = None
    max_log_bytes: int = Field(1 << 20, ge=1024)
    log_retention_days: int = Field(30, ge=1)
    rate_limit_device_per_minute: int = Field(600, ge=0)  # 0 turns the limit off
    rate_limit_app_per_minute: int = Field(6000, ge=0)
    cache_ttl_seconds: float = Field(300.0, ge=0)
    # credential -> device lookups (services/devices.use_cache); 0 turns the cache off. Changes
    # invalidate at commit, so this only bounds memory and what a lost invalidation could cost.
    device_cache_seconds: float = Field(60.0, ge=0)
    log_format: Literal["json", "text"] = "json"
    max_inflight_requests: int = Field(24, ge=1)  # below the DB pool (30): see ratelimit.py
    # recommendation service (issue 5): None turns the feature off; see docs/recommender.md
    recommender_url: str | None = None
    recommender_token: str | None = Field(None, repr=False)  # its admin bearer token
    # MPC service for two-server rounds (issue 4; docs/privacy.md). Unset URL: the embedded
    # `lerna serve all` mounts one at /mpc; elsewhere two-server rounds are refused.
    mpc_url: str | None = None  # how the FL-API reaches the MPC service
    mpc_gateway_url: str | None = None  # how devices reach its gateway (default: mpc_url)
    mpc_token: str | None = Field(None, repr=False)  # the FL-API's credential (LERNA_MPC_API_TOKEN)
    mpc_ticket_key: str | None = Field(None, repr=False)  # HMAC key for device tickets

    @field_validator("jwt_secret")
    @classmethod
    def _strong(cls, v: str | None) -> str | None:
        if v is not None and (v.lower() in WEAK_SECRETS or len(v) < 32):
            raise ValueError("LERNA_JWT_SECRET must be at least 32 random characters")
        return v

    @field_validator("mpc_token", "mpc_ticket_key")
    @classmethod
    def _strong_mpc(cls, v: str | None) -> str | None:
        if v is not None and (v.lower() in WEAK_SECRETS or len(v) < 32):
            raise ValueError("LERNA_MPC_TOKEN and LERNA_MPC_TICKET_KEY need 32+ random characters")
        return v

    @field_validator("secrets_key")
    @classmethod
    def _fernet_key(cls, v: str | None) -> str | None:
        if not v:
            return None  # LERNA_SECRETS_KEY= (empty) means unset, as for the other secrets
        check_fernet_key(v, "LERNA_SECRETS_KEY")
        return v

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'lerna.db').resolve()}"

    @property
    def is_embedded(self) -> bool:
        return self.db_url.startswith("sqlite")

    def resolved_jwt_secret(self) -> str:
        if self.jwt_secret:
            return self.jwt_secret
        if not self.is_embedded:
            raise RuntimeError(
                "LERNA_JWT_SECRET must be set when the database is not the embedded SQLite"
            )
        return self._generated("jwt_secret", lambda: secrets.token_urlsafe(48))

    def resolved_secrets_key(self) -> str | None:
        """The Fernet key for secrets at rest; None (webhook secrets refused) when a
        non-embedded deployment did not set ``LERNA_SECRETS_KEY``."""
        if self.secrets_key:
            return self.secrets_key
        if not self.is_embedded:
            return None
        key = self._generated("secrets_key", lambda: Fernet.generate_key().decode())
        try:
            check_fernet_key(key, str(self.data_dir / "secrets_key"))
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        return key

    def resolved_mpc_secret(self, name: Literal["mpc_token", "mpc_ticket_key"]) -> str | None:
        """A secret shared with the MPC service: given, generated into the data dir when
        embedded (the embedded MPC mount reads the same file), else None (two-server off)."""
        value: str | None = getattr(self, name)
        if value:
            return value
        if not self.is_embedded:
            return None
        return self._generated(name, lambda: secrets.token_urlsafe(48))

    def embedded_mpc_master_key(self) -> str:
        """The embedded MPC service's seed master key, kept in the data dir so that a restart
        mid-round keeps the round's seeds; only the embedded default may hold it here."""
        if not self.is_embedded:
            raise RuntimeError("only the embedded default keeps the MPC master key with the FL-API")
        return self._generated("mpc_master_key", lambda: secrets.token_urlsafe(48))

    def _generated(self, name: str, make: Callable[[], str]) -> str:
        path = self.data_dir / name
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = make()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value
