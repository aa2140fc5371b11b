"""Networks and subnets: validation, the Docker network behind each, and the demo bootstrap."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dockyard.api.errors import BadRequest, Conflict
from dockyard.network import ipam, quotas
from dockyard.network.backend import DockerBackend, docker_labels, spec_for
from dockyard.network.common import insert_ignore
from dockyard.network.models import IPAllocation, Network, Port, Setting, Subnet
from dockyard.network.secgroups import ensure_default_group

log = logging.getLogger("dockyard.network")


def new_network(
    session: Session,
    settings,
    *,
    project_id: str,
    name: str = "",
    description: str = "",
    admin_state_up: bool = True,
    shared: bool = False,
    mtu: int | None = None,
    port_security_enabled: bool = True,
    external: bool = False,
) -> Network:
    quotas.check(session, project_id, "network")
    if mtu is not None and not 68 <= mtu <= 9000:
        raise BadRequest(f"Invalid input for mtu: {mtu} is not between 68 and 9000.")
    net = Network(
        project_id=project_id,
        name=name,
        description=description,
        admin_state_up=admin_state_up,
        shared=shared,
        mtu=mtu or 1500,
        port_security_enabled=port_security_enabled,
        external=external,
    )
    session.add(net)
    session.flush()
    net.docker_labels = docker_labels(session, settings, net.id, project_id)
    session.flush()
    return net


@dataclass(frozen=True)
class SubnetRequest:
    cidr: str
    name: str = ""
    description: str = ""
    gateway_ip: str | None = ""  # "" = default (first host); None = no gateway
    allocation_pools: list | None = None
    dns_nameservers: list | None = None
    host_routes: list | None = None
    enable_dhcp: bool = True
    ip_version: int = 4


def new_subnet(session: Session, network: Network, project_id: str, req: SubnetRequest) -> Subnet:
    """Validate and store a subnet (the caller then makes its Docker network)."""
    if req.ip_version != 4:
        raise BadRequest("Only IPv4 subnets (ip_version 4) are supported.", kind="InvalidInput")
    quotas.check(session, project_id, "subnet")
    net = ipam.parse_cidr(req.cidr)
    mine = session.scalars(select(Subnet).where(Subnet.network_id == network.id)).all()
    for other in mine:
        if ipam.overlapping(other.cidr, str(net)):
            raise BadRequest(
                f"Invalid input for operation: Requested subnet with cidr: {net} for network: "
                f"{network.id} overlaps with another subnet ({other.cidr}).",
                kind="InvalidInput",
            )
    if mine:
        raise BadRequest(
            f"Network {network.id} already has subnet {mine[0].cidr}: a Docker bridge network "
            "holds one IPv4 subnet. Create another network for another range.",
            kind="InvalidInput",
        )
    for other in session.scalars(select(Subnet).where(Subnet.network_id != network.id)):
        if ipam.overlapping(other.cidr, str(net)):
            raise BadRequest(
                f"Requested subnet {net} overlaps subnet {other.cidr} of another network on "
                "this Docker host; networks on one host need disjoint ranges.",
                kind="InvalidInput",
            )
    if req.gateway_ip is None:
        raise BadRequest(
            "A dockyard subnet needs a gateway: the Docker bridge holds it.", kind="InvalidInput"
        )
    gateway = ipam.parse_ip(req.gateway_ip, "gateway_ip") if req.gateway_ip else None
    gateway = gateway or ipam.default_gateway(net)
    if not ipam.usable(net, gateway):
        raise BadRequest(
            f"Gateway IP {gateway} is not a host address of subnet {net}.", kind="InvalidInput"
        )
    if req.allocation_pools:
        pools = ipam.parse_pools(net, req.allocation_pools, gateway)
    else:
        pools = ipam.default_pools(net, gateway)
    dns = []
    for server in req.dns_nameservers or []:
        dns.append(str(ipam.parse_ip(str(server), "dns_nameservers")))
    if len(set(dns)) != len(dns):
        raise BadRequest("Duplicate nameserver in dns_nameservers.", kind="InvalidInput")
    routes = []
    for route in req.host_routes or []:
        if not isinstance(route, dict) or "destination" not in route or "nexthop" not in route:
            raise BadRequest("Each host route needs a 'destination' and a 'nexthop'.")
        routes.append({"destination": str(route["destination"]), "nexthop": str(route["nexthop"])})
    subnet = Subnet(
        network_id=network.id,
        project_id=project_id,
        name=req.name,
        description=req.description,
        ip_version=4,
        cidr=str(net),
        gateway_ip=str(gateway),
        allocation_pools=[p.as_dict() for p in pools],
        dns_nameservers=dns,
        host_routes=routes,
        enable_dhcp=req.enable_dhcp,
    )
    session.add(subnet)
    session.flush()
    return subnet


def create_subnet(
    session: Session, backend: DockerBackend, network: Network, project_id: str, req: SubnetRequest
) -> Subnet:
    subnet = new_subnet(session, network, project_id, req)
    spec = spec_for(network, subnet)
    if spec is not None:
        backend.create(spec)
    return subnet


def delete_subnet(session: Session, backend: DockerBackend, subnet: Subnet) -> None:
    held = session.scalar(select(func.count()).where(IPAllocation.subnet_id == subnet.id))
    if held:
        raise Conflict(
            f"Unable to complete operation on subnet {subnet.id}: one or more ports have an "
            "IP allocation from this subnet.",
            kind="SubnetInUse",
        )
    network_id = subnet.network_id
    session.delete(subnet)
    session.flush()
    backend.remove(network_id)


def delete_network(session: Session, backend: DockerBackend, network: Network) -> None:
    ports = session.scalar(select(func.count()).where(Port.network_id == network.id))
    if ports:
        raise Conflict(
            f"Unable to complete operation on network {network.id}. There are one or more "
            "ports still in use on the network.",
            kind="NetworkInUse",
        )
    for subnet in session.scalars(select(Subnet).where(Subnet.network_id == network.id)).all():
        session.delete(subnet)
    session.flush()  # subnets first: without ORM relationships the flush order is not implied
    session.delete(network)
    session.flush()
    backend.remove(network.id)


# ---- bootstrap ---------------------------------------------------------------------------

DEMO_MARK = "demo_network_bootstrapped"


def bootstrap(session: Session, settings, demo_project_id: str, admin_project_id: str) -> None:
    """Give the demo project a network `private` (settings.network_demo_cidr, default
    10.0.0.0/24, gateway .1) once, and both bootstrap projects their `default` group.
    Database only, so it works while Docker is down; the reconcile loop makes the Docker side.
    Idempotent: a `private` network the user deleted is not made again."""
    for project_id in (demo_project_id, admin_project_id):
        ensure_default_group(session, project_id)
    if session.get(Setting, DEMO_MARK) is not None:
        return
    if not insert_ignore(session, Setting, {"key": DEMO_MARK, "value": "1"}):
        return
    existing = session.scalars(
        select(Network).where(Network.project_id == demo_project_id, Network.name == "private")
    ).first()
    if existing is not None:
        return
    cidr = getattr(settings, "network_demo_cidr", "") or "10.0.0.0/24"
    net = new_network(session, settings, project_id=demo_project_id, name="private")
    try:
        new_subnet(session, net, demo_project_id, SubnetRequest(cidr=cidr, name="private-subnet"))
    except (BadRequest, Conflict) as exc:
        log.error("demo network: subnet %s not made: %s", cidr, exc.message)
    log.info("bootstrap: network 'private' (%s) for the demo project", cidr)
