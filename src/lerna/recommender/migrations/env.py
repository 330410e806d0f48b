"""Alembic environment of the recommender store: runs on the engine the caller passed in.

Only ``rec_*`` tables are the recommender's; the filter keeps autogenerate from proposing to
drop another service's tables when both live in one database (the embedded ``lerna serve``).
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine

from lerna.recommender.db import Base
from lerna.recommender.migrate import VERSION_TABLE


def _ours(name: str | None, type_: str, _parent: Any) -> bool:
    return type_ != "table" or (name or "").startswith("rec_")


config = context.config
engine = config.attributes.get("engine") or create_engine(
    config.get_main_option("sqlalchemy.url") or ""
)

with engine.connect() as connection:
    raw: Any = None
    if connection.dialect.name == "sqlite":
        # pysqlite commits DDL as it goes; an explicit BEGIN makes the whole upgrade one
        # transaction, so a process killed mid-migration leaves the previous schema, never
        # tables without a version stamp (the pooled connection gets its mode back after)
        raw = connection.connection.dbapi_connection
        previous = raw.isolation_level
        raw.isolation_level = None
        connection.exec_driver_sql("BEGIN")
    try:
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
    finally:
        if raw is not None:
            raw.isolation_level = previous
