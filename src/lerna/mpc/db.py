"""The MPC service's own tables: which device got a seed for which round, and which set was
answered per round. The primary key on `answered_sets.round_id` is what makes "one set per
round" hold even under concurrent requests: the second insert fails, and the sum is computed
only after the first one commits.

The schema is Alembic's (`lerna.mpc.migrate`, version table `mpc_alembic_version`), applied when
the engine is made; no seed is ever stored (each is re-derived from the master key)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Engine,
    Integer,
    String,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


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


def make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Commit on success, roll back on any error: no partial writes."""
    with factory() as session, session.begin():
        yield session
