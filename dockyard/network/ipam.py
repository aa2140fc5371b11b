"""dockyard's IPAM: subnet arithmetic (pure) and fixed-IP allocation in the database.

An address is held by exactly one row of `network_ip_allocations` (primary key subnet + address),
so it can never be handed out twice. Allocation first bumps the subnet's `ipam_generation`: that
UPDATE is a row lock on PostgreSQL and the database write lock on SQLite, so concurrent
allocators on one subnet queue up instead of racing, on both backends.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dockyard.api.errors import BadRequest, Conflict
from dockyard.network.models import IPAllocation, Subnet

IPv4 = ipaddress.IPv4Address
Net4 = ipaddress.IPv4Network


@dataclass(frozen=True)
class Pool:
    start: IPv4
    end: IPv4

    def as_dict(self) -> dict:
        return {"start": str(self.start), "end": str(self.end)}

    def __contains__(self, ip: IPv4) -> bool:
        return self.start <= ip <= self.end


def parse_cidr(cidr: str) -> Net4:
    """An IPv4 network; a 400 naming the recommended form when host bits are set."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise BadRequest(f"Invalid input for cidr: '{cidr}' is not a valid IP subnet.") from exc
    if net.version != 4:
        raise BadRequest("Only IPv4 subnets (ip_version 4) are supported.")
    if str(net) != cidr.strip():
        raise BadRequest(
            f"Invalid input for cidr: '{cidr}' isn't a recommended CIDR, '{net}' is recommended."
        )
    if net.prefixlen > 30:
        raise BadRequest(f"Subnet {net} is too small: it needs room for a gateway and ports.")
    return net


def parse_ip(value: str, what: str = "ip_address") -> IPv4:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError as exc:
        raise BadRequest(f"Invalid input for {what}: '{value}' is not a valid IP address.") from exc
    if ip.version != 4:
        raise BadRequest(f"Invalid input for {what}: only IPv4 addresses are supported.")
    return ip


def usable(net: Net4, ip: IPv4) -> bool:
    """Inside the subnet and neither its network nor its broadcast address."""
    return ip in net and ip != net.network_address and ip != net.broadcast_address


def default_gateway(net: Net4) -> IPv4:
    return net.network_address + 1


def _ranges(ips: list[int]) -> list[Pool]:
    pools: list[Pool] = []
    start = prev = None
    for value in ips:
        if start is None:
            start = prev = value
        elif value == prev + 1:
            prev = value
        else:
            pools.append(Pool(IPv4(start), IPv4(prev)))
            start = prev = value
    if start is not None:
        pools.append(Pool(IPv4(start), IPv4(prev)))
    return pools


def default_pools(net: Net4, gateway: IPv4 | None) -> list[Pool]:
    """Every host address of the subnet except the gateway, as contiguous ranges."""
    first = int(net.network_address) + 1
    last = int(net.broadcast_address) - 1
    if gateway is None or not (first <= int(gateway) <= last):
        return [Pool(IPv4(first), IPv4(last))]
    g = int(gateway)
    pools = []
    if g > first:
        pools.append(Pool(IPv4(first), IPv4(g - 1)))
    if g < last:
        pools.append(Pool(IPv4(g + 1), IPv4(last)))
    return pools


def parse_pools(net: Net4, raw: Iterable[dict], gateway: IPv4 | None) -> list[Pool]:
    """Validate user-given allocation pools: inside the subnet, ordered, disjoint, no gateway."""
    pools = []
    for item in raw:
        if not isinstance(item, dict) or "start" not in item or "end" not in item:
            raise BadRequest("Each allocation pool needs a 'start' and an 'end' address.")
        start = parse_ip(str(item["start"]), "allocation_pools")
        end = parse_ip(str(item["end"]), "allocation_pools")
        if start > end:
            raise BadRequest(f"Allocation pool {start}-{end}: the start is after the end.")
        if not (usable(net, start) and usable(net, end)):
            raise BadRequest(
                f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}."
            )
        pools.append(Pool(start, end))
    pools.sort(key=lambda p: p.start)
    for a, b in zip(pools, pools[1:], strict=False):
        if b.start <= a.end:
            raise BadRequest(
                f"Found overlapping allocation pools: {a.as_dict()} and {b.as_dict()}."
            )
    if gateway is not None:
        for p in pools:
            if gateway in p:
                raise Conflict(
                    f"Gateway ip {gateway} conflicts with allocation pool {p.start}-{p.end}.",
                    kind="GatewayConflictWithAllocationPools",
                )
    return pools


def pools_of(subnet: Subnet) -> list[Pool]:
    return [Pool(IPv4(p["start"]), IPv4(p["end"])) for p in subnet.allocation_pools or []]


def first_free(pools: list[Pool], taken: set[IPv4]) -> IPv4 | None:
    """The lowest pool address not taken (pools in order), or None when they are exhausted."""
    for pool in pools:
        ip = int(pool.start)
        end = int(pool.end)
        while ip <= end:
            candidate = IPv4(ip)
            if candidate not in taken:
                return candidate
            ip += 1
    return None


def overlapping(a: str, b: str) -> bool:
    return ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b))


# ---- allocation in the database ---------------------------------------------------------


def lock_subnet(session: Session, subnet_id: str) -> None:
    """Serialise allocators of one subnet until this transaction ends (see module docstring)."""
    session.execute(
        update(Subnet)
        .where(Subnet.id == subnet_id)
        .values(ipam_generation=Subnet.ipam_generation + 1)
        .execution_options(synchronize_session=False)
    )


def taken_ips(session: Session, subnet_id: str) -> set[IPv4]:
    rows = session.scalars(
        select(IPAllocation.ip_address).where(IPAllocation.subnet_id == subnet_id)
    )
    return {IPv4(r) for r in rows}


def allocate(
    session: Session, subnet: Subnet, port_id: str, fixed_ip: str | None = None
) -> IPAllocation:
    """Hold one address of the subnet for the port: the given one, or the first free one."""
    net = ipaddress.ip_network(subnet.cidr)
    lock_subnet(session, subnet.id)
    taken = taken_ips(session, subnet.id)
    gateway = IPv4(subnet.gateway_ip) if subnet.gateway_ip else None
    if fixed_ip is not None:
        ip = parse_ip(fixed_ip)
        if not usable(net, ip):
            raise BadRequest(
                f"IP address {ip} is not a valid IP for the specified subnet {subnet.id} "
                f"({subnet.cidr}).",
                kind="InvalidIpForSubnet",
            )
        if ip == gateway:
            raise Conflict(
                f"IP address {ip} is the gateway of subnet {subnet.id}; it is held by the "
                "network itself.",
                kind="IpAddressInUse",
            )
        if ip in taken:
            raise Conflict(
                f"Unable to complete operation for network {subnet.network_id}. "
                f"The IP address {ip} is in use.",
                kind="IpAddressInUse",
            )
    else:
        found = first_free(pools_of(subnet), taken | ({gateway} if gateway else set()))
        if found is None:
            raise Conflict(
                f"No more IP addresses available on network {subnet.network_id} "
                f"(subnet {subnet.cidr}).",
                kind="IpAddressGenerationFailure",
            )
        ip = found
    row = IPAllocation(
        subnet_id=subnet.id, ip_address=str(ip), port_id=port_id, network_id=subnet.network_id
    )
    session.add(row)
    session.flush()
    return row


def mac_for_ip(ip: str) -> str:
    """The MAC Docker itself derives from an IPv4 address (02:42 + the four bytes)."""
    return "02:42:" + ":".join(f"{b:02x}" for b in IPv4(ip).packed)
