"""MPC service: running sums of masks move to memory; drop their table and the issue flags

Revision ID: m0003
Revises: m0002
Create Date: 2026-12-04 21:00:00

The sums were a cache of the receipted devices' masks; the service keeps them in memory now
(`lerna.mpc.running_sums`). A round open across this upgrade is answered from its set's seeds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "m0003"
down_revision = "m0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("running_mask_sums")
    with op.batch_alter_table("seed_issues") as batch_op:
        batch_op.drop_column("folded")
        batch_op.drop_column("receipted")


def downgrade() -> None:
    with op.batch_alter_table("seed_issues") as batch_op:
        batch_op.add_column(
            sa.Column("receipted", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("folded", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "running_mask_sums",
        sa.Column("round_id", sa.String(length=128), nullable=False),
        sa.Column("vector_length", sa.Integer(), nullable=False),
        sa.Column("device_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("padded_sum", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("round_id"),
    )
