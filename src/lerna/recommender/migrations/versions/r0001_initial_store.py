"""recommender store: engines, events, items, jobs, models (reviewed autogenerate)

Revision ID: r0001
Revises:
Create Date: 2026-12-04 16:09:54.745468
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision = None
branch_labels = ("recommender",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rec_engines",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "rec_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("engine_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=128), nullable=False),
        sa.Column("entity_id", sa.String(length=256), nullable=False),
        sa.Column("target_entity_id", sa.String(length=256), nullable=False),
        sa.Column("event_time", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["engine_id"], ["rec_engines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rec_events", schema=None) as batch_op:
        batch_op.create_index("ix_rec_events_time", ["engine_id", "event_time"], unique=False)
        batch_op.create_index(
            "ix_rec_events_user", ["engine_id", "entity_id", "event_time"], unique=False
        )

    op.create_table(
        "rec_items",
        sa.Column("engine_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=256), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["engine_id"], ["rec_engines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("engine_id", "item_id"),
    )
    op.create_table(
        "rec_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("engine_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["engine_id"], ["rec_engines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rec_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_rec_jobs_engine", ["engine_id", "created_at"], unique=False)

    op.create_table(
        "rec_models",
        sa.Column("engine_id", sa.String(length=64), nullable=False),
        sa.Column("trained_at", sa.Float(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["engine_id"], ["rec_engines.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("engine_id"),
    )


def downgrade() -> None:
    op.drop_table("rec_models")
    with op.batch_alter_table("rec_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_rec_jobs_engine")

    op.drop_table("rec_jobs")
    op.drop_table("rec_items")
    with op.batch_alter_table("rec_events", schema=None) as batch_op:
        batch_op.drop_index("ix_rec_events_user")
        batch_op.drop_index("ix_rec_events_time")

    op.drop_table("rec_events")
    op.drop_table("rec_engines")
