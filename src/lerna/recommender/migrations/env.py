"""Alembic environment of the recommender store: runs on the engine the caller passed in.

Only ``rec_*`` tables are the recommender's (autogenerate leaves another service's tables alone
when both live in one database, the embedded ``lerna serve``). Its SQLite engine leaves
transactions to pysqlite, which commits DDL as it goes, so the upgrade runs in one explicit
transaction: a process killed mid-migration leaves the previous schema, never tables without a
version stamp.
"""

from __future__ import annotations

from lerna.recommender.db import Base
from lerna.recommender.migrate import VERSION_TABLE
from lerna.storage.migrations import run_migrations

run_migrations(
    Base.metadata,
    version_table=VERSION_TABLE,
    owns_table=lambda name: name.startswith("rec_"),
    sqlite_one_transaction=True,
)
