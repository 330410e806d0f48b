"""The device's local store: one SQLite file under the app's storage directory.

It holds the user's events (the only copy: nothing uploads them), the device credential,
settings, cached models and the personal model state. Writes are transactional so a crash
never leaves a half-written model or state behind.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts REAL NOT NULL,
  item_id TEXT NOT NULL,
  label REAL NOT NULL,
  value REAL,
  context TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
"""


@dataclass(frozen=True)
class Event:
    ts: float
    item_id: str
    label: float
    context: list[float]
    value: float | None = None  # optional strength of the outcome (a rating, watch time...)


class LocalStore:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "lerna-device.db"
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives the app being killed; only a power loss can lose the
        # newest events, and it saves an fsync per captured event on the phone's flash.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, **values: Any) -> None:
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    def get_blob(self, key: str) -> bytes | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM blobs WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def put_blob(self, key: str, value: bytes) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO blobs(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def delete_blobs(self, prefix: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM blobs WHERE key LIKE ? ESCAPE '\\'",
                (prefix.replace("_", "\\_") + "%",),
            )

    def add_events(self, events: list[Event]) -> None:
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO events(ts, item_id, label, value, context) VALUES (?, ?, ?, ?, ?)",
                [(e.ts, e.item_id, e.label, e.value, json.dumps(e.context)) for e in events],
            )

    def events(self) -> list[Event]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT ts, item_id, label, context, value FROM events ORDER BY ts, id"
            ).fetchall()
        return [Event(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]

    def count_events(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def clear_events(self) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM events")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
