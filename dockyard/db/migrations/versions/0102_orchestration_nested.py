"""orchestration: nested stacks (parent stack and resource)

Revision ID: 0102_orchestration_nested
Revises: 0101_orchestration_software
"""

import sqlalchemy as sa
from alembic import op

revision = "0102_orchestration_nested"
down_revision = "0101_orchestration_software"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orchestration_stacks") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("parent_resource", sa.String(255), nullable=True))
        batch.create_index("ix_orchestration_stacks_parent_id", ["parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("orchestration_stacks") as batch:
        batch.drop_index("ix_orchestration_stacks_parent_id")
        batch.drop_column("parent_resource")
        batch.drop_column("parent_id")
