"""The Python interface compute uses: what to boot from an image, and snapshots into images.

    from dockyard.image.boot import BootImage, boot_image, create_image_from_stream

    with runtime.db.session() as s:
        image = boot_image(s, ctx, server.image_ref)     # NotFound / BadRequest with a reason
    ref = ensure_image(client, image)                     # dockyard.docker.images

A snapshot taken by a durable operation is four calls: `create_snapshot` (a queued image, in
the API's transaction), `upload_snapshot` (queued -> saving -> active from a `docker save`
stream; a retry of the same operation takes over the image from its dead attempt),
`snapshot_status` (where a resumed operation stands) and `discard_snapshot` (a snapshot that
failed leaves no image behind).

No HTTP in between, and no access to the image tables from outside this package.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from dockyard.api.context import RequestContext
from dockyard.api.errors import BadRequest
from dockyard.config import Settings
from dockyard.image import images as img
from dockyard.image import uploads
from dockyard.image.models import Image
from dockyard.image.store import BlobStore
from dockyard.image.uploads import create_image_from_stream

__all__ = [
    "BootImage",
    "boot_image",
    "create_image_from_stream",
    "create_snapshot",
    "discard_snapshot",
    "snapshot_status",
    "upload_snapshot",
]


@dataclass(frozen=True)
class BootImage:
    id: str
    name: str
    owner: str
    container_format: str
    disk_format: str
    min_ram: int
    min_disk: int
    blob_path: Path | None  # a `docker save` archive to `docker load`, or None
    registry_ref: str | None  # a reference to `docker pull` (property docker_image), or None
    properties: dict[str, str]

    @property
    def config_digest(self) -> str | None:
        """The image id Docker gives the loaded archive ("sha256:..."), when known."""
        return self.properties.get(img.PROP_CONFIG_DIGEST) or None


def boot_image(session: Session, ctx: RequestContext, image_ref: str) -> BootImage:
    """The image `image_ref` (an image id) as compute needs it to start a container.

    Raises NotFound if there is no such image or ctx's project may not see it, and
    BadRequest naming the reason if it cannot boot: not active (queued, saving,
    deactivated, ...), container_format not docker, or neither data nor docker_image.
    """
    image = img.get_visible(session, ctx, image_ref)
    label = f"Image {image.name or ''} ({image.id})".replace(" ()", "").replace("  ", " ")
    if image.status == "deactivated":
        raise BadRequest(f"{label} is deactivated; an admin must reactivate it before booting.")
    props = img.properties_of(image)
    registry_ref = props.get(img.PROP_DOCKER_IMAGE) or None
    if image.status != "active":
        raise BadRequest(f"{label} is not active (status {image.status}); upload its data first.")
    if image.container_format != "docker":
        raise BadRequest(
            f"{label} has container_format {image.container_format!r}; only 'docker' images "
            "(docker save archives or registry references) can boot as containers."
        )
    blob_path = BlobStore.local_path(image.location)
    if blob_path is None and registry_ref is None:
        raise BadRequest(
            f"{label} has no data and no docker_image property naming a registry reference, "
            "so there is nothing to run."
        )
    return BootImage(
        id=image.id,
        name=image.name or "",
        owner=image.owner or "",
        container_format=image.container_format,
        disk_format=image.disk_format or "",
        min_ram=image.min_ram,
        min_disk=image.min_disk,
        blob_path=blob_path,
        registry_ref=registry_ref,
        properties=props,
    )


# ---- snapshots taken by a durable operation ------------------------------------------------


def create_snapshot(
    session: Session,
    ctx: RequestContext,
    settings: Settings,
    name: str,
    properties: dict[str, str],
) -> str:
    """A new queued, private docker image owned by ctx's project, in the caller's transaction
    (policy and the image-count quota are checked here); returns its id."""
    body = {
        "name": name,
        "container_format": "docker",
        "disk_format": "raw",
        "visibility": "private",
        **dict(properties),
    }
    return img.create_image(session, ctx, body, settings).id


def upload_snapshot(
    runtime, ctx: RequestContext, image_id: str, chunks: Iterable[bytes], claim_prefix: str
) -> None:
    """Stream a `docker save` archive into the snapshot image: saving, then active.

    `claim_prefix` names the operation: an image its earlier (dead) attempt left `saving` is
    taken over. Same checks as any upload (archive, byte quota); on failure the image is back
    to queued and the error is raised.
    """
    uploads.upload_chunks(runtime, ctx, image_id, chunks, claim_prefix)


def snapshot_status(runtime, image_id: str) -> str | None:
    """The image's status, or None when it was deleted."""
    with runtime.db.session() as session:
        return session.scalar(select(Image.status).where(Image.id == image_id))


def discard_snapshot(runtime, image_id: str) -> bool:
    """Delete a snapshot image that did not become active (an active one is kept); True when
    a record was removed."""
    with runtime.db.session() as session:
        image = session.scalar(select(Image).where(Image.id == image_id).with_for_update())
        if image is None or image.status == "active":
            return False
        location = image.location
        session.delete(image)
    path = BlobStore.local_path(location) if location else None
    if path is not None:
        path.unlink(missing_ok=True)
    return True
