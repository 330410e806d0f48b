"""Alembic environment of the MPC service: runs on the engine the caller passed in.

Only the MPC service's own tables are compared, so autogenerate never proposes dropping another
service's tables when an operator points both at one database.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine

from lerna.mpc.db import Base
from lerna.mpc.migrate import VERSION_TABLE


def _ours(name: str | None, type_: str, _parent: Any) -> bool:
    return type_ != "table" or name in Base.metadata.tables


config = context.config
engine = config.attributes.get("engine") or create_engine(
    config.get_main_option("sqlalchemy.url") or ""
)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_name=_ours,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
