"""Alembic environment of the FL-API: runs on the engine the caller passed in."""

from __future__ import annotations

from lerna.server.models import Base
from lerna.storage.migrations import run_migrations

run_migrations(Base.metadata)
