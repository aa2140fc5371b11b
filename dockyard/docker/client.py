"""Docker hosts known to this process and clients for them."""

from __future__ import annotations

from dataclasses import dataclass

import docker


@dataclass(frozen=True)
class DockerHost:
    name: str
    url: str


def connect(host: DockerHost, timeout: int = 120) -> docker.DockerClient:
    """A docker-py client for the host (unix:// or tcp://)."""
    return docker.DockerClient(base_url=host.url, timeout=timeout)


def local_host(settings) -> DockerHost:
    """The embedded default: the local engine, as configured by DOCKYARD_DOCKER_URL."""
    return DockerHost(name=settings.compute_host, url=settings.docker_url)
