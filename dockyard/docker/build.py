"""Making images on a Docker host from a root filesystem, and streaming them out."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import docker
import docker.errors


def import_rootfs(client: docker.DockerClient, rootfs: bytes, tag: str, changes: list[str]) -> str:
    """`docker import` of a rootfs tarball under `tag` (repo:tag); returns the image id."""
    repository, _, version = tag.partition(":")
    client.api.import_image_from_data(
        rootfs, repository=repository, tag=version or "latest", changes=changes
    )
    return client.images.get(tag).id


def save_stream(client: docker.DockerClient, ref: str) -> Iterator[bytes]:
    """`docker save` of one image, as chunks (never whole in memory)."""
    return client.images.get(ref).save(chunk_size=1 << 20, named=True)


def remove_tag(client: docker.DockerClient, ref: str) -> None:
    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        client.images.remove(ref, noprune=False)
