"""network

Revision ID: 0100_network
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import dockyard.db.base

revision = "0100_network"
down_revision = "0001"
branch_labels = ("network",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "network_networks",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("port_security_enabled", sa.Boolean(), nullable=False),
        sa.Column("mtu", sa.Integer(), nullable=False),
        sa.Column("docker_labels", sa.JSON(), nullable=False),
        sa.Column("created_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_networks")),
    )
    with op.batch_alter_table("network_networks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_network_networks_project_id"), ["project_id"], unique=False
        )
    op.create_table(
        "network_quotas",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("hard_limit", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "resource", name=op.f("pk_network_quotas")),
    )
    with op.batch_alter_table("network_quotas", schema=None) as batch_op:
        batch_op.create_index("ix_network_quotas_project", ["project_id"], unique=False)
    op.create_table(
        "network_security_groups",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("stateful", sa.Boolean(), nullable=False),
        sa.Column("created_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_security_groups")),
    )
    with op.batch_alter_table("network_security_groups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_network_security_groups_project_id"), ["project_id"], unique=False
        )
    op.create_table(
        "network_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_network_settings")),
    )
    op.create_table(
        "network_default_security_groups",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("security_group_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["security_group_id"],
            ["network_security_groups.id"],
            name=op.f(
                "fk_network_default_security_groups_security_group_id_network_security_groups"
            ),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_network_default_security_groups")),
    )
    op.create_table(
        "network_ports",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("network_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("mac_address", sa.String(length=32), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("device_owner", sa.String(length=255), nullable=False),
        sa.Column("port_security_enabled", sa.Boolean(), nullable=False),
        sa.Column("auto_created", sa.Boolean(), nullable=False),
        sa.Column("created_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["network_networks.id"],
            name=op.f("fk_network_ports_network_id_network_networks"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_ports")),
        sa.UniqueConstraint("network_id", "mac_address", name=op.f("uq_network_ports_network_id")),
    )
    with op.batch_alter_table("network_ports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_network_ports_device_id"), ["device_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_network_ports_network_id"), ["network_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_network_ports_project_id"), ["project_id"], unique=False
        )
    op.create_table(
        "network_security_group_rules",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("security_group_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("ethertype", sa.String(length=8), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=True),
        sa.Column("port_range_min", sa.Integer(), nullable=True),
        sa.Column("port_range_max", sa.Integer(), nullable=True),
        sa.Column("remote_ip_prefix", sa.String(length=64), nullable=True),
        sa.Column("remote_group_id", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["remote_group_id"],
            ["network_security_groups.id"],
            name=op.f("fk_network_security_group_rules_remote_group_id_network_security_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["security_group_id"],
            ["network_security_groups.id"],
            name=op.f("fk_network_security_group_rules_security_group_id_network_security_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_security_group_rules")),
    )
    with op.batch_alter_table("network_security_group_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_network_security_group_rules_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_network_security_group_rules_remote_group_id"),
            ["remote_group_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_network_security_group_rules_security_group_id"),
            ["security_group_id"],
            unique=False,
        )
    op.create_table(
        "network_subnets",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("network_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("gateway_ip", sa.String(length=64), nullable=True),
        sa.Column("allocation_pools", sa.JSON(), nullable=False),
        sa.Column("dns_nameservers", sa.JSON(), nullable=False),
        sa.Column("host_routes", sa.JSON(), nullable=False),
        sa.Column("enable_dhcp", sa.Boolean(), nullable=False),
        sa.Column("ipam_generation", sa.Integer(), nullable=False),
        sa.Column("created_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", dockyard.db.base.UTCDateTime(), nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["network_networks.id"],
            name=op.f("fk_network_subnets_network_id_network_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_subnets")),
    )
    with op.batch_alter_table("network_subnets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_network_subnets_network_id"), ["network_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_network_subnets_project_id"), ["project_id"], unique=False
        )
    op.create_table(
        "network_ip_allocations",
        sa.Column("subnet_id", sa.String(length=64), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.Column("port_id", sa.String(length=64), nullable=False),
        sa.Column("network_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["port_id"],
            ["network_ports.id"],
            name=op.f("fk_network_ip_allocations_port_id_network_ports"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["network_subnets.id"],
            name=op.f("fk_network_ip_allocations_subnet_id_network_subnets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subnet_id", "ip_address", name=op.f("pk_network_ip_allocations")),
    )
    with op.batch_alter_table("network_ip_allocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_network_ip_allocations_network_id"), ["network_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_network_ip_allocations_port_id"), ["port_id"], unique=False
        )
    op.create_table(
        "network_port_security_groups",
        sa.Column("port_id", sa.String(length=64), nullable=False),
        sa.Column("security_group_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["port_id"],
            ["network_ports.id"],
            name=op.f("fk_network_port_security_groups_port_id_network_ports"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["security_group_id"],
            ["network_security_groups.id"],
            name=op.f("fk_network_port_security_groups_security_group_id_network_security_groups"),
        ),
        sa.PrimaryKeyConstraint(
            "port_id", "security_group_id", name=op.f("pk_network_port_security_groups")
        ),
    )
    with op.batch_alter_table("network_port_security_groups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_network_port_security_groups_security_group_id"),
            ["security_group_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("network_port_security_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_network_port_security_groups_security_group_id"))
    op.drop_table("network_port_security_groups")
    with op.batch_alter_table("network_ip_allocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_network_ip_allocations_port_id"))
        batch_op.drop_index(batch_op.f("ix_network_ip_allocations_network_id"))
    op.drop_table("network_ip_allocations")
    with op.batch_alter_table("network_subnets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_network_subnets_project_id"))
        batch_op.drop_index(batch_op.f("ix_network_subnets_network_id"))
    op.drop_table("network_subnets")
    with op.batch_alter_table("network_security_group_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_network_security_group_rules_security_group_id"))
        batch_op.drop_index(batch_op.f("ix_network_security_group_rules_remote_group_id"))
        batch_op.drop_index(batch_op.f("ix_network_security_group_rules_project_id"))
    op.drop_table("network_security_group_rules")
    with op.batch_alter_table("network_ports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_network_ports_project_id"))
        batch_op.drop_index(batch_op.f("ix_network_ports_network_id"))
        batch_op.drop_index(batch_op.f("ix_network_ports_device_id"))
    op.drop_table("network_ports")
    op.drop_table("network_default_security_groups")
    op.drop_table("network_settings")
    with op.batch_alter_table("network_security_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_network_security_groups_project_id"))
    op.drop_table("network_security_groups")
    with op.batch_alter_table("network_quotas", schema=None) as batch_op:
        batch_op.drop_index("ix_network_quotas_project")
    op.drop_table("network_quotas")
    with op.batch_alter_table("network_networks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_network_networks_project_id"))
    op.drop_table("network_networks")
