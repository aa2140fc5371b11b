"""Server groups: the rows the scheduler's (anti-)affinity filters read."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from dockyard.api.context import RequestContext
from dockyard.api.errors import BadRequest, NotFound
from dockyard.compute import quotas
from dockyard.compute.models import Server, ServerGroup

POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


def get(session: Session, ctx: RequestContext, gid: str) -> ServerGroup:
    g = session.get(ServerGroup, gid)
    if g is None or (g.project_id != ctx.project_id and not ctx.is_admin):
        raise NotFound(f"Instance group {gid} could not be found.")
    return g


def members(session: Session, gid: str) -> list[str]:
    return list(
        session.scalars(
            select(Server.id).where(Server.server_group_id == gid, Server.deleted.is_(False))
        )
    )


def create(
    session: Session,
    settings,
    ctx: RequestContext,
    name: str,
    policy: str,
    rules: dict,
    group_id: str | None = None,
) -> ServerGroup:
    if policy not in POLICIES:
        raise BadRequest(f"Invalid server group policy {policy!r}: one of {', '.join(POLICIES)}.")
    if not isinstance(rules, dict) or set(rules) - {"max_server_per_host"}:
        raise BadRequest("Invalid rules: only max_server_per_host is supported.")
    if rules and policy != "anti-affinity":
        raise BadRequest("Only anti-affinity policy supports rules.")
    project_id = ctx.project_id or ""
    quotas.enforce(session, settings, project_id, {"server_groups": 1})
    group = ServerGroup(
        id=group_id or str(uuid.uuid4()),
        name=name,
        project_id=project_id,
        user_id=ctx.user_id,
        policy=policy,
        rules=rules,
    )
    session.add(group)
    session.flush()
    return group


def delete(session: Session, ctx: RequestContext, gid: str) -> None:
    """Delete the group; its servers stay (without a group), as in Nova."""
    g = get(session, ctx, gid)
    for server in session.scalars(select(Server).where(Server.server_group_id == g.id)):
        server.server_group_id = None
    session.delete(g)
