"""Alembic for the MPC service's own database, driven from code; the service upgrades at start.

Its own script location and version table (`mpc_alembic_version`), so it migrates on its own
schedule even if an operator points it at a database another service also uses. A database the
service created before it had migrations (tables made by `create_all`) is adopted by the first
revision, which creates only the tables that are missing.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from lerna.storage import migrations

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "mpc_alembic_version"


def upgrade(engine: Engine, revision: str = "head") -> None:
    migrations.upgrade(engine, MIGRATIONS, revision)


def downgrade(engine: Engine, revision: str) -> None:
    migrations.downgrade(engine, MIGRATIONS, revision)
