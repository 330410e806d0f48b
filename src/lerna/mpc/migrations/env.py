"""Alembic environment of the MPC service: runs on the engine the caller passed in.

Only the MPC service's own tables are compared, so autogenerate never proposes dropping another
service's tables when an operator points both at one database.
"""

from __future__ import annotations

from lerna.mpc.db import Base
from lerna.mpc.migrate import VERSION_TABLE
from lerna.storage.migrations import run_migrations

run_migrations(
    Base.metadata,
    version_table=VERSION_TABLE,
    owns_table=lambda name: name in Base.metadata.tables,
)
