"""``make_engine`` gives SQLite its setup and a server database its pool and liveness check."""

from __future__ import annotations

import pytest
from sqlalchemy import QueuePool

from lerna.storage.engines import make_engine
from lerna.storage.sessions import make_session_factory, transaction
from lerna.storage.sqlite import SQLiteSetup


def test_each_database_gets_its_own_kind_of_engine(database_url: str) -> None:
    engine = make_engine(database_url, SQLiteSetup(busy_seconds=1.0), pool_size=3, max_overflow=4)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        else:
            assert isinstance(engine.pool, QueuePool)
            assert (engine.pool.size(), engine.pool._max_overflow) == (3, 4)
            assert engine.pool._pre_ping
    engine.dispose()


def test_a_transaction_commits_all_or_nothing(database_url: str) -> None:
    engine = make_engine(database_url, SQLiteSetup(busy_seconds=1.0))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE storage_t (id INTEGER PRIMARY KEY)")
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        session.connection().exec_driver_sql("INSERT INTO storage_t VALUES (1)")
    with pytest.raises(KeyError), transaction(factory) as session:
        session.connection().exec_driver_sql("INSERT INTO storage_t VALUES (2)")
        raise KeyError("fails after the first write")
    with engine.connect() as conn:
        assert [r[0] for r in conn.exec_driver_sql("SELECT id FROM storage_t")] == [1]
    engine.dispose()
