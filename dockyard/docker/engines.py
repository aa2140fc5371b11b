"""Compute hosts' Docker engines: clients (unix socket or TCP with TLS) and capacity probes."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import docker
from docker.tls import TLSConfig


@dataclass(frozen=True)
class EngineInfo:
    memory_mb: int
    vcpus: int
    arch: str
    name: str
    version: str


def connect(url: str, tls: dict | None = None, timeout: int | None = 120) -> docker.DockerClient:
    """A client for an engine; `tls` holds file paths {"ca", "cert", "key"} for tcp:// URLs."""
    tls_config = None
    if tls:
        cert = (tls["cert"], tls["key"]) if tls.get("cert") and tls.get("key") else None
        tls_config = TLSConfig(client_cert=cert, ca_cert=tls.get("ca"), verify=bool(tls.get("ca")))
    return docker.DockerClient(
        base_url=url, tls=tls_config or False, timeout=timeout, max_pool_size=64
    )


def probe(client: docker.DockerClient) -> EngineInfo:
    info = client.info()
    return EngineInfo(
        memory_mb=int(info.get("MemTotal", 0)) // (1024 * 1024),
        vcpus=int(info.get("NCPU", 0)),
        arch=str(info.get("Architecture", "")),
        name=str(info.get("Name", "")),
        version=str(info.get("ServerVersion", "")),
    )


class ClientPool:
    """One long-lived client per compute host, shared by the worker threads."""

    def __init__(self, timeout: int = 120):
        self.timeout = timeout
        self._clients: dict[tuple, docker.DockerClient] = {}
        self._lock = threading.Lock()

    def get(self, url: str, tls: dict | None = None) -> docker.DockerClient:
        key = (url, tuple(sorted((tls or {}).items())))
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = connect(url, tls, self.timeout)
                self._clients[key] = client
            return client

    def close(self) -> None:
        with self._lock:
            for c in self._clients.values():
                c.close()
            self._clients.clear()


def shares_filesystem(url: str) -> bool:
    """Whether an engine at `url` sees this process's file system: a unix:// socket is an
    engine on this machine (a tcp:// one may be anywhere), so host paths can be bind-mounted."""
    return url.startswith("unix://")
