"""ORM tables. Round state lives here so a restarted or replaced server continues a round."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(120))
    company: Mapped[str] = mapped_column(String(120), default="")
    position: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class App(Base):
    __tablename__ = "apps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    tasks: Mapped[list[MLTask]] = relationship(
        back_populates="app", cascade="all, delete-orphan", passive_deletes=True
    )


class MLTask(Base):
    __tablename__ = "ml_tasks"
    __table_args__ = (UniqueConstraint("app_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    model_type: Mapped[str] = mapped_column(String(32))
    hyper: Mapped[dict[str, Any]] = mapped_column(default=dict)
    feature_schema: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"item_ids": [...], "metadata": [...]}: large, so loaded only where it is used
    catalog: Mapped[dict[str, Any]] = mapped_column(default=dict, deferred=True)
    num_items: Mapped[int] = mapped_column(Integer, default=0)
    cohort_size: Mapped[int] = mapped_column(Integer)
    min_participants: Mapped[int] = mapped_column(Integer)
    selection_seconds: Mapped[float] = mapped_column(Float)
    upload_seconds: Mapped[float] = mapped_column(Float)
    local_epochs: Mapped[int] = mapped_column(Integer, default=1)
    server_learning_rate: Mapped[float] = mapped_column(Float, default=1.0)
    stage_seconds: Mapped[float] = mapped_column(Float, default=60.0)
    privacy: Mapped[dict[str, Any]] = mapped_column(default=dict)  # core.dp.PrivacyConfig
    dp_rounds: Mapped[int] = mapped_column(
        Integer, default=0
    )  # completed rounds that spent privacy
    current_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    app: Mapped[App] = relationship(back_populates="tasks")


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("task_id", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("ml_tasks.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    archive: Mapped[bytes] = mapped_column(LargeBinary)
    round_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    participants: Mapped[int] = mapped_column(Integer, default=0)
    num_examples: Mapped[int] = mapped_column(BigInteger, default=0)
    # Accuracy of *this* version, as reported by devices on their own held-out data when they
    # trained on it in the following round: sums and count, so the mean is exact.
    metrics_sum: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics_count: Mapped[int] = mapped_column(Integer, default=0)
    epsilon: Mapped[float | None] = mapped_column(
        Float, nullable=True
    )  # privacy spent up to this version
    delta: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("app_id", "device_uid"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    device_uid: Mapped[str] = mapped_column(String(128))
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[str] = mapped_column(String(32), default="")
    block_training: Mapped[bool] = mapped_column(Boolean, default=False)
    block_predictions: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class DeviceWeek(Base):
    """One row per device per ISO week it was seen: weekly active devices without a log of calls."""

    __tablename__ = "device_weeks"
    __table_args__ = (UniqueConstraint("device_id", "week"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    week: Mapped[str] = mapped_column(String(10))  # Monday, ISO date


class Round(Base):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("task_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("ml_tasks.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    base_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(
        String(16), default="open", index=True
    )  # open|completed|failed
    cohort_size: Mapped[int] = mapped_column(Integer)
    min_participants: Mapped[int] = mapped_column(Integer)
    selected: Mapped[int] = mapped_column(Integer, default=0)
    uploads: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    selection_deadline: Mapped[datetime] = mapped_column()
    upload_deadline: Mapped[datetime] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    result_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    failure: Mapped[str | None] = mapped_column(String(255), nullable=True)
    privacy: Mapped[dict[str, Any]] = mapped_column(
        default=dict
    )  # the task's config when the round opened
    stage: Mapped[str] = mapped_column(String(16), default="selection")
    stage_deadline: Mapped[datetime | None] = mapped_column(nullable=True)
    secagg_config: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)


class RoundAggregate(Base):
    """The running weighted sum of a round's updates: one row, so memory and storage stay
    constant however many devices take part."""

    __tablename__ = "round_aggregates"
    round_id: Mapped[int] = mapped_column(
        ForeignKey("rounds.id", ondelete="CASCADE"), primary_key=True
    )
    weighted_sum: Mapped[bytes] = mapped_column(LargeBinary)
    weight_total: Mapped[float] = mapped_column(Float, default=0.0)
    num_examples: Mapped[int] = mapped_column(BigInteger, default=0)
    metrics_sum: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics_count: Mapped[int] = mapped_column(Integer, default=0)


class RoundParticipant(Base):
    __tablename__ = "round_participants"
    __table_args__ = (UniqueConstraint("round_id", "device_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="selected")  # selected|uploaded
    party: Mapped[int | None] = mapped_column(Integer, nullable=True)  # secure aggregation id
    upload_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    selected_at: Mapped[datetime] = mapped_column(default=utcnow)
    uploaded_at: Mapped[datetime | None] = mapped_column(nullable=True)


class SecAggMessage(Base):
    """The log of a secure round: every accepted protocol message and stage close, in order.

    The protocol state is a pure function of this log, so any replica (or a restarted server)
    rebuilds it by replay; each request appends one row in the transaction that accepted it.
    Masked inputs are stored as sent: uniformly random-looking without the other devices' masks.
    """

    __tablename__ = "secagg_messages"
    __table_args__ = (UniqueConstraint("round_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(24))
    party: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PredictionStat(Base):
    """Daily prediction/success counters per task version and A/B group (aggregate only)."""

    __tablename__ = "prediction_stats"
    __table_args__ = (UniqueConstraint("task_id", "version", "day", "group"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("ml_tasks.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    day: Mapped[str] = mapped_column(String(10))
    group: Mapped[str] = mapped_column(String(16))
    predictions: Mapped[int] = mapped_column(BigInteger, default=0)
    successes: Mapped[int] = mapped_column(BigInteger, default=0)


from lerna.server import models_ops as _ops  # noqa: E402,F401  (operations tables join the metadata)
from lerna.server import models_rec as _rec  # noqa: E402,F401  (recommender link joins the metadata)
