"""Image delivery: make sure a Glance image is on a Docker host, loaded or pulled only once.

    from dockyard.docker.images import ensure_image
    ref = ensure_image(client, boot_image)   # "dockyard/image-<image id>:latest"

* Data images: the `docker save` archive is streamed from the blob store into `docker load`
  (1 MiB chunks, never whole in memory). On the way, manifest.json's RepoTags are rewritten to
  the single tag `dockyard/image-<image id>:latest`, so a tenant's archive can never re-tag
  the host's own images (say `nginx:latest`), and the host copy is traceable to the image id.
* Registry images (property docker_image): `docker pull` of that reference, then the same tag.
* Present already (the tag exists and, when known, has the archive's config digest as its id):
  nothing is done.
* Concurrency: an exclusive file lock per (Docker daemon id, image id) in a lock directory, so
  many boots asking at once, in threads or in several dockyard processes, load the image once.
  The lock lives in the file system, not in module state; `ImageDelivery` only holds settings.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound

from dockyard.image.boot import BootImage
from dockyard.image.reference import parse_reference

log = logging.getLogger("dockyard.docker.images")

LOCAL_REPO_PREFIX = "dockyard/image-"
CHUNK = 1024 * 1024


class DeliveryError(Exception):
    """The image could not be put on the Docker host; the message says why."""


def local_ref(image_id: str) -> str:
    """The tag an image's copy carries on every Docker host."""
    return f"{LOCAL_REPO_PREFIX}{image_id}:latest"


def default_lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"dockyard-image-locks-{os.getuid()}"


