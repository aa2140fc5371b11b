"""orchestration: stacks, resources, events

Revision ID: 0100_orchestration
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import dockyard.db.base

revision = "0100_orchestration"
down_revision = "0001"
branch_labels = ("orchestration",)
depends_on = None

UTC = dockyard.db.base.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "orchestration_stacks",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("template", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("new_template", sa.JSON(), nullable=True),
        sa.Column("new_files", sa.JSON(), nullable=True),
        sa.Column("new_environment", sa.JSON(), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("disable_rollback", sa.Boolean(), nullable=False),
        sa.Column("timeout_mins", sa.Integer(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("action_started_at", UTC(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=True),
        sa.Column("deleted_at", UTC(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orchestration_stacks")),
    )
    op.create_index(
        "ix_orchestration_stacks_project_name", "orchestration_stacks", ["project_id", "name"]
    )
    op.create_index(
        op.f("ix_orchestration_stacks_project_id"), "orchestration_stacks", ["project_id"]
    )
    op.create_table(
        "orchestration_resources",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("stack_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("physical_id", sa.String(255), nullable=True),
        sa.Column("incarnation", sa.String(36), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("replaced", sa.JSON(), nullable=True),
        sa.Column("deletion_policy", sa.String(16), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.Column("updated_at", UTC(), nullable=True),
        sa.ForeignKeyConstraint(
            ["stack_id"],
            ["orchestration_stacks.id"],
            name=op.f("fk_orchestration_resources_stack_id_orchestration_stacks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orchestration_resources")),
    )
    op.create_index(
        "ix_orchestration_resources_stack_name", "orchestration_resources", ["stack_id", "name"]
    )
    op.create_table(
        "orchestration_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("stack_id", sa.String(36), nullable=False),
        sa.Column("resource_name", sa.String(255), nullable=False),
        sa.Column("physical_id", sa.String(255), nullable=False),
        sa.Column("resource_type", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stack_id"],
            ["orchestration_stacks.id"],
            name=op.f("fk_orchestration_events_stack_id_orchestration_stacks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_orchestration_events")),
        sa.UniqueConstraint("id", name=op.f("uq_orchestration_events_id")),
    )
    op.create_index(
        "ix_orchestration_events_stack_seq", "orchestration_events", ["stack_id", "seq"]
    )


def downgrade() -> None:
    op.drop_table("orchestration_events")
    op.drop_table("orchestration_resources")
    op.drop_table("orchestration_stacks")
