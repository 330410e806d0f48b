"""One way to make a service's engine, whatever the database: SQLite as its ``SQLiteSetup`` says,
any other (PostgreSQL) pooled with a liveness check, so a connection the server or a proxy
dropped between requests is replaced instead of failing the next request."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine

from lerna.storage.sqlite import SQLiteSetup, is_sqlite, sqlite_engine


def make_engine(
    url: str, sqlite: SQLiteSetup, *, pool_size: int = 5, max_overflow: int = 10
) -> Engine:
    """``pool_size`` and ``max_overflow`` apply to server databases only (their defaults are
    SQLAlchemy's); SQLite connections are cheap and local."""
    if is_sqlite(url):
        return sqlite_engine(url, sqlite)
    return create_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True)
