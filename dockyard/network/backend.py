"""The Docker side of networks: make, remove and reconcile the bridge networks of this host."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import anyio
from sqlalchemy import select
from sqlalchemy.orm import Session

from dockyard.api.errors import BadRequest, Conflict
from dockyard.docker import networks as dn
from dockyard.docker.client import connect, local_host
from dockyard.network.common import instance_id
from dockyard.network.models import Network, Subnet

log = logging.getLogger("dockyard.network.backend")

RECONCILE_SECONDS = 5.0
INSTANCE_LABEL = dn.INSTANCE_LABEL


def extra_labels(settings) -> dict[str, str]:
    """Operator-configured labels for every Docker object ("k=v,k2=v2" in container_labels)."""
    raw = getattr(settings, "container_labels", "") or ""
    out = {}
    for item in raw.split(","):
        if "=" in item:
            k, v = item.split("=", 1)
            if k.strip():
                out[k.strip()] = v.strip()
    return out


def docker_labels(session: Session, settings, network_id: str, project_id: str) -> dict:
    return {
        **extra_labels(settings),
        dn.NETWORK_LABEL: network_id,
        dn.PROJECT_LABEL: project_id,
        INSTANCE_LABEL: instance_id(session),
    }


def spec_for(network: Network, subnet: Subnet | None) -> dn.DockerNetworkSpec | None:
    if subnet is None or not subnet.gateway_ip:
        return None
    return dn.DockerNetworkSpec(
        network_id=network.id,
        cidr=subnet.cidr,
        gateway=subnet.gateway_ip,
        mtu=network.mtu,
        labels=dict(network.docker_labels or {}),
    )


def subnet_of(session: Session, network_id: str) -> Subnet | None:
    return session.scalars(
        select(Subnet).where(Subnet.network_id == network_id).order_by(Subnet.created_at)
    ).first()


def desired_specs(session: Session) -> dict[str, dn.DockerNetworkSpec]:
    subnets = {s.network_id: s for s in session.scalars(select(Subnet))}
    out = {}
    for net in session.scalars(select(Network)):
        spec = spec_for(net, subnets.get(net.id))
        if spec is not None:
            out[net.id] = spec
    return out


class DockerBackend:
    """Docker networks of the local host. Docker being down never fails a database-only
    change: the reconcile loop makes what is missing once Docker answers."""

    def __init__(self, runtime):
        self.runtime = runtime
        self._client = None
        self._lock = threading.Lock()
        self.wake = threading.Event()
        self.failing = False
        self.complaints: dict[str, str] = {}

    def client(self):
        with self._lock:
            if self._client is None:
                self._client = connect(local_host(self.runtime.settings), timeout=60)
            return self._client

    def _drop_client(self) -> None:
        with self._lock:
            self._client = None

    def create(self, spec: dn.DockerNetworkSpec) -> None:
        """Make the Docker network now; 400 when Docker refuses it, a log line when it is down."""
        try:
            dn.ensure_network(self.client(), spec)
        except dn.NetworkConflict as exc:
            raise BadRequest(
                f"The Docker host refused subnet {spec.cidr}: {exc}. Choose another range.",
                kind="InvalidInput",
            ) from exc
        except Exception as exc:  # noqa: BLE001 - Docker unreachable: reconciled later
            self._drop_client()
            log.warning("Docker network %s not made now (%s); will retry", spec.name, exc)
            self.wake.set()

    def remove(self, network_id: str) -> None:
        """Remove the Docker network now; 409 when containers are still attached."""
        try:
            dn.remove_network(self.client(), network_id)
        except dn.NetworkBusy as exc:
            raise Conflict(
                f"Unable to complete operation on network {network_id}: containers are still "
                "attached to its Docker network.",
                kind="NetworkInUse",
            ) from exc
        except Exception as exc:  # noqa: BLE001 - Docker unreachable: the orphan goes later
            self._drop_client()
            log.warning("Docker network of %s not removed now (%s); will retry", network_id, exc)
            self.wake.set()

    def reconcile_once(self) -> None:
        with self.runtime.db.session() as session:
            desired = desired_specs(session)
            instance = instance_id(session)
        client = self.client()
        managed = {m.network_id: m for m in dn.managed_networks(client, instance)}
        for network_id, spec in desired.items():
            try:
                dn.ensure_network(client, spec)
                self.complaints.pop(network_id, None)
            except dn.NetworkConflict as exc:
                if self.complaints.get(network_id) != str(exc):  # say it once, not every 5 s
                    log.error("Docker network for %s cannot be made: %s", network_id, exc)
                self.complaints[network_id] = str(exc)
        for network_id, m in managed.items():
            if network_id not in desired and dn.attached_containers(client, m.name) == 0:
                log.info("removing orphaned Docker network %s", m.name)
                with contextlib.suppress(dn.NetworkBusy):
                    dn.remove_network(client, network_id)

    def _step(self) -> None:
        self.wake.clear()
        try:
            self.reconcile_once()
            if self.failing:
                log.info("Docker network reconcile recovered")
            self.failing = False
        except Exception:
            self._drop_client()
            if not self.failing:
                log.exception("Docker network reconcile failed; retrying")
            self.failing = True

    def remove_idle(self) -> None:
        """At shutdown: remove this deployment's Docker networks that no container uses (the
        next start makes them again), so a stopped dockyard leaves no address ranges held."""
        with self.runtime.db.session() as session:
            instance = instance_id(session)
        client = self.client()
        for m in dn.managed_networks(client, instance):
            if dn.attached_containers(client, m.name) == 0:
                with contextlib.suppress(dn.NetworkBusy):
                    dn.remove_network(client, m.network_id)

    async def run(self) -> None:
        try:
            while True:
                await anyio.to_thread.run_sync(self._step)
                deadline = time.monotonic() + RECONCILE_SECONDS
                while time.monotonic() < deadline and not self.wake.is_set():
                    await anyio.sleep(0.1)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                try:
                    await anyio.to_thread.run_sync(self.remove_idle)
                except Exception:  # noqa: BLE001 - best effort at shutdown
                    log.warning("idle Docker networks not removed at shutdown", exc_info=True)
