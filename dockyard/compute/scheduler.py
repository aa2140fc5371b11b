"""Pick a Docker host for a server: filters and weighers are pure functions over a snapshot.

A filter returns None when the host fits, or a sentence saying why it does not, so that
"No valid host was found" can name every reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class HostState:
    name: str
    enabled: bool = True
    up: bool = True
    total_ram_mb: int = 0
    used_ram_mb: int = 0
    reserved_ram_mb: int = 0
    total_vcpus: int = 0
    used_vcpus: int = 0
    ram_ratio: float = 1.0
    cpu_ratio: float = 16.0
    arch: str = ""
    disabled_reason: str = ""
    servers: frozenset[str] = frozenset()  # ids of live servers on the host

    @property
    def free_ram_mb(self) -> float:
        return self.total_ram_mb * self.ram_ratio - self.reserved_ram_mb - self.used_ram_mb

    @property
    def free_vcpus(self) -> float:
        return self.total_vcpus * self.cpu_ratio - self.used_vcpus


@dataclass(frozen=True)
class BootRequest:
    ram_mb: int
    vcpus: int
    group_policy: str | None = None  # affinity | anti-affinity | soft-affinity | soft-anti-...
    group_members: frozenset[str] = frozenset()  # ids of the group's other servers
    group_max_per_host: int = 1
    image_arch: str = ""
    image_container_format: str = "docker"
    ignore_hosts: frozenset[str] = frozenset()
    force_host: str | None = None


class NoValidHost(Exception):
    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        detail = "; ".join(reasons) if reasons else "no compute host is registered"
        super().__init__(f"No valid host was found. {detail}")


Filter = Callable[[HostState, BootRequest], str | None]


def enabled_filter(host: HostState, req: BootRequest) -> str | None:
    if not host.enabled:
        why = f" ({host.disabled_reason})" if host.disabled_reason else ""
        return f"{host.name}: disabled{why} (ComputeFilter)"
    if not host.up:
        return f"{host.name}: Docker engine does not answer (ComputeFilter)"
    return None


def ram_filter(host: HostState, req: BootRequest) -> str | None:
    if host.free_ram_mb < req.ram_mb:
        free = max(int(host.free_ram_mb), 0)
        return f"{host.name}: needs {req.ram_mb} MB RAM, has {free} MB free (RamFilter)"
    return None


def core_filter(host: HostState, req: BootRequest) -> str | None:
    if host.free_vcpus < req.vcpus:
        free = max(int(host.free_vcpus), 0)
        return f"{host.name}: needs {req.vcpus} vCPUs, has {free} free (CoreFilter)"
    return None


def _group_on_host(host: HostState, req: BootRequest) -> int:
    return len(host.servers & req.group_members)


def affinity_filter(host: HostState, req: BootRequest) -> str | None:
    if req.group_policy != "affinity" or not req.group_members:
        return None
    # members not yet placed anywhere do not constrain
    if _group_on_host(host, req) == 0:
        return f"{host.name}: the server group's members run elsewhere (ServerGroupAffinityFilter)"
    return None


def anti_affinity_filter(host: HostState, req: BootRequest) -> str | None:
    if req.group_policy != "anti-affinity":
        return None
    if _group_on_host(host, req) >= req.group_max_per_host:
        return (
            f"{host.name}: already runs {_group_on_host(host, req)} member(s) of the "
            "anti-affinity server group (ServerGroupAntiAffinityFilter)"
        )
    return None


def image_filter(host: HostState, req: BootRequest) -> str | None:
    if req.image_container_format not in ("docker", "bare", "", None):
        fmt = req.image_container_format
        return f"{host.name}: cannot boot a '{fmt}' image (ImagePropertiesFilter)"
    if req.image_arch and host.arch and not _same_arch(req.image_arch, host.arch):
        need = f"image needs {req.image_arch}, host is {host.arch}"
        return f"{host.name}: {need} (ImagePropertiesFilter)"
    return None


def host_filter(host: HostState, req: BootRequest) -> str | None:
    if host.name in req.ignore_hosts:
        return f"{host.name}: ignored by request"
    if req.force_host and host.name != req.force_host:
        return f"{host.name}: not the requested host {req.force_host}"
    return None


_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def _same_arch(a: str, b: str) -> bool:
    return _ARCH_ALIASES.get(a, a) == _ARCH_ALIASES.get(b, b)


FILTERS: tuple[Filter, ...] = (
    host_filter,
    enabled_filter,
    ram_filter,
    core_filter,
    affinity_filter,
    anti_affinity_filter,
    image_filter,
)


def ram_weigher(host: HostState, req: BootRequest) -> float:
    """Spread: more free RAM is better."""
    return host.free_ram_mb


def soft_group_weigher(host: HostState, req: BootRequest) -> float:
    n = _group_on_host(host, req)
    if req.group_policy == "soft-affinity":
        return n * 1_000_000.0
    if req.group_policy == "soft-anti-affinity":
        return -n * 1_000_000.0
    return 0.0


WEIGHERS = (ram_weigher, soft_group_weigher)


@dataclass
class Decision:
    host: HostState
    rejected: list[str] = field(default_factory=list)


def select_host(
    hosts: list[HostState],
    req: BootRequest,
    filters: tuple[Filter, ...] = FILTERS,
    weighers=WEIGHERS,
) -> Decision:
    """The best host for the request, or NoValidHost naming why each host was rejected."""
    fits: list[HostState] = []
    reasons: list[str] = []
    for host in hosts:
        why = next((r for f in filters if (r := f(host, req)) is not None), None)
        if why is None:
            fits.append(host)
        else:
            reasons.append(why)
    if not fits:
        raise NoValidHost(reasons)
    best = max(fits, key=lambda h: (sum(w(h, req) for w in weighers), h.name))
    return Decision(best, reasons)
