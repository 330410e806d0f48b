"""Alembic, driven from code (no alembic.ini to find): ``lerna migrate`` and start-up use this.
The FL-API keeps Alembic's default version table (``alembic_version``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from lerna.storage import migrations

MIGRATIONS = Path(__file__).parent / "migrations"


def upgrade(engine: Engine, revision: str = "head") -> None:
    migrations.upgrade(engine, MIGRATIONS, revision)
