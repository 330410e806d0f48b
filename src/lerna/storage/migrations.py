"""Alembic driven from code, the same way for every service: no alembic.ini to find, the
service's own engine (its SQLite setup included) passed through to ``env.py``, and each
service's own script location and version table, so services migrate independently even when
an operator points them at one database.

A service's ``env.py`` is one call to ``run_migrations``: Alembic loads ``env.py`` from each
script location, so the file must exist, but what it does is the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, create_engine


def alembic_config(engine: Engine, scripts: Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(scripts))
    cfg.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, scripts: Path, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine, scripts), revision)


def downgrade(engine: Engine, scripts: Path, revision: str) -> None:
    command.downgrade(alembic_config(engine, scripts), revision)


def run_migrations(
    metadata: MetaData,
    *,
    version_table: str = "alembic_version",
    owns_table: Callable[[str], bool] | None = None,
    sqlite_one_transaction: bool = False,
) -> None:
    """The body of a service's ``env.py``: migrate on the engine the caller passed in (or, run
    outside our code, one made from the configured URL).

    ``owns_table`` names the service's tables; autogenerate then never proposes to drop another
    service's tables that share the database (the embedded ``lerna serve``).

    ``sqlite_one_transaction`` is for an engine that leaves transactions to pysqlite, which
    commits DDL as it goes: the whole upgrade then runs in one explicit transaction, so a
    process killed mid-migration leaves the previous schema, never tables without a version
    stamp. An engine that begins its own transactions (``SQLiteSetup.begin`` not "driver")
    already makes each revision atomic with its version stamp.
    """
    config = context.config
    engine = config.attributes.get("engine") or create_engine(
        config.get_main_option("sqlalchemy.url") or ""
    )
    include_name = None
    if owns_table is not None:
        ours = owns_table

        def include_name(name: str | None, type_: str, _parent: Any) -> bool:
            return type_ != "table" or ours(name or "")

    with engine.connect() as connection:
        one_transaction = sqlite_one_transaction and connection.dialect.name == "sqlite"
        restore = _begin_sqlite_transaction(connection) if one_transaction else None
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                version_table=version_table,
                include_name=include_name,
                render_as_batch=True,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            if restore is not None:
                restore()


def _begin_sqlite_transaction(connection: Connection) -> Callable[[], None] | None:
    """Opens one transaction that DDL cannot escape; returns how to give the pooled connection
    its transaction mode back afterwards (None when there is nothing to give back)."""
    raw: Any = connection.connection.dbapi_connection
    previous = raw.isolation_level
    raw.isolation_level = None  # pysqlite stops committing before DDL
    connection.begin()  # runs the engine's own BEGIN, if it has one
    if not raw.in_transaction:
        connection.exec_driver_sql("BEGIN")
    if previous is None:
        return None  # and never set None again mid-transaction: pysqlite would commit

    def restore() -> None:
        raw.isolation_level = previous

    return restore
