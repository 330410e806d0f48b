"""The MPC service's own tables: which device got a seed for which round, and which set was
answered per round. The primary key on `answered_sets.round_id` is what makes "one set per
round" hold even under concurrent requests: the second insert fails, and the sum is computed
only after the first one commits.

The schema is Alembic's (`lerna.mpc.migrate`, version table `mpc_alembic_version`), applied when
the engine is made; no seed is ever stored (each is re-derived from the master key)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Engine, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lerna.storage import engines
from lerna.storage.sessions import transaction as transaction
from lerna.storage.sqlite import SQLiteSetup


class Base(DeclarativeBase):
    pass


class SeedIssue(Base):
    __tablename__ = "seed_issues"

    round_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AnsweredSet(Base):
    __tablename__ = "answered_sets"

    round_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    device_count: Mapped[int] = mapped_column(Integer)
    devices_sha256: Mapped[str] = mapped_column(String(64))
    answered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


SQLITE = SQLiteSetup(busy_seconds=30.0, synchronous_normal=False)
"""BEGIN IMMEDIATE: transactions that read, then write, serialise instead of failing on a lock
upgrade. Synchronous stays FULL (SQLite's default): a committed answered set then survives a
power loss too; under NORMAL the last commits could vanish, and with them the record that a
round's one set was already answered."""


def make_engine(url: str) -> Engine:
    return engines.make_engine(url, SQLITE)
