"""Ports: creation with fixed IPs from dockyard's IPAM, and the interface compute calls.

Compute's interface (see docs/networking.md):
  auto_network_id(session, ctx) -> str
  allocate_port(session, ctx, *, device_id, network_id=None, port_id=None, fixed_ip=None,
                security_groups=None) -> PortBinding
  ports_for_device(session, device_id) -> list[PortBinding]
  release_ports(session, device_id) -> None
  apply_security_groups(session, ctx, port_id, security_groups) -> PortBinding
All run inside the caller's transaction (`with runtime.db.session() as session:`), so a refusal
leaves nothing behind. Attaching the container is dockyard.docker.networks (endpoint_config,
connect, disconnect). Firewall rules follow by themselves (dockyard.network.firewall polls).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dockyard.api.context import RequestContext
from dockyard.api.errors import BadRequest, Conflict, NotFound
from dockyard.db.base import new_id
from dockyard.docker.networks import DockerNetworkSpec, docker_network_name
from dockyard.network import ipam, quotas
from dockyard.network.backend import spec_for, subnet_of
from dockyard.network.common import visible_network
from dockyard.network.models import IPAllocation, Network, Port, PortSecurityGroup, Subnet
from dockyard.network.secgroups import DEFAULT_NAME, resolve_groups

COMPUTE_OWNER = "compute:nova"
MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


@dataclass(frozen=True)
class PortBinding:
    port_id: str
    network_id: str
    network_name: str
    docker_network: str
    ip_address: str
    mac_address: str
    security_group_ids: tuple[str, ...]
    # what the Docker network must look like (ensure_network(client, binding) uses it)
    network_spec: DockerNetworkSpec | None = None
    # the subnet's dns_nameservers: compute may pass them as `dns=` to containers.create
    dns_nameservers: tuple[str, ...] = ()


@dataclass(frozen=True)
class FixedIP:
    subnet_id: str | None = None
    ip_address: str | None = None


def random_mac() -> str:
    return "fa:16:3e:" + ":".join(f"{random.randint(0, 255):02x}" for _ in range(3))


def _validate_mac(mac: str) -> str:
    mac = mac.lower()
    if not MAC_RE.match(mac) or int(mac[:2], 16) & 1:
        raise BadRequest(f"'{mac}' is not a valid unicast MAC address.", kind="InvalidInput")
    return mac


def _mac_taken(session: Session, network_id: str, mac: str) -> bool:
    return (
        session.scalar(
            select(Port.id).where(Port.network_id == network_id, Port.mac_address == mac)
        )
        is not None
    )


def _pick_subnet(session: Session, network: Network, want: FixedIP) -> Subnet:
    subnets = session.scalars(select(Subnet).where(Subnet.network_id == network.id)).all()
    if want.subnet_id:
        for s in subnets:
            if s.id == want.subnet_id:
                return s
        raise BadRequest(
            f"Subnet {want.subnet_id} is not on network {network.id}.", kind="InvalidInput"
        )
    if want.ip_address:
        ip = ipam.parse_ip(want.ip_address)
        for s in subnets:
            if ip in ipam.ipaddress.ip_network(s.cidr):
                return s
        raise BadRequest(
            f"IP address {want.ip_address} is not in any subnet of network {network.id}.",
            kind="InvalidIpForNetwork",
        )
    if not subnets:
        raise BadRequest(
            f"Network {network.id} has no subnet, so no address can be allocated on it. "
            "Create a subnet first.",
            kind="InvalidInput",
        )
    return subnets[0]


def create_port(
    session: Session,
    ctx: RequestContext,
    network: Network,
    *,
    project_id: str,
    fixed_ips: list[FixedIP] | None = None,
    mac_address: str | None = None,
    security_groups: list[str] | None = None,
    port_security_enabled: bool | None = None,
    name: str = "",
    description: str = "",
    device_id: str = "",
    device_owner: str = "",
    admin_state_up: bool = True,
    auto_created: bool = False,
) -> Port:
    """Make a port on the network and hold its address. fixed_ips None means "one address
    from the network's subnet" (none when the network has no subnet); [] means no address."""
    quotas.check(session, project_id, "port")
    secure = (
        network.port_security_enabled
        if port_security_enabled is None
        else bool(port_security_enabled)
    )
    if fixed_ips is not None and len(fixed_ips) > 1:
        raise BadRequest(
            "A dockyard port holds at most one IPv4 address (one Docker endpoint).",
            kind="InvalidInput",
        )
    port_id = new_id()
    port = Port(
        id=port_id,
        network_id=network.id,
        project_id=project_id,
        name=name,
        description=description,
        device_id=device_id or "",
        device_owner=device_owner or "",
        admin_state_up=admin_state_up,
        port_security_enabled=secure,
        auto_created=auto_created,
        mac_address=port_id[:32],  # unique placeholder until the address decides the MAC
    )
    session.add(port)
    session.flush()
    allocation = None
    if fixed_ips is None:
        if subnet_of(session, network.id) is not None:
            allocation = ipam.allocate(session, _pick_subnet(session, network, FixedIP()), port.id)
    elif fixed_ips:
        want = fixed_ips[0]
        subnet = _pick_subnet(session, network, want)
        allocation = ipam.allocate(session, subnet, port.id, want.ip_address)
    if mac_address:
        mac = _validate_mac(mac_address)
        if _mac_taken(session, network.id, mac):
            raise Conflict(
                f"Unable to complete operation for network {network.id}. The mac address "
                f"{mac} is in use.",
                kind="MacAddressInUse",
            )
    else:
        mac = ipam.mac_for_ip(allocation.ip_address) if allocation else random_mac()
        if _mac_taken(session, network.id, mac):
            mac = random_mac()
    port.mac_address = mac
    if security_groups is None:
        security_groups = [DEFAULT_NAME] if secure else []
    group_ids = resolve_groups(session, ctx, project_id, security_groups)
    if group_ids and not secure:
        raise BadRequest(
            "Port security must be enabled to have security groups on a port.",
            kind="PortSecurityAndIPRequiredForSecurityGroups",
        )
    for gid in group_ids:
        session.add(PortSecurityGroup(port_id=port.id, security_group_id=gid))
    session.flush()
    return port


