"""Network quotas per project: networks, subnets, ports, security groups and rules."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dockyard.api.errors import BadRequest, Conflict
from dockyard.network.models import (
    Network,
    Port,
    Quota,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)

# Neutron's names and defaults; -1 means unlimited
DEFAULTS = {
    "network": 100,
    "subnet": 100,
    "port": 500,
    "security_group": 10,
    "security_group_rule": 100,
    "router": 10,
    "floatingip": 50,
    "rbac_policy": 10,
    "subnetpool": -1,
}
COUNTED = {
    "network": Network,
    "subnet": Subnet,
    "port": Port,
    "security_group": SecurityGroup,
    "security_group_rule": SecurityGroupRule,
}


def limits(session: Session, project_id: str) -> dict[str, int]:
    out = dict(DEFAULTS)
    for q in session.scalars(select(Quota).where(Quota.project_id == project_id)):
        out[q.resource] = q.hard_limit
    return out


def used(session: Session, project_id: str) -> dict[str, int]:
    out = {name: 0 for name in DEFAULTS}
    for name, model in COUNTED.items():
        out[name] = session.scalar(
            select(func.count()).select_from(model).where(model.project_id == project_id)
        )
    return out


def check(session: Session, project_id: str, resource: str, adding: int = 1) -> None:
    limit = limits(session, project_id)[resource]
    if limit < 0:
        return
    model = COUNTED[resource]
    count = session.scalar(
        select(func.count()).select_from(model).where(model.project_id == project_id)
    )
    if count + adding > limit:
        raise Conflict(
            f"Quota exceeded for resources: ['{resource}']. The limit is {limit}; "
            "delete some or ask an admin to raise it.",
            kind="OverQuota",
        )


def update(session: Session, project_id: str, values: dict) -> None:
    for name, raw in values.items():
        if name not in DEFAULTS:
            raise BadRequest(f"Unrecognized attribute(s) '{name}'", kind="InvalidInput")
        try:
            value = int(raw)
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"Invalid value for {name}: {raw!r} is not an integer.") from exc
        if value < -1:
            raise BadRequest(f"Invalid value for {name}: {value} is less than -1.")
        row = session.get(Quota, (project_id, name))
        if row is None:
            session.add(Quota(project_id=project_id, resource=name, hard_limit=value))
        else:
            row.hard_limit = value
    session.flush()


def reset(session: Session, project_id: str) -> None:
    for q in session.scalars(select(Quota).where(Quota.project_id == project_id)).all():
        session.delete(q)
    session.flush()