def _block(size: int) -> int:
    return (size + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE * tarfile.BLOCKSIZE


def _renamed(name: str, raw: bytes, tag: str) -> bytes:
    """manifest.json / index.json with every image name replaced by `tag`."""
    doc = json.loads(raw or b"null")
    if name == "manifest.json" and isinstance(doc, list):
        for entry in doc:
            if isinstance(entry, dict):
                entry["RepoTags"] = [tag]
    elif name == "index.json" and isinstance(doc, dict):
        for desc in doc.get("manifests") or []:
            if isinstance(desc, dict):
                notes = desc.setdefault("annotations", {})
                notes["io.containerd.image.name"] = f"docker.io/{tag}"
                notes["org.opencontainers.image.ref.name"] = tag.rsplit(":", 1)[1]
    return json.dumps(doc).encode()


def retagged_archive(path: Path, tag: str) -> Iterator[bytes]:
    """The archive at `path` as a tar stream whose image names are only `tag`.

    manifest.json's RepoTags and index.json's name annotations are rewritten; every other
    member is copied byte for byte (headers included) in the original order. Works for plain
    and compressed archives; the output is an uncompressed tar.
    """
    with tarfile.open(path, mode="r:*") as tar:
        members = tar.getmembers()
        raw = tar.fileobj
        for info in members:
            name = posixpath.normpath(info.name)
            if name in ("manifest.json", "index.json") and info.isfile():
                f = tar.extractfile(info)
                data = _renamed(name, f.read() if f else b"", tag)
                new = tarfile.TarInfo(name)
                new.size = len(data)
                new.mode = info.mode
                new.mtime = info.mtime
                yield new.tobuf(format=tarfile.PAX_FORMAT)
                yield data + b"\0" * (_block(len(data)) - len(data))
                continue
            end = info.offset_data + (_block(info.size) if info.isreg() else 0)
            raw.seek(info.offset)
            left = end - info.offset
            while left > 0:
                chunk = raw.read(min(CHUNK, left))
                if not chunk:
                    raise DeliveryError(f"{path}: archive ends early")
                left -= len(chunk)
                yield chunk
        yield b"\0" * (2 * tarfile.BLOCKSIZE)


def _rechunk(parts: Iterator[bytes]) -> Iterator[bytes]:
    buf = io.BytesIO()
    for part in parts:
        buf.write(part)
        if buf.tell() >= CHUNK:
            yield buf.getvalue()
            buf = io.BytesIO()
    if buf.tell():
        yield buf.getvalue()


class ImageDelivery:
    """Puts images on Docker hosts. Stateless apart from where it keeps its lock files."""

    def __init__(self, lock_dir: Path | None = None):
        self.lock_dir = lock_dir or default_lock_dir()

    def ensure(self, client: docker.DockerClient, image: BootImage) -> str:
        ref = local_ref(image.id)
        if self._present(client, ref, image):
            return ref
        with self._lock(client, image.id):
            if self._present(client, ref, image):
                return ref
            if image.blob_path is not None:
                self._load(client, image, ref)
            elif image.registry_ref:
                self._pull(client, image, ref)
            else:
                raise DeliveryError(f"image {image.id} has neither data nor a registry reference")
        if not self._present(client, ref, image):
            raise DeliveryError(f"image {image.id}: {ref} is not on the host after delivery")
        return ref

    ensure_image = ensure  # the name the module-level function has

    def forget(self, client: docker.DockerClient, image_id: str) -> bool:
        """Remove the host's tag for an image (not forced: images in use stay)."""
        try:
            client.api.remove_image(local_ref(image_id), noprune=False)
            return True
        except ImageNotFound:
            return False
        except APIError as exc:
            log.info("keeping %s on the host: %s", local_ref(image_id), exc)
            return False

    # ---- steps -------------------------------------------------------------------------

    @staticmethod
    def _present(client: docker.DockerClient, ref: str, image: BootImage) -> bool:
        try:
            found = client.api.inspect_image(ref)
        except ImageNotFound:
            return False
        want = image.config_digest if image.blob_path is not None else None
        return want is None or found.get("Id") == want

    @contextmanager
    def _lock(self, client: docker.DockerClient, image_id: str) -> Iterator[None]:
        daemon = str(client.info().get("ID") or client.api.base_url)
        self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = hashlib.sha256(f"{daemon}\0{image_id}".encode()).hexdigest()[:32]
        path = self.lock_dir / f"{key}.lock"
        while True:
            f = open(path, "a+b")  # noqa: SIM115 (closed below)
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            f.close()  # the holder removed this file as it finished: lock the new one
        try:
            yield
        finally:
            path.unlink(missing_ok=True)
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
            f.close()

    def _load(self, client: docker.DockerClient, image: BootImage, ref: str) -> None:
        path = image.blob_path
        if path is None or not path.is_file():
            raise DeliveryError(f"image {image.id}: its data is missing from the blob store")
        log.info("loading image %s from %s", image.id, path)
        try:
            stream = _rechunk(retagged_archive(path, ref))
            messages = client.api.load_image(stream)
            loaded = self._follow(messages, f"docker load of image {image.id}")
        except (APIError, tarfile.TarError, OSError, ValueError) as exc:
            raise DeliveryError(f"docker load of image {image.id} failed: {exc}") from exc
        if not any(line.endswith(ref) for line in loaded):
            # an OCI layout without manifest.json keeps its own names: tag the loaded id
            for line in loaded:
                if line.startswith("Loaded image ID: "):
                    client.api.tag(line.split(": ", 1)[1], ref.rsplit(":", 1)[0], "latest")

    def _pull(self, client: docker.DockerClient, image: BootImage, ref: str) -> None:
        try:
            source = parse_reference(image.registry_ref or "")
        except ValueError as exc:
            raise DeliveryError(f"image {image.id}: {exc}") from exc
        tag = source.digest or source.tag or "latest"
        log.info("pulling %s for image %s", source.pull_ref, image.id)
        try:
            messages = client.api.pull(source.repository, tag=tag, stream=True, decode=True)
            self._follow(messages, f"docker pull {source.pull_ref}")
            client.api.tag(source.pull_ref, ref.rsplit(":", 1)[0], "latest", force=True)
        except APIError as exc:
            raise DeliveryError(f"docker pull {source.pull_ref} failed: {exc}") from exc

    @staticmethod
    def _follow(messages, what: str) -> list[str]:
        """Drain a progress stream; the 'stream' lines, or DeliveryError on an error entry."""
        lines = []
        for msg in messages:
            if not isinstance(msg, dict):
                continue
            if msg.get("error") or msg.get("errorDetail"):
                detail = msg.get("error") or msg["errorDetail"].get("message")
                raise DeliveryError(f"{what} failed: {detail}")
            text = (msg.get("stream") or "").strip()
            if text:
                lines.append(text)
        return lines


def ensure_image(client: docker.DockerClient, image: BootImage) -> str:
    """Make sure `image` is on the host behind `client`; returns the local reference to run."""
    return ImageDelivery().ensure(client, image)


def forget_image(client: docker.DockerClient, image_id: str) -> bool:
    """Drop the host's copy of an image (its dockyard tag) unless a container uses it."""
    return ImageDelivery().forget(client, image_id)
