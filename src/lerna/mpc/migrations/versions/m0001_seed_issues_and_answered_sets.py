"""MPC service: seed issues and answered sets (adopts a database made before migrations)

Revision ID: m0001
Revises:
Create Date: 2026-12-05 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "m0001"
down_revision = None
branch_labels = ("mpc",)
depends_on = None


def upgrade() -> None:
    # Before migrations the service ran `create_all`; its tables are exactly these, so a table
    # that already exists is kept as it is (with its rows: the answered sets must survive).
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "seed_issues" not in existing:
        op.create_table(
            "seed_issues",
            sa.Column("round_id", sa.String(length=128), nullable=False),
            sa.Column("device_id", sa.String(length=128), nullable=False),
            sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("round_id", "device_id"),
        )
    if "answered_sets" not in existing:
        op.create_table(
            "answered_sets",
            sa.Column("round_id", sa.String(length=128), nullable=False),
            sa.Column("device_count", sa.Integer(), nullable=False),
            sa.Column("devices_sha256", sa.String(length=64), nullable=False),
            sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("round_id"),
        )


def downgrade() -> None:
    op.drop_table("answered_sets")
    op.drop_table("seed_issues")