def change_fixed_ips(session: Session, port: Port, wanted: list[FixedIP]) -> None:
    """Give an unbound port another address (or none). A MAC derived from the old address
    follows the new one, so it keeps matching what Docker derives on `connect`."""
    current = port_ips(session, port.id)
    same = len(wanted) == len(current) and all(
        (w.ip_address is None or w.ip_address == c.ip_address)
        and (w.subnet_id is None or w.subnet_id == c.subnet_id)
        for w, c in zip(wanted, current, strict=False)
    )
    if same:
        return
    if port.device_id:
        raise Conflict(
            f"Port {port.id} is bound to {port.device_id}: detach it before changing its address.",
            kind="PortInUse",
        )
    if len(wanted) > 1:
        raise BadRequest(
            "A dockyard port holds at most one IPv4 address (one Docker endpoint).",
            kind="InvalidInput",
        )
    derived = bool(current) and port.mac_address == ipam.mac_for_ip(current[0].ip_address)
    for a in current:
        session.delete(a)
    session.flush()
    if wanted:
        network = session.get(Network, port.network_id)
        subnet = _pick_subnet(session, network, wanted[0])
        allocation = ipam.allocate(session, subnet, port.id, wanted[0].ip_address)
        mac = ipam.mac_for_ip(allocation.ip_address)
        if derived and not _mac_taken(session, port.network_id, mac):
            port.mac_address = mac
    session.flush()


def set_groups(session: Session, port: Port, group_ids: list[str]) -> None:
    current = set(
        session.scalars(
            select(PortSecurityGroup.security_group_id).where(PortSecurityGroup.port_id == port.id)
        )
    )
    for gid in current - set(group_ids):
        session.delete(session.get(PortSecurityGroup, (port.id, gid)))
    for gid in group_ids:
        if gid not in current:
            session.add(PortSecurityGroup(port_id=port.id, security_group_id=gid))
    session.flush()


def port_groups(session: Session, port_id: str) -> list[str]:
    return list(
        session.scalars(
            select(PortSecurityGroup.security_group_id)
            .where(PortSecurityGroup.port_id == port_id)
            .order_by(PortSecurityGroup.security_group_id)
        )
    )


def port_ips(session: Session, port_id: str) -> list[IPAllocation]:
    return list(
        session.scalars(
            select(IPAllocation)
            .where(IPAllocation.port_id == port_id)
            .order_by(IPAllocation.ip_address)
        )
    )


def binding_of(session: Session, port: Port) -> PortBinding:
    network = session.get(Network, port.network_id)
    ips = port_ips(session, port.id)
    if not ips:
        raise BadRequest(
            f"Port {port.id} has no IP address: its network {port.network_id} needs a subnet.",
            kind="InvalidInput",
        )
    subnet = session.get(Subnet, ips[0].subnet_id)
    return PortBinding(
        port_id=port.id,
        network_id=network.id,
        network_name=network.name,
        docker_network=docker_network_name(network.id),
        ip_address=ips[0].ip_address,
        mac_address=port.mac_address,
        security_group_ids=tuple(port_groups(session, port.id)),
        network_spec=spec_for(network, subnet),
        dns_nameservers=tuple(subnet.dns_nameservers or ()),
    )


# ---- the interface compute calls ----------------------------------------------------------


