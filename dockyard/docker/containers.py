"""Servers as containers: create (idempotently, by name), act, inspect, watch, remove.

One container per server, named `dockyard-<server uuid>`, labelled with the server and
project ids and the id of the dockyard deployment that owns it (so several dockyards can
share one engine without touching each other's containers).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import Container

log = logging.getLogger("dockyard.docker.containers")

PREFIX = "dockyard-"
SERVER_LABEL = "dockyard.server_id"
PROJECT_LABEL = "dockyard.project_id"
DEPLOYMENT_LABEL = "dockyard.deployment"
CPU_PERIOD = 100_000  # microseconds; a vCPU is one period of CPU time per period

# The flags that let a container run its own dockerd here and elsewhere (DESIGN.md);
# selected by the admin-only flavor extra spec dockyard:host_profile=docker-host.
DOCKER_HOST_PROFILE = "docker-host"


def container_name(server_id: str) -> str:
    return PREFIX + server_id


@dataclass
class ContainerSpec:
    server_id: str
    image: str
    labels: dict[str, str]
    hostname: str
    ram_mb: int
    vcpus: int
    swap_mb: int = 0
    host_profile: str | None = None
    # endpoint_config(binding) of dockyard.docker.networks for the first port:
    # {"network": name, "networking_config": {name: EndpointConfig}, "mac_address": mac}
    network: dict | None = None
    network_mode: str | None = None  # "none" when the server has no ports
    environment: dict[str, str] = field(default_factory=dict)
    # (host path, container path): bind-mounted read-only (the server's files on a local
    # engine, see dockyard.compute.instance_files); the host path must exist
    readonly_binds: list[tuple[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return container_name(self.server_id)


def limits(ram_mb: int, vcpus: int, swap_mb: int = 0) -> dict:
    """docker-py keyword arguments for a flavor: memory limit and CFS CPU quota."""
    out: dict = {
        "mem_limit": ram_mb * 1024 * 1024,
        "memswap_limit": (ram_mb + max(swap_mb, 0)) * 1024 * 1024,
    }
    if vcpus > 0:
        out["cpu_period"] = CPU_PERIOD
        out["cpu_quota"] = vcpus * CPU_PERIOD
        out["cpu_shares"] = 1024 * vcpus
    return out


def find(client: docker.DockerClient, server_id: str) -> Container | None:
    try:
        return client.containers.get(container_name(server_id))
    except NotFound:
        return None


def _profile_kwargs(spec: ContainerSpec) -> dict:
    if spec.host_profile != DOCKER_HOST_PROFILE:
        return {}
    volume = f"{spec.name}-docker"
    return {
        "cap_add": ["ALL"],
        "cap_drop": ["SYS_RESOURCE"],
        # `--security-opt systempaths=unconfined` is a CLI spelling: the API takes empty
        # MaskedPaths/ReadonlyPaths (set in create() below)
        "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
        "unmask_system_paths": True,
        "device_cgroup_rules": ["a *:* rwm"],
        "tmpfs": {"/run": ""},
        "volumes": {
            "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
            volume: {"bind": "/var/lib/docker", "mode": "rw"},
        },
    }


def create(
    client: docker.DockerClient, spec: ContainerSpec, look_first: bool = True
) -> tuple[Container, bool]:
    """The server's container, created now unless it exists. Returns (container, created).

    `look_first=False` skips the lookup by name when no earlier attempt can have made it (a
    container made concurrently anyway is found after the engine's 409).
    """
    if look_first:
        existing = find(client, spec.server_id)
        if existing is not None:
            return existing, False
    if spec.host_profile == DOCKER_HOST_PROFILE:
        _ensure_volume(client, f"{spec.name}-docker", spec.labels)
    kwargs = {
        "name": spec.name,
        "labels": spec.labels,
        "hostname": spec.hostname[:63] or None,
        "detach": True,
        "restart_policy": {"Name": "unless-stopped"},
        "environment": spec.environment or None,
        "log_config": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "2"}},
        **limits(spec.ram_mb, spec.vcpus, spec.swap_mb),
        **_profile_kwargs(spec),
    }
    host_config = client.api.create_host_config(
        **{k: v for k, v in _host_config_args(kwargs, spec).items() if v is not None}
    )
    if kwargs.get("unmask_system_paths"):
        host_config["MaskedPaths"] = []
        host_config["ReadonlyPaths"] = []
    try:
        result = client.api.create_container(
            image=spec.image,
            name=spec.name,
            hostname=kwargs["hostname"],
            labels=spec.labels,
            environment=kwargs["environment"],
            detach=True,
            host_config=host_config,
            networking_config=(
                client.api.create_networking_config(spec.network["networking_config"])
                if spec.network
                else None
            ),
            mac_address=(spec.network or {}).get("mac_address") or None,
            volumes=[v["bind"] for v in kwargs.get("volumes", {}).values()] or None,
        )
    except APIError as exc:
        if exc.status_code == 409:  # made by a previous attempt a moment ago
            found = find(client, spec.server_id)
            if found is not None:
                return found, False
        raise
    # a model without another inspect: the caller only needs the id and that it is new
    return client.containers.prepare_model(
        {"Id": result["Id"], "State": {"Status": "created"}}
    ), True


def _host_config_args(kwargs: dict, spec: ContainerSpec) -> dict:
    binds = None
    if "volumes" in kwargs:
        binds = {src: v for src, v in kwargs["volumes"].items()}
    return {
        "mem_limit": kwargs["mem_limit"],
        "memswap_limit": kwargs["memswap_limit"],
        "cpu_period": kwargs.get("cpu_period"),
        "cpu_quota": kwargs.get("cpu_quota"),
        "cpu_shares": kwargs.get("cpu_shares"),
        "restart_policy": kwargs["restart_policy"],
        "init": True,  # tini as PID 1: signals reach the image's process, zombies are reaped
        "log_config": kwargs["log_config"],
        "cap_add": kwargs.get("cap_add"),
        "cap_drop": kwargs.get("cap_drop"),
        "security_opt": kwargs.get("security_opt"),
        "device_cgroup_rules": kwargs.get("device_cgroup_rules"),
        "tmpfs": kwargs.get("tmpfs"),
        "binds": binds,
        "network_mode": spec.network_mode or (spec.network or {}).get("network"),
        # HostConfig.Mounts, not Binds: a missing source is an error instead of a new directory
        "mounts": [
            docker.types.Mount(target, source, type="bind", read_only=True)
            for source, target in spec.readonly_binds
        ]
        or None,
    }


def has_mount(container: Container, target: str) -> bool:
    """Whether the (inspected) container has a mount at `target`."""
    return any(m.get("Destination") == target for m in container.attrs.get("Mounts") or ())


def _ensure_volume(client: docker.DockerClient, name: str, labels: dict[str, str]) -> None:
    try:
        client.volumes.get(name)
    except NotFound:
        client.volumes.create(name=name, labels=labels)


def put_files(container: Container, files: dict[str, tuple[bytes, int]]) -> None:
    """Write files (absolute paths) into the container, making parent directories."""
    buf = io.BytesIO()
    dirs: set[str] = set()
    now = time.time()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(files):
            parts = path.strip("/").split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d in dirs:
                    continue
                dirs.add(d)
                info = tarfile.TarInfo(d)
                info.type = tarfile.DIRTYPE
                info.mode = 0o700 if d.endswith(".ssh") else 0o755
                info.mtime = now
                tar.addfile(info)
            data, mode = files[path]
            info = tarfile.TarInfo("/".join(parts))
            info.size = len(data)
            info.mode = mode
            info.mtime = now
            tar.addfile(info, io.BytesIO(data))
    container.put_archive("/", buf.getvalue())


def state(client: docker.DockerClient, server_id: str) -> dict | None:
    """The container's State (Running, Paused, Status, ...), or None when it does not exist."""
    c = find(client, server_id)
    return None if c is None else c.attrs.get("State", {})


def _require(client: docker.DockerClient, server_id: str) -> Container:
    c = find(client, server_id)
    if c is None:
        raise ContainerGone(f"the container {container_name(server_id)} does not exist")
    return c


class ContainerGone(Exception):
    """The server's container is not on its host (removed behind dockyard's back)."""


def start(client: docker.DockerClient, server_id: str, container: Container | None = None) -> dict:
    """Start (or unpause) the container; `container` saves a lookup when the caller has it."""
    c = container or _require(client, server_id)
    st = c.attrs["State"]
    if st.get("Paused"):
        c.unpause()
    elif not st.get("Running"):
        c.start()
    c.reload()
    return c.attrs["State"]


def stop(client: docker.DockerClient, server_id: str, timeout: int = 10) -> dict:
    c = _require(client, server_id)
    if c.attrs["State"].get("Paused"):
        c.unpause()
    c.stop(timeout=timeout)
    c.reload()
    return c.attrs["State"]


def reboot(client: docker.DockerClient, server_id: str, hard: bool, timeout: int = 10) -> dict:
    c = _require(client, server_id)
    if c.attrs["State"].get("Paused"):
        c.unpause()
    c.restart(timeout=0 if hard else timeout)
    c.reload()
    return c.attrs["State"]


def pause(client: docker.DockerClient, server_id: str) -> dict:
    c = _require(client, server_id)
    if not c.attrs["State"].get("Paused"):
        c.pause()
    c.reload()
    return c.attrs["State"]


def unpause(client: docker.DockerClient, server_id: str) -> dict:
    c = _require(client, server_id)
    if c.attrs["State"].get("Paused"):
        c.unpause()
    c.reload()
    return c.attrs["State"]


def update_limits(
    client: docker.DockerClient, server_id: str, ram_mb: int, vcpus: int, swap_mb: int = 0
) -> dict:
    """Apply a flavor's limits to the running container (no restart)."""
    c = _require(client, server_id)
    new = limits(ram_mb, vcpus, swap_mb)
    host = c.attrs.get("HostConfig", {})
    current_swap = host.get("MemorySwap") or 0
    kw = {k: v for k, v in new.items() if k != "cpu_shares"}
    kw["cpu_shares"] = new.get("cpu_shares")
    if current_swap and new["memswap_limit"] < current_swap:
        # shrink memory first so memory <= memory+swap holds at every step
        c.update(mem_limit=new["mem_limit"])
    c.update(**{k: v for k, v in kw.items() if v is not None})
    c.reload()
    return c.attrs["HostConfig"]


def logs(client: docker.DockerClient, server_id: str, tail: int | None) -> str:
    c = _require(client, server_id)
    raw = c.logs(stdout=True, stderr=True, tail="all" if tail is None else max(tail, 0))
    text = raw.decode("utf-8", errors="replace")
    if tail == 0:
        return ""
    return text


def snapshot_repository(image_id: str) -> str:
    """The repository a snapshot into image `image_id` is committed as, on the server's host
    (the same for every attempt, so a resumed snapshot finds what an earlier one committed)."""
    return f"dockyard-snapshot-{image_id}"


def commit(client: docker.DockerClient, server_id: str, repository: str) -> str:
    """Commit the container as `repository:latest` (paused meanwhile) unless an earlier attempt
    did; returns the reference. ContainerGone when there is no container."""
    ref = f"{repository}:latest"
    try:
        client.api.inspect_image(ref)
        return ref
    except ImageNotFound:
        pass
    _require(client, server_id).commit(repository=repository, tag="latest", pause=True)
    return ref


def save(client: docker.DockerClient, ref: str) -> Iterator[bytes]:
    """The `docker save` tarball of an image, streamed in chunks."""
    return client.images.get(ref).save(named=True)


def remove_image(client: docker.DockerClient, ref: str) -> None:
    try:
        client.images.remove(ref, noprune=False)
    except (NotFound, ImageNotFound):
        pass
    except APIError as exc:
        log.warning("could not remove image %s: %s", ref, exc)


def remove(client: docker.DockerClient, server_id: str) -> bool:
    """Remove the container and its private volumes; False when it was already gone."""
    c = find(client, server_id)
    gone = c is None
    if c is not None:
        try:
            c.remove(force=True, v=True)
        except NotFound:
            gone = True
    with contextlib.suppress(NotFound):
        client.volumes.get(f"{container_name(server_id)}-docker").remove(force=True)
    return not gone


def networks(container: Container) -> dict[str, dict]:
    """docker network name -> {"ip": ..., "mac": ...} as the engine reports them."""
    out = {}
    for name, net in (container.attrs.get("NetworkSettings", {}).get("Networks") or {}).items():
        out[name] = {"ip": net.get("IPAddress") or "", "mac": net.get("MacAddress") or ""}
    return out


@dataclass(frozen=True)
class Managed:
    name: str
    server_id: str
    created: str  # RFC 3339 from the engine
    status: str


def list_managed(client: docker.DockerClient, deployment: str) -> list[Managed]:
    """Every container of this deployment on the host, running or not."""
    found = client.api.containers(
        all=True, filters={"label": [f"{DEPLOYMENT_LABEL}={deployment}", SERVER_LABEL]}
    )
    out = []
    for c in found:
        labels = c.get("Labels") or {}
        name = (c.get("Names") or ["/"])[0].lstrip("/")
        out.append(
            Managed(name, labels.get(SERVER_LABEL, ""), str(c.get("Created", "")), c["State"])
        )
    return out


def remove_by_name(client: docker.DockerClient, name: str) -> None:
    with contextlib.suppress(NotFound):
        client.containers.get(name).remove(force=True, v=True)


def events(client: docker.DockerClient, deployment: str) -> Iterator[tuple[str, str]]:
    """(server id, action) for every container event of this deployment; blocks."""
    stream = client.events(
        decode=True,
        filters={"type": "container", "label": [f"{DEPLOYMENT_LABEL}={deployment}"]},
    )
    for ev in stream:
        attrs = (ev.get("Actor") or {}).get("Attributes") or {}
        server_id = attrs.get(SERVER_LABEL)
        if server_id:
            yield server_id, str(ev.get("Action") or ev.get("status") or "")
