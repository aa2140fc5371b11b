"""Stacks, their resources and events. Every state change is a row update, so a restarted
engine picks up exactly where the last one stopped."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.db.base import Base, UTCDateTime, utcnow


class Stack(Base):
    __tablename__ = "orchestration_stacks"
    __table_args__ = (
        Index("ix_orchestration_stacks_project_name", "project_id", "name"),
        Index(
            "uq_orchestration_stacks_live_name",
            "project_id",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(255), default="")
    roles: Mapped[list] = mapped_column(JSON, default=list)
    template: Mapped[dict] = mapped_column(JSON)
    files: Mapped[dict] = mapped_column(JSON, default=dict)
    environment: Mapped[dict] = mapped_column(JSON, default=dict)
    # the template/env of the action in progress (update); swapped in when it completes
    new_template: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    new_files: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    new_environment: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    action: Mapped[str] = mapped_column(String(16), default="CREATE")
    status: Mapped[str] = mapped_column(String(16), default="IN_PROGRESS")
    status_reason: Mapped[str] = mapped_column(Text, default="")
    # bumped for every new action: an older action's worker stops and writes nothing
    generation: Mapped[int] = mapped_column(Integer, default=0)
    disable_rollback: Mapped[bool] = mapped_column(Boolean, default=True)
    timeout_mins: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tags: Mapped[list | None] = mapped_column(JSON, nullable=True)
    action_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # nested stacks: the stack and resource (provider template, OS::Heat::Stack) owning this one
    parent_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    parent_resource: Mapped[str | None] = mapped_column(String(255), nullable=True)


class StackResource(Base):
    __tablename__ = "orchestration_resources"
    __table_args__ = (Index("ix_orchestration_resources_stack_name", "stack_id", "name"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    stack_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("orchestration_stacks.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(16), default="INIT")
    status: Mapped[str] = mapped_column(String(16), default="COMPLETE")
    status_reason: Mapped[str] = mapped_column(Text, default="")
    physical_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # identifies one physical incarnation; set before create so a retry finds what it made
    incarnation: Mapped[str] = mapped_column(String(36), default="")
    properties: Mapped[dict] = mapped_column(JSON, default=dict)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    metadata_: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    # a replaced physical resource still to delete: {type, physical_id, properties, data}
    replaced: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    deletion_policy: Mapped[str] = mapped_column(String(16), default="Delete")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Event(Base):
    __tablename__ = "orchestration_events"
    __table_args__ = (Index("ix_orchestration_events_stack_seq", "stack_id", "seq"),)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    stack_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("orchestration_stacks.id", ondelete="CASCADE")
    )
    resource_name: Mapped[str] = mapped_column(String(255))
    physical_id: Mapped[str] = mapped_column(String(255), default="")
    resource_type: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    properties: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SoftwareConfig(Base):
    """Heat's software configs: stored scripts/configs servers fetch (no agent runs them here)."""

    __tablename__ = "orchestration_software_configs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    group: Mapped[str] = mapped_column(String(255), default="Heat::Ungrouped")
    config: Mapped[str] = mapped_column(Text, default="")
    inputs: Mapped[list] = mapped_column(JSON, default=list)
    outputs: Mapped[list] = mapped_column(JSON, default=list)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SoftwareDeployment(Base):
    __tablename__ = "orchestration_software_deployments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    config_id: Mapped[str] = mapped_column(String(36))
    server_id: Mapped[str] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(255), default="INIT")
    status: Mapped[str] = mapped_column(String(255), default="COMPLETE")
    status_reason: Mapped[str] = mapped_column(Text, default="")
    input_values: Mapped[dict] = mapped_column(JSON, default=dict)
    output_values: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
