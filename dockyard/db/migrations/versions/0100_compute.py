"""compute: flavors, servers, key pairs, hosts, server groups, quotas

Revision ID: 0100_compute
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import dockyard.db.base

revision = "0100_compute"
down_revision = "0001"
branch_labels = ("compute",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compute_flavors",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("ram", sa.Integer(), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("disk", sa.Integer(), nullable=False),
        sa.Column("ephemeral", sa.Integer(), nullable=False),
        sa.Column("swap", sa.Integer(), nullable=False),
        sa.Column("rxtx_factor", sa.Float(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("extra_specs", sa.JSON(), nullable=False),
        sa.Column("created_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compute_flavors")),
        sa.UniqueConstraint("name", name=op.f("uq_compute_flavors_name")),
    )
    op.create_table(
        "compute_hosts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("url", sa.String(length=1024), nullable=False),
        sa.Column("tls", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("up", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("arch", sa.String(length=32), nullable=False),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.Column("last_seen", dockyard.db.base.UTCDateTime(), nullable=True),
        sa.Column("created_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compute_hosts")),
        sa.UniqueConstraint("name", name=op.f("uq_compute_hosts_name")),
    )
    op.create_table(
        "compute_keypairs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=255), nullable=False),
        sa.Column("created_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compute_keypairs")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_compute_keypairs_user_id")),
    )
    op.create_index(
        op.f("ix_compute_keypairs_user_id"), "compute_keypairs", ["user_id"], unique=False
    )
    op.create_table(
        "compute_locks",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_compute_locks")),
    )
    op.create_table(
        "compute_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_compute_meta")),
    )
    op.create_table(
        "compute_quotas",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("hard_limit", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compute_quotas")),
        sa.UniqueConstraint("project_id", "resource", name=op.f("uq_compute_quotas_project_id")),
    )
    op.create_table(
        "compute_server_groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=32), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compute_server_groups")),
    )
    op.create_index(
        op.f("ix_compute_server_groups_project_id"),
        "compute_server_groups",
        ["project_id"],
        unique=False,
    )
    op.create_table(
        "compute_servers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("image_id", sa.String(length=64), nullable=False),
        sa.Column("flavor_id", sa.String(length=255), nullable=False),
        sa.Column("flavor", sa.JSON(), nullable=False),
        sa.Column("old_flavor", sa.JSON(), nullable=True),
        sa.Column("vm_state", sa.String(length=32), nullable=False),
        sa.Column("task_state", sa.String(length=32), nullable=True),
        sa.Column("power_state", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("container_id", sa.String(length=128), nullable=True),
        sa.Column("key_name", sa.String(length=255), nullable=True),
        sa.Column("key_data", sa.Text(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("user_data", sa.Text(), nullable=True),
        sa.Column("security_groups", sa.JSON(), nullable=False),
        sa.Column("requested_networks", sa.JSON(), nullable=False),
        sa.Column("port_ids", sa.JSON(), nullable=False),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("locked_reason", sa.Text(), nullable=True),
        sa.Column("locked_by", sa.String(length=16), nullable=True),
        sa.Column("availability_zone", sa.String(length=255), nullable=False),
        sa.Column("reservation_id", sa.String(length=64), nullable=False),
        sa.Column("launch_index", sa.Integer(), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("server_group_id", sa.String(length=36), nullable=True),
        sa.Column("access_ipv4", sa.String(length=64), nullable=False),
        sa.Column("access_ipv6", sa.String(length=64), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("fault", sa.JSON(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("launched_at", dockyard.db.base.UTCDateTime(), nullable=True),
        sa.Column("terminated_at", dockyard.db.base.UTCDateTime(), nullable=True),
        sa.Column("deleted_at", dockyard.db.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compute_servers")),
    )
    op.create_index(
        "ix_compute_servers_host_deleted", "compute_servers", ["host", "deleted"], unique=False
    )
    op.create_index(
        "ix_compute_servers_project_deleted",
        "compute_servers",
        ["project_id", "deleted"],
        unique=False,
    )
    op.create_table(
        "compute_flavor_access",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flavor_id", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["flavor_id"],
            ["compute_flavors.id"],
            name=op.f("fk_compute_flavor_access_flavor_id_compute_flavors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compute_flavor_access")),
        sa.UniqueConstraint(
            "flavor_id", "project_id", name=op.f("uq_compute_flavor_access_flavor_id")
        ),
    )
    op.create_index(
        op.f("ix_compute_flavor_access_flavor_id"),
        "compute_flavor_access",
        ["flavor_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_compute_flavor_access_flavor_id"), table_name="compute_flavor_access")
    op.drop_table("compute_flavor_access")
    op.drop_index("ix_compute_servers_project_deleted", table_name="compute_servers")
    op.drop_index("ix_compute_servers_host_deleted", table_name="compute_servers")
    op.drop_table("compute_servers")
    op.drop_index(op.f("ix_compute_server_groups_project_id"), table_name="compute_server_groups")
    op.drop_table("compute_server_groups")
    op.drop_table("compute_quotas")
    op.drop_table("compute_meta")
    op.drop_table("compute_locks")
    op.drop_index(op.f("ix_compute_keypairs_user_id"), table_name="compute_keypairs")
    op.drop_table("compute_keypairs")
    op.drop_table("compute_hosts")
    op.drop_table("compute_flavors")
