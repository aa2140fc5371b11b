"""Docker networks backing dockyard networks, and attaching containers at their port's address.

A dockyard network with a subnet is one Docker bridge network:
  name `dockyard-net-<network id>`, bridge device `dyn<first 12 hex of the id>` (so firewall
  rules can name it), IPAM subnet + gateway from the subnet, labels `dockyard.network_id`,
  `dockyard.project_id`, `dockyard.instance` (+ any extra labels the operator configured).
Only this package imports the docker SDK.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import docker
from docker.errors import APIError, NotFound
from docker.types import EndpointConfig, IPAMConfig, IPAMPool

log = logging.getLogger("dockyard.docker.networks")

NETWORK_LABEL = "dockyard.network_id"
PROJECT_LABEL = "dockyard.project_id"
INSTANCE_LABEL = "dockyard.instance"


def docker_network_name(network_id: str) -> str:
    return f"dockyard-net-{network_id}"


def bridge_name(network_id: str) -> str:
    """The Linux bridge device of the network (15 characters at most, as Linux requires)."""
    return f"dyn{network_id[:12]}"


@dataclass(frozen=True)
class DockerNetworkSpec:
    """What the Docker network of one dockyard network must look like."""

    network_id: str
    cidr: str
    gateway: str
    mtu: int = 1500
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def name(self) -> str:
        return docker_network_name(self.network_id)

    @property
    def bridge(self) -> str:
        return bridge_name(self.network_id)


class _Bound(Protocol):
    """A PortBinding (dockyard.network.ports) as far as this module needs it."""

    docker_network: str
    ip_address: str
    mac_address: str
    network_spec: DockerNetworkSpec | None


class NetworkConflict(Exception):
    """Docker refused the network (e.g. its subnet overlaps another Docker network)."""


class NetworkBusy(Exception):
    """Docker refused to remove a network that still has containers attached."""


def _spec_of(target: DockerNetworkSpec | _Bound) -> DockerNetworkSpec:
    if isinstance(target, DockerNetworkSpec):
        return target
    spec = getattr(target, "network_spec", None)
    if spec is None:
        raise ValueError("this port's network has no subnet, so it has no Docker network")
    return spec


def _matches(net: Any, spec: DockerNetworkSpec) -> bool:
    configs = (net.attrs.get("IPAM") or {}).get("Config") or []
    return any(c.get("Subnet") == spec.cidr for c in configs)


def ensure_network(client: docker.DockerClient, target: DockerNetworkSpec | _Bound) -> str:
    """Create the Docker network if it is missing (idempotent); returns its Docker id.

    Accepts a DockerNetworkSpec or a PortBinding. Raises NetworkConflict when Docker refuses it.
    """
    spec = _spec_of(target)
    try:
        net = client.networks.get(spec.name)
        if _matches(net, spec):
            return net.id
        log.warning("Docker network %s has the wrong subnet; recreating it", spec.name)
        try:
            net.remove()
        except APIError as exc:
            raise NetworkConflict(
                f"Docker network {spec.name} has another subnet and is in use: {exc.explanation}"
            ) from exc
    except NotFound:
        pass
    labels = {**spec.labels, NETWORK_LABEL: spec.network_id}
    ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=spec.cidr, gateway=spec.gateway)])
    try:
        net = client.networks.create(
            spec.name,
            driver="bridge",
            ipam=ipam,
            labels=labels,
            check_duplicate=True,
            options={
                "com.docker.network.bridge.name": spec.bridge,
                "com.docker.network.driver.mtu": str(spec.mtu),
            },
        )
    except APIError as exc:
        if exc.status_code == 409 or "already exists" in str(exc.explanation or ""):
            return client.networks.get(spec.name).id  # made concurrently by another worker
        raise NetworkConflict(
            f"Docker refused network {spec.cidr}: {exc.explanation or exc}"
        ) from exc
    log.info("created Docker network %s (%s)", spec.name, spec.cidr)
    return net.id


def remove_network(client: docker.DockerClient, network_id: str) -> None:
    """Remove the Docker network of a dockyard network; gone already is fine."""
    try:
        client.networks.get(docker_network_name(network_id)).remove()
    except NotFound:
        return
    except APIError as exc:
        if exc.status_code == 404:
            return
        if "active endpoints" in str(exc.explanation or "") or exc.status_code in (403, 409):
            raise NetworkBusy(
                f"Docker network {docker_network_name(network_id)} still has containers attached"
            ) from exc
        raise
    log.info("removed Docker network %s", docker_network_name(network_id))


@dataclass(frozen=True)
class ManagedNetwork:
    docker_id: str
    name: str
    network_id: str


def managed_networks(client: docker.DockerClient, instance_id: str) -> list[ManagedNetwork]:
    """The Docker networks this dockyard deployment made (by its instance label)."""
    return [
        ManagedNetwork(
            docker_id=net.id,
            name=net.name,
            network_id=(net.attrs.get("Labels") or {}).get(NETWORK_LABEL, ""),
        )
        for net in client.networks.list(filters={"label": f"{INSTANCE_LABEL}={instance_id}"})
    ]


def attached_containers(client: docker.DockerClient, name: str) -> int:
    """Containers on the network, running or stopped (inspect lists only running ones, but a
    stopped container keeps its endpoint settings and needs the network to start again)."""
    return len(client.containers.list(all=True, filters={"network": name}, ignore_removed=True))


def endpoint_config(binding: _Bound, aliases: list[str] | None = None) -> dict:
    """kwargs for `client.containers.create(image, **kwargs)` putting the container on the
    binding's network at exactly its IP and MAC:
    {"network": name, "networking_config": {name: EndpointConfig}, "mac_address": mac}.
    """
    ec = EndpointConfig(
        version="1.41",
        aliases=list(aliases or []) or None,
        ipv4_address=binding.ip_address,
    )
    return {
        "network": binding.docker_network,
        "networking_config": {binding.docker_network: ec},
        "mac_address": binding.mac_address,
    }


def connect(
    client: docker.DockerClient,
    container_id: str,
    binding: _Bound,
    aliases: list[str] | None = None,
) -> None:
    """Attach an existing container to the binding's network at its IP (idempotent).

    Docker 20.10 (API 1.41) ignores a MAC given on connect and derives it from the IP
    (02:42:<ip>); dockyard's default port MACs are exactly that, so they agree.
    """
    if getattr(binding, "network_spec", None) is not None:
        ensure_network(client, binding)
    try:
        client.api.connect_container_to_network(
            container_id,
            binding.docker_network,
            ipv4_address=binding.ip_address,
            aliases=list(aliases or []) or None,
            mac_address=binding.mac_address,
        )
    except APIError as exc:
        if "already exists" in str(exc.explanation or "") or "already attached" in str(
            exc.explanation or ""
        ):
            return
        raise


def disconnect(client: docker.DockerClient, container_id: str, binding: _Bound) -> None:
    """Detach the container from the binding's network; not attached (or gone) is fine."""
    try:
        client.api.disconnect_container_from_network(
            container_id, binding.docker_network, force=True
        )
    except NotFound:
        return
    except APIError as exc:
        text = str(exc.explanation or "")
        if exc.status_code == 404 or "is not connected" in text or "not found" in text.lower():
            return
        raise
