"""Helpers shared by the networking modules: portable insert-or-ignore, instance id, lookups."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dockyard.api.context import RequestContext
from dockyard.api.errors import NotFound
from dockyard.db.base import new_id
from dockyard.network.models import Network, Setting

_NS = uuid.UUID("0d6f3c1e-54a4-4c39-8a0e-6b1f2f3d4e51")


def stable_id(*parts: str) -> str:
    """A deterministic id (so concurrent get-or-create calls collide on the primary key)."""
    return uuid.uuid5(_NS, ":".join(parts)).hex


def insert_ignore(session: Session, model: type, values: dict) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL; True when a row was made.

    A concurrent inserter of the same key waits for the first to commit and then does nothing,
    so get-or-create needs neither savepoints nor retries.
    """
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    key = model.__table__.primary_key.columns.values()[0]
    stmt = module.insert(model).values(**values).on_conflict_do_nothing().returning(key)
    return session.execute(stmt).first() is not None


def instance_id(session: Session) -> str:
    """This deployment's id: labels its Docker networks and names its firewall chains."""
    found = session.get(Setting, "instance_id")
    if found is not None:
        return found.value
    insert_ignore(session, Setting, {"key": "instance_id", "value": new_id()})
    return session.scalars(select(Setting.value).where(Setting.key == "instance_id")).one()


def chain_prefix(instance: str) -> str:
    return "DY" + instance[:6].upper()


def visible_network(session: Session, ctx: RequestContext, network_id: str) -> Network:
    """The network if the caller may see it (own, shared, or admin); else 404 as if absent."""
    net = session.get(Network, network_id)
    if net is None or not (ctx.is_admin or net.shared or net.project_id == ctx.project_id):
        raise NotFound(f"Network {network_id} could not be found.", kind="NetworkNotFound")
    return net


def find_network(session: Session, ctx: RequestContext, ref: str) -> Network:
    """A visible network by id, else by name (templates name them); 404 when none, 409 when
    the name is not unique among the networks the caller sees."""
    from dockyard.api.errors import Conflict

    try:
        return visible_network(session, ctx, ref)
    except NotFound:
        pass
    named = [
        n
        for n in session.scalars(select(Network).where(Network.name == ref))
        if ctx.is_admin or n.shared or n.project_id == ctx.project_id
    ]
    if not named:
        raise NotFound(f"Network {ref} could not be found.", kind="NetworkNotFound")
    if len(named) > 1:
        own = [n for n in named if n.project_id == ctx.project_id]
        if len(own) == 1:
            return own[0]
        raise Conflict(
            f"Multiple networks named {ref} are visible: use the network id.",
            kind="NeutronClientNoUniqueMatch",
        )
    return named[0]
