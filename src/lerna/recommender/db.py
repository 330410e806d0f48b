"""SQLAlchemy tables of the recommendation service's own store (SQLite or PostgreSQL).

Times are epoch seconds as floats: portable across both databases and directly usable as numpy
arrays in training. The service owns its metadata; it shares no table with the FL-API.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lerna.recommender.migrate import upgrade
from lerna.storage import engines
from lerna.storage.sqlite import SQLiteSetup


class Base(DeclarativeBase):
    pass


class EngineRow(Base):
    __tablename__ = "rec_engines"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class EventRow(Base):
    __tablename__ = "rec_events"
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    engine_id: Mapped[str] = mapped_column(ForeignKey("rec_engines.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(128))
    entity_id: Mapped[str] = mapped_column(String(256))
    target_entity_id: Mapped[str] = mapped_column(String(256))
    event_time: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        Index("ix_rec_events_user", "engine_id", "entity_id", "event_time"),
        Index("ix_rec_events_time", "engine_id", "event_time"),
    )


class ItemRow(Base):
    __tablename__ = "rec_items"
    engine_id: Mapped[str] = mapped_column(
        ForeignKey("rec_engines.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON)


class JobRow(Base):
    __tablename__ = "rec_jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    engine_id: Mapped[str] = mapped_column(ForeignKey("rec_engines.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_rec_jobs_engine", "engine_id", "created_at"),)


class ModelRow(Base):
    __tablename__ = "rec_models"
    engine_id: Mapped[str] = mapped_column(
        ForeignKey("rec_engines.id", ondelete="CASCADE"), primary_key=True
    )
    trained_at: Mapped[float] = mapped_column(Float)
    blob: Mapped[bytes] = mapped_column(LargeBinary)


SQLITE = SQLiteSetup(busy_seconds=5.0, begin="driver")
"""Transactions are left to pysqlite (a deferred BEGIN at the first write), which also commits
DDL as it goes; the store's migrations therefore run in one explicit transaction of their own
(``lerna.recommender.migrations.env``)."""


def make_engine(url: str) -> Engine:
    """An engine with SQLite made safe for a threaded server (WAL, foreign keys, busy timeout),
    its schema migrated to the newest revision."""
    engine = engines.make_engine(url, SQLITE)
    upgrade(engine)
    return engine
