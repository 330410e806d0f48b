"""A process-wide writer lock in front of SQLite's own, for engines that opt in.

Why: SQLite's busy handler polls with sleeps that grow to 100 ms, so under contention a waiting
writer sleeps on long after the holder has finished. Threads of one process instead queue on a
``threading.Lock`` that is handed over the moment the holder commits or rolls back. Other
processes on the same file (``serve --workers``) still meet SQLite's own lock and busy timeout,
so correctness never depends on the Python lock.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def lock_for(database: str) -> threading.Lock:
    """One lock per database file, shared by every engine of this process that opens it."""
    key = database if database in ("", ":memory:") else str(Path(database).resolve())
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


class LockedConnection(sqlite3.Connection):
    """A DBAPI connection that gives the writer lock back when its transaction ends, however
    it ends: commit, rollback (also the pool's reset on return) or close."""

    writer_lock: threading.Lock | None = None
    holds_lock = False
    wait_seconds = 60.0

    def take_lock(self) -> None:
        lock = self.writer_lock
        if lock is None or self.holds_lock:
            return
        if not lock.acquire(timeout=self.wait_seconds):
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