def auto_network_id(session: Session, ctx: RequestContext) -> str:
    """The network `networks: "auto"` means: the project's only network, else its network
    named `private`, else the one shared network. 400 naming the choices when ambiguous."""
    own = session.scalars(
        select(Network).where(Network.project_id == ctx.project_id).order_by(Network.created_at)
    ).all()
    if len(own) == 1:
        return own[0].id
    private = [n for n in own if n.name == "private"]
    if len(private) == 1:
        return private[0].id
    if not own:
        shared = session.scalars(select(Network).where(Network.shared.is_(True))).all()
        if len(shared) == 1:
            return shared[0].id
        if not shared:
            raise BadRequest(
                "No network is available for this project: create one "
                "(openstack network create + subnet create) or pass networks explicitly.",
                kind="NetworkNotFound",
            )
        names = ", ".join(sorted(f"{n.name} ({n.id})" for n in shared))
    else:
        names = ", ".join(sorted(f"{n.name} ({n.id})" for n in own))
    raise BadRequest(
        f"Multiple possible networks found ({names}): use 'networks' to say which one.",
        kind="NetworkAmbiguous",
    )


def allocate_port(
    session: Session,
    ctx: RequestContext,
    *,
    device_id: str,
    network_id: str | None = None,
    port_id: str | None = None,
    fixed_ip: str | None = None,
    security_groups: list[str] | None = None,
) -> PortBinding:
    """A port bound to device_id (owner compute:nova): a new one on the network (auto when
    None), or the caller's existing unbound port `port_id`. Groups are names or ids."""
    if not device_id:
        raise BadRequest("device_id is required to bind a port.")
    if port_id:
        port = session.get(Port, port_id)
        if port is None or not (ctx.is_admin or port.project_id == ctx.project_id):
            raise NotFound(f"Port {port_id} could not be found.", kind="PortNotFound")
        if port.device_id and port.device_id != device_id:
            raise Conflict(
                f"Port {port_id} is still in use by device {port.device_id}.", kind="PortInUse"
            )
        if network_id and network_id != port.network_id:
            raise BadRequest(f"Port {port_id} is not on network {network_id}.")
        if fixed_ip and fixed_ip not in {a.ip_address for a in port_ips(session, port.id)}:
            raise BadRequest(f"Port {port_id} does not hold the address {fixed_ip}.")
        port.device_id = device_id
        port.device_owner = COMPUTE_OWNER
        port.revision_number += 1
        session.flush()
        return binding_of(session, port)
    network = visible_network(session, ctx, network_id or auto_network_id(session, ctx))
    if subnet_of(session, network.id) is None:
        raise BadRequest(
            f"Network {network.name or network.id} has no subnet; a server needs an address.",
            kind="InvalidInput",
        )
    port = create_port(
        session,
        ctx,
        network,
        project_id=ctx.project_id or network.project_id,
        fixed_ips=[FixedIP(ip_address=fixed_ip)] if fixed_ip else None,
        security_groups=security_groups if security_groups is not None else [DEFAULT_NAME],
        device_id=device_id,
        device_owner=COMPUTE_OWNER,
        auto_created=True,
    )
    return binding_of(session, port)


def apply_security_groups(
    session: Session, ctx: RequestContext, port_id: str, security_groups: list[str]
) -> PortBinding:
    """Replace the groups of a port (names or ids, in the port's project); the firewall loop
    enforces the change within a second."""
    port = session.get(Port, port_id)
    if port is None or not (ctx.is_admin or port.project_id == ctx.project_id):
        raise NotFound(f"Port {port_id} could not be found.", kind="PortNotFound")
    group_ids = resolve_groups(session, ctx, port.project_id, security_groups)
    if group_ids and not port.port_security_enabled:
        raise BadRequest(
            "Port security must be enabled to have security groups on a port.",
            kind="PortSecurityAndIPRequiredForSecurityGroups",
        )
    set_groups(session, port, group_ids)
    port.revision_number += 1
    session.flush()
    return binding_of(session, port)


def ports_for_device(session: Session, device_id: str) -> list[PortBinding]:
    ports = session.scalars(
        select(Port).where(Port.device_id == device_id).order_by(Port.created_at, Port.id)
    ).all()
    out = []
    for p in ports:
        if session.scalar(select(func.count()).where(IPAllocation.port_id == p.id)):
            out.append(binding_of(session, p))
    return out


def release_ports(session: Session, device_id: str) -> None:
    """Delete the ports made for the device (freeing their addresses); unbind the others."""
    if not device_id:
        return
    for port in session.scalars(select(Port).where(Port.device_id == device_id)).all():
        if port.auto_created:
            session.delete(port)
        else:
            port.device_id = ""
            port.device_owner = ""
            port.revision_number += 1
    session.flush()


def fixed_ips_of_devices(session: Session, device_ids: list[str]) -> set[str]:
    """The fixed IPs held right now by ports bound to these devices."""
    if not device_ids:
        return set()
    rows = session.scalars(
        select(IPAllocation.ip_address)
        .join(Port, Port.id == IPAllocation.port_id)
        .where(Port.device_id.in_(device_ids))
    )
    return set(rows)
