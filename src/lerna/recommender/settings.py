"""Settings of the recommendation service, read from ``LERNA_RECOMMENDER_*`` environment variables.

Tokens are JSON in the environment: ``LERNA_RECOMMENDER_ADMIN_TOKENS='["s3cret"]'`` and
``LERNA_RECOMMENDER_CLIENT_TOKENS='{"app-token": ["shop", "news"], "any": ["*"]}'`` (token to
the engines it may use). No token at all means auth is off, which is allowed only on loopback.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lerna.recommender.errors import UnsafeBindError


class RecommenderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LERNA_RECOMMENDER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=9090, ge=0, le=65535)
    data_dir: Path = Field(
        default=Path(".lerna"), validation_alias=AliasChoices("LERNA_DATA_DIR", "data_dir")
    )
    database_url: str = ""
    admin_tokens: list[str] = Field(default_factory=list, repr=False)
    client_tokens: dict[str, list[str]] = Field(default_factory=dict, repr=False)
    train_workers: int = Field(default=1, ge=1, le=16)
    history_cache_size: int = Field(default=100_000, ge=0)
    max_bulk_lines: int = Field(default=1_000_000, ge=1)

    @model_validator(mode="after")
    def _default_database(self) -> RecommenderSettings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'recommender.db'}"
        if any(len(t) < 8 for t in [*self.admin_tokens, *self.client_tokens]):
            raise ValueError("tokens must be at least 8 characters long")
        return self

    @property
    def auth_enabled(self) -> bool:
        return bool(self.admin_tokens or self.client_tokens)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_allowed(settings: RecommenderSettings) -> None:
    """Refuse to serve an open API beyond this machine, as Harness does.

    Raises ``UnsafeBindError`` when bound to a non-loopback address with no token configured;
    the CLI calls this before starting uvicorn.
    """
    if not settings.auth_enabled and not is_loopback(settings.host):
        raise UnsafeBindError(
            f"refusing to listen on {settings.host}:{settings.port} without auth: set "
            "LERNA_RECOMMENDER_ADMIN_TOKENS (and CLIENT_TOKENS) or bind to 127.0.0.1"
        )
