"""recommender link: an app's ML task linked to an engine (reviewed autogenerate)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 16:13:11.822418
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recommender_links",
        sa.Column("app_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("engine_id", sa.String(length=64), nullable=False),
        sa.Column("forward_events", sa.Boolean(), nullable=False),
        sa.Column("pseudonym_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["task_id"], ["ml_tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id"),
    )
    with op.batch_alter_table("recommender_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recommender_links_task_id"), ["task_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recommender_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recommender_links_task_id"))

    op.drop_table("recommender_links")
