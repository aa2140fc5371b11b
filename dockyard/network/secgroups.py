"""Security groups and their rules: the per-project `default` group and rule validation."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dockyard.api.context import RequestContext
from dockyard.api.errors import BadRequest, Conflict, NotFound
from dockyard.db.base import utcnow
from dockyard.network import quotas
from dockyard.network.common import insert_ignore, stable_id
from dockyard.network.models import (
    DefaultSecurityGroup,
    PortSecurityGroup,
    SecurityGroup,
    SecurityGroupRule,
)

DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "Default security group"
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58}


def default_group_id(project_id: str) -> str:
    return stable_id("default-security-group", project_id)


def ensure_default_group(session: Session, project_id: str) -> str:
    """The project's `default` group, made on first need: egress to anywhere, ingress only
    from members of the group itself. Exactly one per project even under concurrency."""
    gid = default_group_id(project_id)
    if session.get(SecurityGroup, gid) is not None:
        return gid
    now = utcnow()
    made = insert_ignore(
        session,
        SecurityGroup,
        {
            "id": gid,
            "project_id": project_id,
            "name": DEFAULT_NAME,
            "description": DEFAULT_DESCRIPTION,
            "stateful": True,
            "created_at": now,
            "updated_at": now,
            "revision_number": 1,
        },
    )
    if made:
        insert_ignore(
            session, DefaultSecurityGroup, {"project_id": project_id, "security_group_id": gid}
        )
        for direction, ethertype, remote in (
            ("egress", "IPv4", None),
            ("egress", "IPv6", None),
            ("ingress", "IPv4", gid),
            ("ingress", "IPv6", gid),
        ):
            session.add(
                SecurityGroupRule(
                    id=stable_id("default-rule", project_id, direction, ethertype),
                    security_group_id=gid,
                    project_id=project_id,
                    direction=direction,
                    ethertype=ethertype,
                    remote_group_id=remote,
                )
            )
        session.flush()
    return gid


def is_default(group: SecurityGroup) -> bool:
    return group.id == default_group_id(group.project_id)


def new_group_rules(session: Session, group: SecurityGroup) -> None:
    """A new (non-default) group allows all egress, like Neutron's."""
    for ethertype in ("IPv4", "IPv6"):
        session.add(
            SecurityGroupRule(
                security_group_id=group.id,
                project_id=group.project_id,
                direction="egress",
                ethertype=ethertype,
            )
        )


def create_group(session: Session, project_id: str, name: str, description: str) -> SecurityGroup:
    """A new group of the project (which gets its `default` first, like Neutron)."""
    if name == DEFAULT_NAME:
        raise Conflict(
            "Default security group already exists.", kind="SecurityGroupDefaultAlreadyExists"
        )
    ensure_default_group(session, project_id)
    quotas.check(session, project_id, "security_group")
    group = SecurityGroup(project_id=project_id, name=name, description=description)
    session.add(group)
    session.flush()
    new_group_rules(session, group)
    session.flush()
    return group


def delete_group(session: Session, group: SecurityGroup) -> None:
    """Delete a group no port uses; the default group stays."""
    if is_default(group):
        raise Conflict(
            "Insufficient rights for removing default security group.",
            kind="SecurityGroupCannotRemoveDefault",
        )
    users = session.scalars(
        select(PortSecurityGroup.port_id).where(PortSecurityGroup.security_group_id == group.id)
    ).all()
    if users:
        raise Conflict(
            f"Security Group {group.id} in use: ports {', '.join(sorted(users))} still have it.",
            kind="SecurityGroupInUse",
        )
    session.delete(group)
    session.flush()


def add_rule(
    session: Session, group: SecurityGroup, spec: RuleSpec, description: str = ""
) -> SecurityGroupRule:
    """Store a validated rule; 409 when the group already has the same one."""
    for existing in session.scalars(
        select(SecurityGroupRule).where(SecurityGroupRule.security_group_id == group.id)
    ):
        if same_rule(existing, spec):
            raise Conflict(
                f"Security group rule already exists. Rule id is {existing.id}.",
                kind="SecurityGroupRuleExists",
            )
    quotas.check(session, group.project_id, "security_group_rule")
    rule = SecurityGroupRule(
        security_group_id=group.id,
        project_id=group.project_id,
        direction=spec.direction,
        ethertype=spec.ethertype,
        protocol=spec.protocol,
        port_range_min=spec.port_range_min,
        port_range_max=spec.port_range_max,
        remote_ip_prefix=spec.remote_ip_prefix,
        remote_group_id=spec.remote_group_id,
        description=description,
    )
    session.add(rule)
    group.revision_number += 1
    session.flush()
    return rule


def visible_group(session: Session, ctx: RequestContext, group_id: str) -> SecurityGroup:
    group = session.get(SecurityGroup, group_id)
    if group is None or not (ctx.is_admin or group.project_id == ctx.project_id):
        raise NotFound(f"Security group {group_id} does not exist", kind="SecurityGroupNotFound")
    return group


