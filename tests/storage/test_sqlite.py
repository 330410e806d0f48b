"""The shared SQLite setup does what each service's ``SQLiteSetup`` asks: the pragmas on every
connection, how a transaction begins, and the writer lock given back however a transaction ends."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, exc

from lerna.storage.sqlite import Begin, SQLiteSetup, sqlite_engine
from lerna.storage.writer_lock import lock_for


def _pragma(engine: Engine, name: str) -> object:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_a_writer_gets_wal_foreign_keys_busy_timeout_and_normal_sync(tmp_path: Path) -> None:
    engine = sqlite_engine(f"sqlite:///{tmp_path / 'w.db'}", SQLiteSetup(busy_seconds=2.5))
    assert _pragma(engine, "journal_mode") == "wal"
    assert _pragma(engine, "foreign_keys") == 1
    assert _pragma(engine, "busy_timeout") == 2500
    assert _pragma(engine, "synchronous") == 1  # NORMAL
    assert _pragma(engine, "query_only") == 0
    engine.dispose()


def test_a_query_only_reader_refuses_writes_and_sets_nothing_else(tmp_path: Path) -> None:
    setup = SQLiteSetup(
        busy_seconds=1.0,
        begin="deferred",
        wal=False,
        foreign_keys=False,
        synchronous_normal=False,
        query_only=True,
    )
    reader = sqlite_engine(f"sqlite:///{tmp_path / 'r.db'}", setup)
    assert _pragma(reader, "journal_mode") == "delete"
    assert _pragma(reader, "foreign_keys") == 0
    assert _pragma(reader, "synchronous") == 2  # FULL, SQLite's default
    assert _pragma(reader, "busy_timeout") == 1000
    with reader.connect() as conn, pytest.raises(exc.OperationalError, match="readonly"):
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER)")
    reader.dispose()


@pytest.mark.parametrize(
    ("begin", "holds_write_lock"),
    [
        ("immediate", True),
        ("deferred", False),
        ("driver", False),
    ],
)
def test_only_an_immediate_begin_takes_the_write_lock_before_the_first_write(
    tmp_path: Path, begin: Begin, holds_write_lock: bool
) -> None:
    path = tmp_path / "b.db"
    engine = sqlite_engine(f"sqlite:///{path}", SQLiteSetup(busy_seconds=1.0, begin=begin))
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")  # a read opens the transaction
        if holds_write_lock:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        else:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    other.close()
    engine.dispose()


def test_the_writer_lock_is_held_from_begin_and_given_back_however_the_transaction_ends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "l.db"
    engine = sqlite_engine(f"sqlite:///{path}", SQLiteSetup(busy_seconds=1.0, writer_lock=True))
    lock = lock_for(str(path))
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        assert lock.locked()
        conn.commit()
        assert not lock.locked()
        conn.exec_driver_sql("SELECT 1")
        assert lock.locked()
        conn.rollback()
        assert not lock.locked()
        conn.exec_driver_sql("SELECT 1")
    assert not lock.locked()  # the pool's reset on return
    engine.dispose()


def test_a_begin_that_sqlite_refuses_gives_the_writer_lock_back(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    engine = sqlite_engine(f"sqlite:///{path}", SQLiteSetup(busy_seconds=0.1, writer_lock=True))
    _pragma(engine, "journal_mode")  # the engine's first connection sets WAL while it can
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer
    with engine.connect() as conn, pytest.raises(exc.OperationalError, match="locked"):
        conn.exec_driver_sql("SELECT 1")
    assert not lock_for(str(path)).locked()
    other.execute("ROLLBACK")
    other.close()
    engine.dispose()


def test_a_writer_waits_for_the_lock_only_as_long_as_the_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    engine = sqlite_engine(f"sqlite:///{path}", SQLiteSetup(busy_seconds=0.1, writer_lock=True))
    lock = lock_for(str(path))
    with (
        lock,  # as if another thread of this process were writing
        engine.connect() as conn,
        pytest.raises(sqlite3.OperationalError, match="writer lock timeout"),
    ):
        conn.exec_driver_sql("SELECT 1")
    assert not lock.locked()
    engine.dispose()


def test_the_writer_lock_needs_an_immediate_begin() -> None:
    with pytest.raises(ValueError, match="begin='immediate'"):
        SQLiteSetup(busy_seconds=1.0, begin="deferred", writer_lock=True)


def test_an_in_memory_database_is_one_database_for_every_thread() -> None:
    engine = sqlite_engine("sqlite://", SQLiteSetup(busy_seconds=1.0, begin="driver"))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (7)")
    seen: list[object] = []

    def read() -> None:
        with engine.connect() as conn:
            seen.append(conn.exec_driver_sql("SELECT id FROM t").scalar())

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert seen == [7]
    engine.dispose()
