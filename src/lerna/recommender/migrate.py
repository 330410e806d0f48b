"""Alembic for the recommender store, driven from code; the service upgrades at start-up.

The store has its own script location and version table, so it migrates independently of the
FL-API even when an operator points both at one database.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from lerna.storage import migrations

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "recommender_alembic_version"


def upgrade(engine: Engine, revision: str = "head") -> None:
    migrations.upgrade(engine, MIGRATIONS, revision)