def resolve_groups(
    session: Session, ctx: RequestContext, project_id: str, names_or_ids: list[str]
) -> list[str]:
    """Group ids for names or ids, looked up in the port's project (`default` made on need)."""
    out: list[str] = []
    for ref in names_or_ids:
        if ref == DEFAULT_NAME:
            gid = ensure_default_group(session, project_id)
        else:
            group = session.get(SecurityGroup, ref)
            if group is not None and (ctx.is_admin or group.project_id == ctx.project_id):
                gid = group.id
            else:
                matches = session.scalars(
                    select(SecurityGroup.id).where(
                        SecurityGroup.name == ref, SecurityGroup.project_id == project_id
                    )
                ).all()
                if not matches:
                    raise NotFound(
                        f"Security group {ref} does not exist", kind="SecurityGroupNotFound"
                    )
                if len(matches) > 1:
                    raise Conflict(
                        f"More than one security group is named {ref}; use its id.",
                        kind="DuplicateSecurityGroup",
                    )
                gid = matches[0]
        if gid not in out:
            out.append(gid)
    return out


@dataclass(frozen=True)
class RuleSpec:
    direction: str
    ethertype: str
    protocol: str | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None


def normalize_rule(
    direction: str | None,
    ethertype: str | None,
    protocol: str | int | None,
    port_range_min: int | None,
    port_range_max: int | None,
    remote_ip_prefix: str | None,
    remote_group_id: str | None,
) -> RuleSpec:
    """Validate a rule the way Neutron does; 400 naming the problem."""
    if direction not in ("ingress", "egress"):
        raise BadRequest(
            f"Invalid input for direction. Reason: '{direction}' is not in ['ingress', 'egress'].",
            kind="InvalidInput",
        )
    ethertype = ethertype or "IPv4"
    if ethertype not in ("IPv4", "IPv6"):
        raise BadRequest(
            f"Invalid input for ethertype. Reason: '{ethertype}' is not in ['IPv4', 'IPv6'].",
            kind="InvalidInput",
        )
    proto: str | None
    if protocol is None or str(protocol).lower() in ("", "any", "null"):
        proto = None
    else:
        proto = str(protocol).lower()
        if proto.isdigit():
            if not 0 <= int(proto) <= 255:
                raise BadRequest(
                    f"Security group rule protocol {protocol} not supported.",
                    kind="SecurityGroupRuleInvalidProtocol",
                )
            names = {str(v): k for k, v in PROTOCOLS.items() if k != "ipv6-icmp"}
            proto = names.get(proto, proto)
            if proto == "0":
                proto = None
        elif proto not in PROTOCOLS:
            raise BadRequest(
                f"Security group rule protocol {protocol} not supported. Only protocol values "
                "tcp, udp, icmp, icmpv6, any and integer representations [0 to 255] "
                "are supported.",
                kind="SecurityGroupRuleInvalidProtocol",
            )
    lo, hi = port_range_min, port_range_max
    if proto in ("tcp", "udp"):
        if (lo is None) != (hi is None):
            lo = lo if lo is not None else hi
            hi = hi if hi is not None else lo
        for v in (lo, hi):
            if v is not None and not 1 <= v <= 65535:
                raise BadRequest(
                    f"Invalid value for port {v}: ports are 1 to 65535.",
                    kind="SecurityGroupInvalidPortValue",
                )
        if lo is not None and hi is not None and lo > hi:
            raise BadRequest(
                "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                kind="SecurityGroupInvalidPortRange",
            )
    elif proto in ("icmp", "icmpv6", "ipv6-icmp"):
        for name, v in (("type", lo), ("code", hi)):
            if v is not None and not 0 <= v <= 255:
                raise BadRequest(
                    f"Invalid value for ICMP {name} {v}: it must be 0 to 255.",
                    kind="SecurityGroupInvalidIcmpValue",
                )
        if lo is None and hi is not None:
            raise BadRequest(
                "ICMP code (port-range-max) is given without an ICMP type (port-range-min).",
                kind="SecurityGroupMissingIcmpType",
            )
    elif lo is not None or hi is not None:
        raise BadRequest(
            "Port ranges are only allowed with protocols tcp, udp, icmp and icmpv6.",
            kind="SecurityGroupInvalidPortRange",
        )
    if remote_ip_prefix and remote_group_id:
        raise BadRequest(
            "Only remote_ip_prefix or remote_group_id may be provided.",
            kind="SecurityGroupRemoteGroupAndRemoteIpPrefix",
        )
    prefix = None
    if remote_ip_prefix:
        try:
            net = ipaddress.ip_network(remote_ip_prefix, strict=False)
        except ValueError as exc:
            raise BadRequest(
                f"Invalid input for remote_ip_prefix: '{remote_ip_prefix}' is not a valid "
                "IP prefix.",
                kind="InvalidInput",
            ) from exc
        if f"IPv{net.version}" != ethertype:
            raise BadRequest(
                f"Conflicting value ethertype {ethertype} for CIDR {remote_ip_prefix}",
                kind="SecurityGroupRuleParameterConflict",
            )
        prefix = str(net)
    return RuleSpec(direction, ethertype, proto, lo, hi, prefix, remote_group_id)


def same_rule(rule: SecurityGroupRule, spec: RuleSpec) -> bool:
    def norm_prefix(p: str | None) -> str | None:
        return None if p in (None, "0.0.0.0/0", "::/0") else p

    return (
        rule.direction == spec.direction
        and rule.ethertype == spec.ethertype
        and (rule.protocol or None) == spec.protocol
        and rule.port_range_min == spec.port_range_min
        and rule.port_range_max == spec.port_range_max
        and norm_prefix(rule.remote_ip_prefix) == norm_prefix(spec.remote_ip_prefix)
        and rule.remote_group_id == spec.remote_group_id
    )
