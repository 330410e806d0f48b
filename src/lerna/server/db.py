"""Engines and sessions of the FL-API. On SQLite: WAL, foreign keys, BEGIN IMMEDIATE (so that
read-then-write transactions serialise instead of failing) and the process-wide writer lock
(``lerna.storage.writer_lock``): FL rounds write from many request threads at once, and the
lock hands the database over the moment a writer ends instead of after SQLite's busy sleeps.

Reads that never write take a second engine (``make_read_engine``) so they never queue behind
writers.
"""

from __future__ import annotations

from sqlalchemy import Engine

from lerna.storage import engines
from lerna.storage.sessions import make_session_factory as make_session_factory
from lerna.storage.sessions import transaction as transaction
from lerna.storage.sqlite import SQLiteSetup, is_sqlite, sqlite_engine

BUSY_SECONDS = 60.0

WRITER = SQLiteSetup(busy_seconds=BUSY_SECONDS, writer_lock=True)
READER = SQLiteSetup(
    busy_seconds=BUSY_SECONDS,
    begin="deferred",
    wal=False,
    foreign_keys=False,
    synchronous_normal=False,
    query_only=True,
)
"""A deferred BEGIN is a WAL snapshot: no writer lock, never waits for writers. ``query_only``
makes a read path that starts writing fail loudly in the tests."""


def make_engine(url: str) -> Engine:
    return engines.make_engine(url, WRITER, pool_size=10, max_overflow=20)


def make_read_engine(url: str, engine: Engine) -> Engine:
    """The engine for read-only transactions. On SQLite it opens its own connections (see
    ``READER``). Other databases take no table lock for plain reads: they share the writers'
    engine."""
    if not is_sqlite(url):
        return engine
    return sqlite_engine(url, READER)
