"""SQLite engines, set up in one place for every service that embeds SQLite.

Why each setting, once for all:
- WAL: readers go on while one writer writes, so a poll never waits for a round's write.
- ``foreign_keys``: SQLite ignores FOREIGN KEY clauses unless each connection turns them on.
- busy timeout: a writer that meets another writer waits instead of failing at once.
- ``synchronous=NORMAL``: with WAL still safe across a process crash, one fsync per checkpoint
  instead of one per commit.
- ``BEGIN IMMEDIATE`` with pysqlite's own transaction handling off: a read-then-write
  transaction takes the write lock at its start, so two of them serialise; under a deferred
  BEGIN the second fails when it upgrades its read lock ("database is locked", which no busy
  timeout can cure because waiting would deadlock).
A service picks what it needs with a ``SQLiteSetup``; the defaults are a writer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from lerna.storage.writer_lock import LockedConnection, lock_for

Begin = Literal["immediate", "deferred", "driver"]
"""How a transaction starts: ``BEGIN IMMEDIATE``, ``BEGIN``, or left to pysqlite ("driver":
a deferred BEGIN before the first write; DDL commits as it goes)."""


@dataclass(frozen=True)
class SQLiteSetup:
    busy_seconds: float
    begin: Begin = "immediate"
    wal: bool = True
    foreign_keys: bool = True
    synchronous_normal: bool = True
    query_only: bool = False
    writer_lock: bool = False
    """Queue this process's writers on a ``writer_lock`` lock before ``BEGIN IMMEDIATE``."""

    def __post_init__(self) -> None:
        if self.writer_lock and self.begin != "immediate":
            raise ValueError(
                "writer_lock needs begin='immediate': the lock stands in for SQLite's write "
                "lock, which only BEGIN IMMEDIATE takes when the transaction starts"
            )

    def pragmas(self) -> list[str]:
        """The statements each new connection runs, in this order (journal mode first: it may
        need the database to itself; ``query_only`` last, or it would refuse the others)."""
        pragmas = ["PRAGMA journal_mode=WAL"] if self.wal else []
        if self.foreign_keys:
            pragmas.append("PRAGMA foreign_keys=ON")
        pragmas.append(f"PRAGMA busy_timeout={int(self.busy_seconds * 1000)}")
        if self.synchronous_normal:
            pragmas.append("PRAGMA synchronous=NORMAL")
        if self.query_only:
            pragmas.append("PRAGMA query_only=ON")
        return pragmas


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def is_memory(url: str) -> bool:
    """An in-memory database exists once per connection: the engine must keep just one."""
    return make_url(url).database in (None, "", ":memory:")


def sqlite_engine(url: str, setup: SQLiteSetup) -> Engine:
    """An engine whose every connection is set up as ``setup`` says. Its connections may cross
    threads (a server hands them between worker threads; the pool keeps one user at a time)."""
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": setup.busy_seconds}
    lock = None
    if setup.writer_lock:
        connect_args["factory"] = LockedConnection
        lock = lock_for(make_url(url).database or "")
    pool: dict[str, Any] = {"poolclass": StaticPool} if is_memory(url) else {}
    engine = create_engine(url, connect_args=connect_args, **pool)
    pragmas = setup.pragmas()
    explicit_begin = setup.begin != "driver"

    @event.listens_for(engine, "connect")
    def _set_up(dbapi_conn: Any, _record: Any) -> None:
        if explicit_begin:
            dbapi_conn.isolation_level = None
        if lock is not None:
            dbapi_conn.writer_lock = lock
            dbapi_conn.wait_seconds = setup.busy_seconds
        cur = dbapi_conn.cursor()
        for pragma in pragmas:
            cur.execute(pragma)
        cur.close()

    if explicit_begin:
        statement = "BEGIN IMMEDIATE" if setup.begin == "immediate" else "BEGIN"

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            if lock is None:
                conn.exec_driver_sql(statement)
                return
            dbapi_conn = conn.connection.dbapi_connection
            dbapi_conn.take_lock()
            try:
                conn.exec_driver_sql(statement)
            except BaseException:
                dbapi_conn.give_lock()
                raise

    return engine
