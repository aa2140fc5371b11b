"""Image data: queued -> saving -> active, with quotas and docker archive checks.

An upload is three steps so the bytes can stream between them without a DB transaction open:
`begin()` claims the image (status `saving`, bytes reserved against the quota) and says how
many bytes the project may still store; the caller streams into a `BlobWriter` with that limit;
`finish()` checks the archive, re-checks the quota under a row lock, moves the blob into place
and marks the image active. `abort()` puts the image back to `queued`. Nothing is kept from an
upload that did not finish: the temp file is removed and no blob or active image remains.
"""

from __future__ import annotations

import errno
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select, update

from dockyard.api.context import RequestContext
from dockyard.api.errors import BadRequest, Conflict, PayloadTooLarge
from dockyard.config import Settings
from dockyard.db.base import utcnow
from dockyard.image import images as img
from dockyard.image.archive import ArchiveError, DockerArchive, inspect_archive
from dockyard.image.models import Image
from dockyard.image.store import BlobStore, LimitExceeded, WrittenBlob
from dockyard.runtime import Runtime

# the status an image holds while data arrives
SAVING = "saving"
# how often a long upload says it is still alive (see images.STALE_UPLOAD_SECONDS)
HEARTBEAT_SECONDS = 60


@dataclass(frozen=True)
class Ticket:
    image_id: str
    owner: str | None
    container_format: str
    limit: int | None  # bytes the writer may accept (None: no quota)
    used: int  # bytes the project stores elsewhere, for messages
    upload_id: str  # this upload's claim on the image


def store_for(runtime: Runtime) -> BlobStore:
    return BlobStore(runtime.settings.blob_dir)


