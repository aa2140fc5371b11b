"""Quota math (pure) and the atomic check-and-claim used when servers are created."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dockyard.api.errors import Forbidden
from dockyard.compute.models import KeyPair, Lock, QuotaLimit, Server, ServerGroup

RESOURCES = (
    "instances",
    "cores",
    "ram",
    "key_pairs",
    "server_groups",
    "server_group_members",
    "metadata_items",
)
# what Nova still returns for old microversions; dockyard does not count them
LEGACY = {
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
}
LEGACY_NETWORK = {
    "fixed_ips": -1,
    "floating_ips": -1,
    "security_groups": -1,
    "security_group_rules": -1,
}


def defaults(settings) -> dict[str, int]:
    return {r: int(getattr(settings, f"quota_{r}")) for r in RESOURCES}


@dataclass(frozen=True)
class Over:
    resource: str
    limit: int
    used: int
    requested: int


def overs(limits: dict[str, int], usage: dict[str, int], delta: dict[str, int]) -> list[Over]:
    """The resources that `delta` more would put over their limit (-1 means unlimited)."""
    out = []
    for resource, want in delta.items():
        limit = limits.get(resource, -1)
        if limit < 0 or want <= 0:
            continue
        used = usage.get(resource, 0)
        if used + want > limit:
            out.append(Over(resource, limit, used, want))
    return out


def headroom(limits: dict[str, int], usage: dict[str, int], per_unit: dict[str, int]) -> int:
    """How many units (e.g. servers of one flavor) still fit; a large number if unlimited."""
    best = 10**9
    for resource, each in per_unit.items():
        limit = limits.get(resource, -1)
        if limit < 0 or each <= 0:
            continue
        best = min(best, max(limit - usage.get(resource, 0), 0) // each)
    return best


def exceeded_message(found: list[Over]) -> str:
    parts = ", ".join(
        f"{o.resource} (requested {o.requested}, used {o.used} of {o.limit})" for o in found
    )
    return f"Quota exceeded for {parts}."


def limits_for(session: Session, settings, project_id: str) -> dict[str, int]:
    limits = defaults(settings)
    for row in session.scalars(select(QuotaLimit).where(QuotaLimit.project_id == project_id)):
        limits[row.resource] = row.hard_limit
    return limits


def server_usage(session: Session, project_id: str) -> dict[str, int]:
    count, cores, ram = session.execute(
        select(
            func.count(Server.id),
            func.coalesce(func.sum(func.coalesce(Server.flavor["vcpus"].as_integer(), 0)), 0),
            func.coalesce(func.sum(func.coalesce(Server.flavor["ram"].as_integer(), 0)), 0),
        ).where(Server.project_id == project_id, Server.deleted.is_(False))
    ).one()
    return {"instances": int(count), "cores": int(cores), "ram": int(ram)}


def usage(session: Session, project_id: str, user_id: str | None = None) -> dict[str, int]:
    used = server_usage(session, project_id)
    kp = select(func.count(KeyPair.id))
    kp = (
        kp.where(KeyPair.user_id == user_id)
        if user_id
        else kp.where(KeyPair.project_id == project_id)
    )
    used["key_pairs"] = int(session.scalar(kp) or 0)
    used["server_groups"] = int(
        session.scalar(
            select(func.count(ServerGroup.id)).where(ServerGroup.project_id == project_id)
        )
        or 0
    )
    return used


def lock(session: Session, name: str) -> None:
    """Serialize with every other transaction that locks the same name, until commit.

    The UPDATE takes a row lock on PostgreSQL and the database write lock on SQLite, and
    it is the first write of the transaction, so reads after it see every committed claim.
    """
    dialect = session.bind.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(Lock).values(name=name, version=0).on_conflict_do_nothing())
    session.execute(
        update(Lock)
        .where(Lock.name == name)
        .values(version=Lock.version + 1)
        .execution_options(synchronize_session=False)
    )


def enforce(
    session: Session, settings, project_id: str, delta: dict[str, int], user_id: str | None = None
) -> None:
    """Lock the project's quota and raise 403 if `delta` does not fit. Commit to claim."""
    lock(session, f"quota:{project_id}")
    found = overs(
        limits_for(session, settings, project_id), usage(session, project_id, user_id), delta
    )
    if found:
        raise Forbidden(exceeded_message(found))
