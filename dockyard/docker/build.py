"""Making images on a Docker host from a root filesystem, and streaming them out.

    import_rootfs(client, tarball_bytes, "dockyard/demo-build:latest", changes)  # small images
    import_rootfs_dir(client, Path("/tmp/rootfs"), "dockyard/docker-host:latest", changes)
    for chunk in save_stream(client, "dockyard/docker-host:latest"): ...

`import_rootfs_dir` streams a tar of the directory into `docker import` (one chunk of one file
in memory at a time), and `save_stream` streams `docker save` out, so images of any size pass
through without being held whole.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import docker
import docker.errors

CHUNK = 1 << 20


class ImportFailed(Exception):
    """`docker import` refused the root filesystem; the message says why."""


def import_rootfs(
    client: docker.DockerClient, rootfs: bytes | Iterable[bytes], tag: str, changes: list[str]
) -> str:
    """`docker import` of a rootfs tarball (bytes, or an iterable of chunks streamed to the
    engine) under `tag` (repo:tag); returns the image id."""
    repository, _, version = tag.partition(":")
    answer = client.api.import_image_from_data(
        rootfs, repository=repository, tag=version or "latest", changes=changes
    )
    # the engine answers 200 with a JSON message stream; a failure is a message in it
    for line in str(answer or "").splitlines():
        message = None
        with contextlib.suppress(ValueError):
            message = json.loads(line)
        if isinstance(message, dict) and message.get("error"):
            raise ImportFailed(f"docker import of {tag} failed: {message['error']}")
    return client.images.get(tag).id


def import_rootfs_dir(
    client: docker.DockerClient,
    rootfs: Path,
    tag: str,
    changes: list[str],
    *,
    skip: Callable[[str], bool] | None = None,
    files: dict[str, tuple[bytes, int]] | None = None,
) -> str:
    """`docker import` of the root filesystem in the directory `rootfs`, streamed as a tar
    (as `tar -C rootfs --numeric-owner -c .` would), never whole in memory and never changed
    on disk; `skip` and `files` as for tar_stream. Returns the image id."""
    if not rootfs.is_dir():
        raise ImportFailed(f"{rootfs} is not a directory")
    return import_rootfs(client, tar_stream(rootfs, skip=skip, files=files), tag, changes)


def tar_stream(
    root: Path,
    chunk_size: int = CHUNK,
    *,
    skip: Callable[[str], bool] | None = None,
    files: dict[str, tuple[bytes, int]] | None = None,
) -> Iterator[bytes]:
    """A tar archive of what the directory `root` holds (names relative to it, numeric owners,
    hard links kept, device nodes as such, sockets left out), as chunks of at most
    `chunk_size` bytes of file data: only one chunk of one file is in memory at a time.

    skip(name) True leaves that entry out, and all under it (names are "usr/share/doc/x").
    files: {name: (data, mode)} regular files (owned by root) put in the archive instead of
    what the directory holds at that name; missing parent directories are added (0755).
    """
    files = dict(files or {})
    # a TarFile only to describe files (gettarinfo also tracks inodes for hard links)
    describer = tarfile.TarFile(fileobj=io.BytesIO(), mode="w", format=tarfile.PAX_FORMAT)
    present: set[str] = set()
    for path, arcname in _tree(root, "", skip or (lambda name: False)):
        if arcname in files:
            continue
        try:
            info = describer.gettarinfo(path, arcname)
        except FileNotFoundError:  # gone while walking
            continue
        if info is None:  # a socket: tar leaves it out too
            continue
        info.uname = info.gname = ""  # numeric owners, as `tar --numeric-owner`
        present.add(arcname)
        yield _header(info)
        if info.isreg() and info.size:
            yield from _file_chunks(path, info.size, chunk_size)
            if info.size % tarfile.BLOCKSIZE:
                yield _padding(info.size)
    now = time.time()
    for name, (data, mode) in files.items():
        parts = name.split("/")
        for depth in range(1, len(parts)):
            parent = "/".join(parts[:depth])
            if parent not in present:
                present.add(parent)
                yield _header(_info(parent, tarfile.DIRTYPE, 0o755, 0, now))
        yield _header(_info(name, tarfile.REGTYPE, mode, len(data), now))
        if data:
            yield data + _padding(len(data))
    yield b"\0" * (2 * tarfile.BLOCKSIZE)  # end of archive


def _info(name: str, kind: bytes, mode: int, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, mtime
    return info


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def _tree(
    directory: str | Path, prefix: str, skip: Callable[[str], bool]
) -> Iterator[tuple[str, str]]:
    """(path, name in the archive) for everything under `directory` that `skip` keeps, a
    directory before its contents, symbolic links not followed."""
    with os.scandir(directory) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        name = f"{prefix}{entry.name}"
        if skip(name):
            continue
        yield entry.path, name
        if entry.is_dir(follow_symlinks=False):
            yield from _tree(entry.path, name + "/", skip)


def _file_chunks(path: str, size: int, chunk_size: int) -> Iterator[bytes]:
    """Exactly `size` bytes of the file (zeros if it shrank meanwhile, as the header says)."""
    left = size
    with open(path, "rb") as f:
        while left:
            data = f.read(min(chunk_size, left)) or b"\0" * min(chunk_size, left)
            left -= len(data)
            yield data


def image_size(client: docker.DockerClient, ref: str) -> int:
    """The image's size in bytes as the engine reports it (0 if unknown)."""
    return int(client.images.get(ref).attrs.get("Size") or 0)


def save_stream(client: docker.DockerClient, ref: str) -> Iterator[bytes]:
    """`docker save` of one image, as chunks (never whole in memory)."""
    return client.images.get(ref).save(chunk_size=CHUNK, named=True)


def remove_tag(client: docker.DockerClient, ref: str) -> None:
    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        client.images.remove(ref, noprune=False)
