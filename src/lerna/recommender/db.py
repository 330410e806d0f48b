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
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool

from lerna.recommender.migrate import upgrade


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


def make_engine(url: str) -> Engine:
    """An engine with SQLite made safe for a threaded server (WAL, foreign keys, busy timeout),
    its schema migrated to the newest revision."""
    is_sqlite = url.startswith("sqlite")
    connect_args: dict[str, Any] = {"check_same_thread": False} if is_sqlite else {}
    in_memory = is_sqlite and (url in ("sqlite://", "sqlite:///:memory:"))
    extra: dict[str, Any] = {"poolclass": StaticPool} if in_memory else {}
    engine = create_engine(url, connect_args=connect_args, pool_pre_ping=not is_sqlite, **extra)
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    upgrade(engine)
    return engine
