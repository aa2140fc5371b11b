"""One settings object, read from the environment and an optional YAML file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml


def default_home() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "dockyard"


@dataclass(frozen=True)
class Settings:
    """Everything an operator can set. Environment names are DOCKYARD_<FIELD> upper-cased."""

    home: Path = field(default_factory=default_home)
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    database_url: str = ""
    region: str = "RegionOne"
    token_ttl: int = 3600
    max_active_keys: int = 3
    max_body_bytes: int = 1024 * 1024
    log_level: str = "INFO"
    admin_password: str = ""
    demo_password: str = ""
    docker_url: str = "unix:///var/run/docker.sock"
    demo_image: int = 1
    compute_host: str = "local"
    # images: per-project quotas (-1 = unlimited) and registries docker_image may name
    image_quota_images: int = 100
    image_quota_bytes: int = 50 * 1024**3
    image_allowed_registries: str = ""  # comma-separated hosts; empty = any registry
    # network (docs/networking.md): the range of the demo project's `private` network
    network_demo_cidr: str = "10.0.0.0/24"
    # compute (docs/compute.md): overcommit, quotas, workers, reconciler, container labels
    ram_allocation_ratio: float = 1.0
    cpu_allocation_ratio: float = 16.0
    reserved_host_memory_mb: int = 512
    compute_workers: int = 8
    compute_stop_timeout: int = 10  # seconds a server gets to stop before it is killed
    task_lease_seconds: int = 30
    reconcile_interval: int = 10
    orphan_grace_seconds: int = 60
    container_labels: str = ""  # extra labels on every Docker object: "k=v,k2=v2"
    quota_instances: int = 10
    quota_cores: int = 20
    quota_ram: int = 51200
    quota_key_pairs: int = 100
    quota_server_groups: int = 10
    quota_server_group_members: int = 10
    quota_metadata_items: int = 128
    # orchestration (docs/orchestration.md): docker_endpoint values an admin allows for
    # everyone ("tcp://10.0.0.5:2375,unix:///var/run/docker.sock"), engine parallelism
    heat_allowed_endpoints: str = ""
    heat_max_parallel: int = 16

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'dockyard.db'}"

    @property
    def key_dir(self) -> Path:
        return self.home / "fernet-keys"

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _coerce(kind: Any, raw: Any) -> Any:
    if kind in (int, "int"):
        return int(raw)
    if kind in (Path, "Path"):
        return Path(raw).expanduser()
    return str(raw)


def load_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from (lowest first) defaults, the YAML file in DOCKYARD_CONFIG, env, overrides."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    config_file = env.get("DOCKYARD_CONFIG")
    if config_file:
        loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{config_file}: expected a mapping of settings")
        values.update(loaded)
    for f in fields(Settings):
        name = f"DOCKYARD_{f.name.upper()}"
        if env.get(name):
            values[f.name] = env[name]
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name: f.type for f in fields(Settings)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    return Settings(**{k: _coerce(known[k], v) for k, v in values.items()})
