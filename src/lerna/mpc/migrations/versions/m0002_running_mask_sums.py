"""MPC service: each open round's padded running sum of masks, and which issues it holds

Revision ID: m0002
Revises: m0001
Create Date: 2026-12-05 18:12:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "m0002"
down_revision = "m0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rounds already open when this runs have no row: the service computes their mask sums
    # from the accepted devices' seeds at close, as it did before.
    op.create_table(
        "running_mask_sums",
        sa.Column("round_id", sa.String(length=128), nullable=False),
        sa.Column("vector_length", sa.Integer(), nullable=False),
        sa.Column("device_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("padded_sum", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("round_id"),
    )
    with op.batch_alter_table("seed_issues") as batch_op:
        batch_op.add_column(
            sa.Column("receipted", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("folded", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("seed_issues") as batch_op:
        batch_op.drop_column("folded")
        batch_op.drop_column("receipted")
    op.drop_table("running_mask_sums")
