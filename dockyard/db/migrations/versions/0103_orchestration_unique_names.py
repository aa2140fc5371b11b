"""orchestration: one live stack per name and project (concurrent creates cannot both win)

Revision ID: 0103_orchestration_unique_names
Revises: 0102_orchestration_nested
"""

import sqlalchemy as sa
from alembic import op

revision = "0103_orchestration_unique_names"
down_revision = "0102_orchestration_nested"
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "uq_orchestration_stacks_live_name",
        "orchestration_stacks",
        ["project_id", "name"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_orchestration_stacks_live_name", table_name="orchestration_stacks")
