"""Engine and sessions. SQLite gets WAL, foreign keys, BEGIN IMMEDIATE (so that read-then-write
transactions serialise instead of failing) and a process-wide writer lock in front of it.

Why the lock: SQLite's busy handler polls with sleeps that grow to 100 ms, so under contention
a waiting request sleeps long after the writer before it has finished. Threads of one process
instead queue on a ``threading.Lock`` that is handed over the moment the holder commits or
rolls back. Other processes on the same file (``serve --workers``) still meet SQLite's own
lock and busy timeout, so correctness never depends on the Python lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

BUSY_SECONDS = 60.0

_writer_locks: dict[str, threading.Lock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(database: str) -> threading.Lock:
    """One lock per database file, shared by every engine of this process that opens it."""
    key = database if database in ("", ":memory:") else str(Path(database).resolve())
    with _writer_locks_guard:
        return _writer_locks.setdefault(key, threading.Lock())


class _LockedConnection(sqlite3.Connection):
    """A DBAPI connection that gives the writer lock back when its transaction ends, however
    it ends: commit, rollback (also the pool's reset on return) or close."""

    writer_lock: threading.Lock | None = None
    holds_lock = False

    def take_lock(self) -> None:
        lock = self.writer_lock
        if lock is None or self.holds_lock:
            return
        if not lock.acquire(timeout=BUSY_SECONDS):
            raise sqlite3.OperationalError("database is locked (writer lock timeout)")
        self.holds_lock = True

    def give_lock(self) -> None:
        if self.holds_lock and self.writer_lock is not None:
            self.holds_lock = False
            self.writer_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.give_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.give_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.give_lock()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        lock = _writer_lock(make_url(url).database or "")
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": BUSY_SECONDS,
                "factory": _LockedConnection,
            },
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None
            dbapi_conn.writer_lock = lock
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            dbapi_conn = conn.connection.dbapi_connection
            dbapi_conn.take_lock()
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                dbapi_conn.give_lock()
                raise

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def make_read_engine(url: str, engine: Engine) -> Engine:
    """The engine for read-only transactions. On SQLite it opens its own connections that
    begin deferred (a WAL snapshot: no writer lock, never waits for writers) and refuse any
    write (``query_only``), so a read path that starts writing fails loudly in the tests. Other
    databases take no table lock for plain reads: they share the writers' engine."""
    if not url.startswith("sqlite"):
        return engine
    reader = create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_SECONDS})

    @event.listens_for(reader, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
        cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(reader, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return reader


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error (no partial writes)."""
    with factory() as session, session.begin():
        yield session