def begin(
    runtime: Runtime,
    ctx: RequestContext,
    image_id: str,
    content_length: int | None,
    claim_prefix: str = "",
) -> Ticket:
    """Claim the image for an upload. `claim_prefix` names the durable work the upload belongs
    to: an image left `saving` by an earlier attempt of the same work (its upload id starts
    with the prefix; that attempt died) is taken over instead of refused."""
    settings = runtime.settings
    with runtime.db.session() as session:
        image = img.get_visible(session, ctx, image_id, lock=True)
        img.enforce_owner(ctx, "image:upload_image", image)
        ours = bool(claim_prefix) and (image.upload_id or "").startswith(claim_prefix)
        if image.status == SAVING and not img.is_stale_upload(image) and not ours:
            raise Conflict(
                f"Image {image.id} is receiving data from another upload right now; "
                "wait for it to finish or fail."
            )
        registry_only = image.status == "active" and img.registry_backed(image)
        if image.status not in ("queued", SAVING) and not registry_only:
            raise Conflict(
                f"Image status transition from {image.status} to saving is not allowed: "
                "data can only be uploaded once, to a queued image."
            )
        if not image.container_format or not image.disk_format:
            raise BadRequest(
                "Properties container_format and disk_format must be set prior to uploading "
                "image data."
            )
        used = img.bytes_used(session, image.owner, exclude=image.id)
        remaining = img.bytes_remaining(session, image.owner, settings, exclude=image.id)
        if remaining >= 0 and content_length is not None and content_length > remaining:
            raise PayloadTooLarge(img.quota_message(settings, used, content_length))
        # compare-and-set, so two uploads racing for one image cannot both win (also where
        # the database has no row locks, as on SQLite)
        upload_id = (claim_prefix + uuid.uuid4().hex)[:32]
        claimed = session.execute(
            update(Image)
            .where(
                Image.id == image.id,
                Image.status == image.status,
                Image.upload_id.is_(None)
                if image.upload_id is None
                else Image.upload_id == image.upload_id,
            )
            .values(
                status=SAVING,
                reserved_bytes=content_length or 0,
                upload_id=upload_id,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            raise Conflict(
                f"Image {image.id} is receiving data from another upload right now; "
                "wait for it to finish or fail."
            )
        return Ticket(
            image.id,
            image.owner,
            image.container_format,
            None if remaining < 0 else remaining,
            used,
            upload_id,
        )


def check_data(ticket: Ticket, blob: WrittenBlob) -> DockerArchive | None:
    """Validate the data for its container format (docker: a docker save archive)."""
    if ticket.container_format != "docker":
        return None
    try:
        return inspect_archive(blob.path)
    except ArchiveError as exc:
        raise BadRequest(f"Image data refused: {exc}. Nothing was stored.") from exc


def finish(
    runtime: Runtime, ticket: Ticket, blob: WrittenBlob, archive: DockerArchive | None
) -> Image:
    """Make the image active with this blob; on any error the blob is not kept."""
    settings = runtime.settings
    store = store_for(runtime)
    final = None
    try:
        with runtime.db.session() as session:
            image = session.scalar(
                select(Image).where(Image.id == ticket.image_id).with_for_update()
            )
            if image is None:
                raise img.Gone(f"Image {ticket.image_id} was deleted during the upload.")
            if image.status != SAVING or image.upload_id != ticket.upload_id:
                raise Conflict(
                    f"Image {ticket.image_id} changed during the upload (status "
                    f"{image.status}; another upload may have taken over). Nothing was stored."
                )
            if settings.image_quota_bytes >= 0:
                # lock the project's images so concurrent finishes see each other
                session.scalars(
                    select(Image.id).where(Image.owner == image.owner).with_for_update()
                ).all()
                used = img.bytes_used(session, image.owner, exclude=image.id)
                if used + blob.size > settings.image_quota_bytes:
                    raise PayloadTooLarge(img.quota_message(settings, used, blob.size))
            props = img.properties_of(image)
            for key in img.ARCHIVE_PROPS:
                props.pop(key, None)
            if archive is not None:
                props[img.PROP_REPO_TAGS] = ",".join(archive.repo_tags)
                props[img.PROP_CONFIG_DIGEST] = archive.config_digest
                props[img.PROP_ARCHIVE_FORMAT] = archive.format
            img.set_properties(image, props)
            final = store.path_for(image.id)
            image.location = store.commit(blob, image.id)
            image.size = blob.size
            image.checksum = blob.md5
            image.os_hash_algo = "sha512"
            image.os_hash_value = blob.sha512
            image.reserved_bytes = 0
            image.upload_id = None
            image.status = "active"
            image.updated_at = utcnow()
            session.flush()
            return image
    except BaseException:
        if final is not None:
            final.unlink(missing_ok=True)
        raise


def abort(runtime: Runtime, ticket: Ticket) -> None:
    """Put an image whose upload failed back to queued (if this upload still holds it)."""
    with runtime.db.session() as session:
        q = select(Image).where(Image.id == ticket.image_id).with_for_update()
        image = session.scalar(q)
        if image is not None and image.status == SAVING and image.upload_id == ticket.upload_id:
            image.status = "queued"
            image.reserved_bytes = 0
            image.upload_id = None
            img.sync_registry_status(image)
            image.updated_at = utcnow()


def heartbeat(runtime: Runtime, ticket: Ticket) -> None:
    """Mark a long upload as alive, so it is not taken for an abandoned one."""
    with runtime.db.session() as session:
        session.execute(
            update(Image)
            .where(Image.id == ticket.image_id, Image.upload_id == ticket.upload_id)
            .values(updated_at=utcnow())
        )


def sweep_store(runtime: Runtime) -> None:
    """At start: drop stale temp files and blobs that no image points at."""
    store = store_for(runtime)
    store.sweep_temp()
    with runtime.db.session() as session:
        locations = session.scalars(select(Image.location).where(Image.location.is_not(None)))
        known = {p.name for p in map(BlobStore.local_path, locations) if p is not None}
    store.sweep_orphans(known)


def reset_abandoned(runtime: Runtime) -> int:
    """Put images whose upload died with its process back to queued; returns how many."""
    with runtime.db.session() as session:
        stale = session.scalars(
            select(Image)
            .where(Image.status == SAVING, Image.updated_at < img.stale_before())
            .with_for_update()
        ).all()
        for image in stale:
            image.status = "queued"
            image.reserved_bytes = 0
            image.upload_id = None
            img.sync_registry_status(image)
        return len(stale)


def limit_error(settings: Settings, ticket: Ticket) -> PayloadTooLarge:
    return PayloadTooLarge(img.quota_message(settings, ticket.used, None))


def upload_chunks(
    runtime: Runtime,
    ctx: RequestContext,
    image_id: str,
    chunks: Iterable[bytes],
    claim_prefix: str = "",
) -> Image:
    """The whole upload, synchronously, from an iterable of chunks (for Python callers)."""
    ticket = begin(runtime, ctx, image_id, None, claim_prefix)
    last_beat = time.monotonic()
    try:
        with store_for(runtime).writer(ticket.limit) as writer:
            try:
                for chunk in chunks:
                    writer.write(chunk)
                    if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                        last_beat = time.monotonic()
                        heartbeat(runtime, ticket)
            except LimitExceeded as exc:
                raise limit_error(runtime.settings, ticket) from exc
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                raise PayloadTooLarge("Image storage media is full. Nothing was stored.") from exc
            blob = writer.finish()
            archive = check_data(ticket, blob)
            image = finish(runtime, ticket, blob, archive)
            writer.done = True
            return image
    except BaseException:
        abort(runtime, ticket)
        raise


def create_image_from_stream(
    runtime: Runtime,
    ctx: RequestContext,
    name: str,
    chunks: Iterable[bytes],
    properties: dict[str, str],
) -> str:
    """A new active, private docker image owned by ctx's project, from a `docker save` stream.

    Same checks as an upload through the API (policy, archive, image and byte quotas).
    On any failure the image record is removed again and the error is raised.
    """
    body = {
        "name": name,
        "container_format": "docker",
        "disk_format": "raw",
        "visibility": "private",
        **dict(properties),
    }
    with runtime.db.session() as session:
        image_id = img.create_image(session, ctx, body, runtime.settings).id
    try:
        upload_chunks(runtime, ctx, image_id, chunks)
    except BaseException:
        with runtime.db.session() as session:
            image = session.get(Image, image_id)
            if image is not None:
                session.delete(image)
        raise
    return image_id
