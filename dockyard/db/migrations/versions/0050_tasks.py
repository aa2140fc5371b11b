"""tasks: durable operations

Revision ID: 0050_tasks
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import dockyard.db.base

revision = "0050_tasks"
down_revision = "0001"
branch_labels = ("tasks",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks_operations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", dockyard.db.base.UTCDateTime(), nullable=True),
        sa.Column("run_after", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("finished_at", dockyard.db.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks_operations")),
    )
    op.create_index(
        "ix_tasks_operations_state_run_after",
        "tasks_operations",
        ["state", "run_after"],
        unique=False,
    )
    op.create_index(
        "ix_tasks_operations_target_state", "tasks_operations", ["target", "state"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_operations_target_state", table_name="tasks_operations")
    op.drop_index("ix_tasks_operations_state_run_after", table_name="tasks_operations")
    op.drop_table("tasks_operations")
