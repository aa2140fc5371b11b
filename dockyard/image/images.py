"""Image records: visibility, views, create, JSON-patch update, delete, state changes, members.

Every function takes an open session and the caller's context and enforces visibility and
policy itself, so the HTTP handlers and the Python interface for compute share one rule set.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from dockyard.api.context import RequestContext
from dockyard.api.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
)
from dockyard.api.policy import check, enforce
from dockyard.config import Settings
from dockyard.db.base import utcnow
from dockyard.image.models import Image, ImageMember, ImageProperty, ImageTag
from dockyard.image.reference import check_allowed, parse_reference

CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]
DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]
VISIBILITIES = ["community", "public", "private", "shared"]
STATUSES = [
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "pending_delete",
    "deactivated",
    "uploading",
    "importing",
]
MEMBER_STATUSES = ["pending", "accepted", "rejected"]

# custom properties dockyard sets from the uploaded archive; nobody may set them by hand
PROP_REPO_TAGS = "docker_repo_tags"
PROP_CONFIG_DIGEST = "docker_config_digest"
PROP_ARCHIVE_FORMAT = "docker_archive_format"
ARCHIVE_PROPS = (PROP_REPO_TAGS, PROP_CONFIG_DIGEST, PROP_ARCHIVE_FORMAT)
# a registry reference Docker hosts pull instead of loading data
PROP_DOCKER_IMAGE = "docker_image"

READ_ONLY = {
    "id",
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "stores",
}
MUTABLE_CORE = {
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "min_ram",
    "min_disk",
    "container_format",
    "disk_format",
    "tags",
    "owner",
}
CORE = READ_ONLY | MUTABLE_CORE
RESERVED_PREFIXES = ("os_glance",)

MAX_TAGS = 128
MAX_PROPERTIES = 128
MAX_MEMBERS = 128
MAX_VALUE = 65535


class Gone(ApiError):
    status = 410
    kind = "Gone"


def new_image_id() -> str:
    return str(uuid.uuid4())


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def properties_of(image: Image) -> dict[str, str]:
    return {p.name: p.value for p in image.properties}


def view(image: Image) -> dict[str, Any]:
    """The image as Glance v2 shows it: core fields, then custom properties at the top level."""
    body: dict[str, Any] = dict(properties_of(image))
    body.update(
        {
            "id": image.id,
            "name": image.name,
            "status": image.status,
            "visibility": image.visibility,
            "protected": image.protected,
            "os_hidden": image.os_hidden,
            "checksum": image.checksum,
            "os_hash_algo": image.os_hash_algo,
            "os_hash_value": image.os_hash_value,
            "owner": image.owner,
            "size": image.size,
            "virtual_size": image.virtual_size,
            "min_ram": image.min_ram,
            "min_disk": image.min_disk,
            "container_format": image.container_format,
            "disk_format": image.disk_format,
            "tags": sorted(t.value for t in image.tags),
            "created_at": _ts(image.created_at),
            "updated_at": _ts(image.updated_at),
            "self": f"/v2/images/{image.id}",
            "file": f"/v2/images/{image.id}/file",
            "schema": "/v2/schemas/image",
        }
    )
    return body


def member_view(m: ImageMember) -> dict[str, Any]:
    return {
        "image_id": m.image_id,
        "member_id": m.member,
        "status": m.status,
        "created_at": _ts(m.created_at),
        "updated_at": _ts(m.updated_at),
        "schema": "/v2/schemas/member",
    }


# ---- visibility ----------------------------------------------------------------------------


def is_owner(ctx: RequestContext, image: Image) -> bool:
    return ctx.project_id is not None and image.owner == ctx.project_id


def membership(session: Session, image: Image, project_id: str | None) -> ImageMember | None:
    if project_id is None:
        return None
    return session.get(ImageMember, (image.id, project_id))


def can_see(session: Session, ctx: RequestContext, image: Image) -> bool:
    if ctx.is_admin or image.visibility in ("public", "community") or is_owner(ctx, image):
        return True
    if image.visibility == "shared":
        return membership(session, image, ctx.project_id) is not None
    return False


def get_visible(session: Session, ctx: RequestContext, image_id: str, lock: bool = False) -> Image:
    """The image if the caller may see it; otherwise 404, exactly as if it did not exist."""
    q = select(Image).where(Image.id == image_id)
    if lock:
        q = q.with_for_update()
    image = session.scalar(q)
    if image is None or not can_see(session, ctx, image):
        raise NotFound(f"No image found with ID {image_id}")
    return image


def find_visible(session: Session, ctx: RequestContext, ref: str) -> Image:
    """A visible image by id, else by name (what templates use), matching names as Glance's
    default list does: the project's own, public, and shared images it accepted; community
    images only when none of those has the name. 404 when none, 409 when still ambiguous."""
    from dockyard.api.errors import Conflict

    found = session.get(Image, ref) if len(ref) <= 36 else None
    if found is not None and can_see(session, ctx, found):
        return found

    def listed(i: Image) -> bool:
        if is_owner(ctx, i) or i.visibility == "public":
            return True
        if i.visibility == "shared":
            m = membership(session, i, ctx.project_id)
            return m is not None and m.status == "accepted"
        return ctx.is_admin and i.visibility == "private"

    named = list(session.scalars(select(Image).where(Image.name == ref)))
    chosen = [i for i in named if listed(i)] or [i for i in named if i.visibility == "community"]
    if len(chosen) > 1:
        own = [i for i in chosen if is_owner(ctx, i)]
        if len(own) != 1:
            raise Conflict(f"Multiple images named {ref} are visible: use the image id.")
        chosen = own
    if not chosen:
        raise NotFound(f"No image found with ID or name {ref}")
    return chosen[0]


def _owner_target(image: Image) -> dict[str, Any]:
    return {"project_id": image.owner}


def enforce_owner(ctx: RequestContext, action: str, image: Image) -> None:
    """Policy for changing an image: admin, or a member of the owning project."""
    if not check(ctx, action, _owner_target(image)):
        raise Forbidden(
            f"You are not allowed to {action.split(':', 1)[1].replace('_', ' ')} image "
            f"{image.id}: it belongs to another project."
        )


def visibility_clause(ctx: RequestContext, member_status: str = "accepted"):
    """SQL condition: the images a non-admin's default list shows."""
    pid = ctx.project_id
    if pid is None:
        return Image.visibility == "public"
    members = select(ImageMember.image_id).where(ImageMember.member == pid)
    if member_status != "all":
        members = members.where(ImageMember.status == member_status)
    return or_(
        Image.owner == pid,
        Image.visibility == "public",
        and_(Image.visibility == "shared", Image.id.in_(members)),
    )


# ---- validation ----------------------------------------------------------------------------


def _check_property(name: str, value: Any, settings: Settings) -> str:
    if not isinstance(name, str) or not name or len(name) > 255:
        raise BadRequest("Property names must be strings of 1 to 255 characters.")
    if name.startswith(RESERVED_PREFIXES):
        raise Forbidden(f"Attribute '{name}' is reserved.")
    if name in ARCHIVE_PROPS:
        raise Forbidden(
            f"Attribute '{name}' is read-only: dockyard sets it from the uploaded docker archive."
        )
    if not isinstance(value, str):
        raise BadRequest(f"Property '{name}' must be a string, not {type(value).__name__}.")
    if len(value) > MAX_VALUE:
        raise BadRequest(f"Property '{name}' is longer than {MAX_VALUE} characters.")
    if name == PROP_DOCKER_IMAGE:
        try:
            check_allowed(parse_reference(value), settings.image_allowed_registries)
        except ValueError as exc:
            raise BadRequest(f"Invalid docker_image: {exc}") from exc
    return value


def _check_core(name: str, value: Any) -> Any:
    """Type-check one mutable core attribute; returns the value to store."""
    if name == "name":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise BadRequest("'name' must be a string of at most 255 characters, or null.")
    elif name == "visibility":
        if value not in VISIBILITIES:
            raise BadRequest(f"'visibility' must be one of {', '.join(VISIBILITIES)}.")
    elif name in ("protected", "os_hidden"):
        if not isinstance(value, bool):
            raise BadRequest(f"'{name}' must be true or false.")
    elif name in ("min_ram", "min_disk"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadRequest(f"'{name}' must be an integer of 0 or more.")
    elif name == "container_format":
        if value is not None and value not in CONTAINER_FORMATS:
            raise BadRequest(
                f"Invalid container format '{value}'; one of: {', '.join(CONTAINER_FORMATS)}."
            )
    elif name == "disk_format":
        if value is not None and value not in DISK_FORMATS:
            raise BadRequest(f"Invalid disk format '{value}'; one of: {', '.join(DISK_FORMATS)}.")
    elif name == "tags":
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise BadRequest("'tags' must be a list of strings.")
        if any(not t or len(t) > 255 for t in value):
            raise BadRequest("Each tag must be 1 to 255 characters long.")
        value = sorted(set(value))
        if len(value) > MAX_TAGS:
            raise PayloadTooLarge(f"An image may have at most {MAX_TAGS} tags.")
    elif name == "owner" and value is not None and (not isinstance(value, str) or len(value) > 64):
        raise BadRequest("'owner' must be a project id.")
    return value


def _check_visibility_change(ctx: RequestContext, visibility: str, image: Image | None) -> None:
    if visibility == "public":
        enforce(ctx, "image:publicize_image")
    elif visibility == "community":
        target = _owner_target(image) if image is not None else None
        enforce(ctx, "image:communitize_image", target)


# ---- quotas --------------------------------------------------------------------------------


# an upload that has not made progress for this long is abandoned (its process died)
STALE_UPLOAD_SECONDS = 600


def stale_before() -> datetime:
    return utcnow() - timedelta(seconds=STALE_UPLOAD_SECONDS)


def is_stale_upload(image: Image) -> bool:
    return image.status == "saving" and image.updated_at < stale_before()


def bytes_used(session: Session, owner: str | None, exclude: str | None = None) -> int:
    """Stored bytes plus bytes reserved by live uploads in progress, for one project."""
    live = and_(Image.status == "saving", Image.updated_at >= stale_before())
    reserved = case((live, Image.reserved_bytes), else_=0)
    q = select(func.coalesce(func.sum(func.coalesce(Image.size, 0) + reserved), 0))
    q = q.where(Image.owner == owner)
    if exclude:
        q = q.where(Image.id != exclude)
    return int(session.scalar(q) or 0)


def check_image_count(session: Session, owner: str | None, settings: Settings) -> None:
    limit = settings.image_quota_images
    if limit < 0:
        return
    count = session.scalar(select(func.count()).select_from(Image).where(Image.owner == owner))
    if count >= limit:
        raise PayloadTooLarge(
            f"Image quota exceeded: the project already has {count} images and may have at most "
            f"{limit} (setting image_quota_images). Delete images you no longer need."
        )


def bytes_remaining(session: Session, owner: str | None, settings: Settings, exclude: str) -> int:
    """How many more bytes the project may store, or -1 for no limit."""
    limit = settings.image_quota_bytes
    if limit < 0:
        return -1
    return max(0, limit - bytes_used(session, owner, exclude))


def quota_message(settings: Settings, used: int, size: int | None) -> str:
    need = f"{size} more bytes" if size is not None else "more bytes"
    return (
        f"Storage quota exceeded: the image data needs {need} but the project already stores "
        f"{used} of {settings.image_quota_bytes} bytes (setting image_quota_bytes). "
        "Delete images you no longer need. The upload was discarded."
    )


# ---- create / update / delete --------------------------------------------------------------


def create_image(
    session: Session, ctx: RequestContext, body: dict[str, Any], settings: Settings
) -> Image:
    enforce(ctx, "image:add_image")
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object describing the image.")
    core: dict[str, Any] = {}
    props: dict[str, str] = {}
    image_id = body.get("id")
    for key, value in body.items():
        if key == "id":
            continue
        if key in READ_ONLY:
            raise Forbidden(f"Attribute '{key}' is read-only.")
        if key in MUTABLE_CORE:
            core[key] = _check_core(key, value)
        else:
            props[key] = _check_property(key, value, settings)
    if len(props) > MAX_PROPERTIES:
        raise PayloadTooLarge(f"An image may have at most {MAX_PROPERTIES} custom properties.")
    if image_id is not None:
        try:
            image_id = str(uuid.UUID(str(image_id)))
        except ValueError as exc:
            raise BadRequest(f"'id' must be a UUID, not '{image_id}'.") from exc
        if session.get(Image, image_id) is not None:
            raise Conflict(f"An image with ID {image_id} already exists.")
    owner = core.pop("owner", None) or ctx.project_id
    if owner != ctx.project_id and not ctx.is_admin:
        raise Forbidden("Only an admin may create an image owned by another project.")
    visibility = core.get("visibility", "shared")
    _check_visibility_change(ctx, visibility, None)
    check_image_count(session, owner, settings)
    now = utcnow()
    image = Image(
        id=image_id or new_image_id(),
        name=core.get("name"),
        owner=owner,
        status="queued",
        visibility=visibility,
        protected=core.get("protected", False),
        os_hidden=core.get("os_hidden", False),
        container_format=core.get("container_format"),
        disk_format=core.get("disk_format"),
        min_ram=core.get("min_ram", 0),
        min_disk=core.get("min_disk", 0),
        reserved_bytes=0,
        created_at=now,
        updated_at=now,
    )
    image.properties = [ImageProperty(name=k, value=v) for k, v in props.items()]
    image.tags = [ImageTag(value=t) for t in core.get("tags", [])]
    sync_registry_status(image)
    session.add(image)
    session.flush()
    return image


def registry_backed(image: Image) -> bool:
    """A docker image whose content comes from a registry (property docker_image), no data."""
    return (
        image.location is None
        and image.container_format == "docker"
        and any(p.name == PROP_DOCKER_IMAGE and p.value for p in image.properties)
    )


def sync_registry_status(image: Image) -> None:
    """An image without data is active while it names a registry reference, else queued."""
    if image.location is None and image.status in ("queued", "active"):
        image.status = "active" if registry_backed(image) else "queued"


def _pointer(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/") or path == "/":
        raise BadRequest(f"Invalid JSON pointer '{path}': it must look like '/name'.")
    parts = path[1:].split("/")
    if len(parts) != 1:
        if parts[0] in ("tags", "locations"):
            raise BadRequest(f"Changing '{path}' is not supported; replace '/{parts[0]}' whole.")
        raise BadRequest(f"Invalid JSON pointer '{path}': nested paths are not supported.")
    return parts[0].replace("~1", "/").replace("~0", "~")


def update_image(
    session: Session, ctx: RequestContext, image_id: str, ops: Any, settings: Settings
) -> Image:
    """Apply a JSON patch (application/openstack-images-v2.1-json-patch) to an image."""
    image = get_visible(session, ctx, image_id, lock=True)
    enforce_owner(ctx, "image:modify_image", image)
    if not isinstance(ops, list):
        raise BadRequest("The body must be a JSON array of patch operations.")
    core = {name: getattr(image, name) for name in MUTABLE_CORE if name != "tags"}
    core["tags"] = sorted(t.value for t in image.tags)
    props = properties_of(image)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise BadRequest("Each patch operation needs 'op' and 'path'.")
        kind, attr = op["op"], _pointer(op["path"])
        if kind not in ("add", "replace", "remove"):
            raise BadRequest(f"Unsupported patch operation '{kind}': use add, replace or remove.")
        if kind != "remove" and "value" not in op:
            raise BadRequest(f"Operation '{kind}' on '{op['path']}' needs a 'value'.")
        if attr in READ_ONLY:
            raise Forbidden(f"Attribute '{attr}' is read-only.")
        if attr in MUTABLE_CORE:
            if kind == "remove":
                raise Forbidden(f"Attribute '{attr}' is a base attribute and cannot be removed.")
            value = _check_core(attr, op["value"])
            has_data = image.location is not None or image.status not in ("queued", "active")
            if attr in ("container_format", "disk_format") and value != core[attr] and has_data:
                raise Forbidden(f"Attribute {attr} can be only replaced for an image without data.")
            if attr == "owner" and value != image.owner and not ctx.is_admin:
                raise Forbidden("Only an admin may change the owner of an image.")
            core[attr] = value
            continue
        if kind == "remove":
            if attr in ARCHIVE_PROPS:
                raise Forbidden(f"Attribute '{attr}' is read-only.")
            if attr not in props:
                raise Conflict(f"Property {attr} does not exist.")
            del props[attr]
            continue
        if kind == "replace" and attr not in props:
            raise Conflict(f"Property {attr} does not exist.")
        props[attr] = _check_property(attr, op["value"], settings)
    if len(props) > MAX_PROPERTIES:
        raise PayloadTooLarge(f"An image may have at most {MAX_PROPERTIES} custom properties.")
    if core["visibility"] != image.visibility:
        _check_visibility_change(ctx, core["visibility"], image)
    for name in MUTABLE_CORE - {"tags"}:
        setattr(image, name, core[name])
    set_tags(image, core["tags"])
    set_properties(image, props)
    sync_registry_status(image)
    image.updated_at = utcnow()
    session.flush()
    return image


def set_tags(image: Image, tags: Iterable[str]) -> None:
    wanted = set(tags)
    image.tags = [t for t in image.tags if t.value in wanted] + [
        ImageTag(value=v) for v in sorted(wanted - {t.value for t in image.tags})
    ]


def set_properties(image: Image, props: dict[str, str]) -> None:
    keep = []
    for p in image.properties:
        if p.name in props:
            p.value = props[p.name]
            keep.append(p)
    have = {p.name for p in keep}
    image.properties = keep + [
        ImageProperty(name=k, value=v) for k, v in props.items() if k not in have
    ]


def add_tag(session: Session, ctx: RequestContext, image_id: str, tag: str) -> None:
    image = get_visible(session, ctx, image_id, lock=True)
    enforce_owner(ctx, "image:modify_image", image)
    tags = _check_core("tags", [*(t.value for t in image.tags), tag])
    set_tags(image, tags)
    image.updated_at = utcnow()


def remove_tag(session: Session, ctx: RequestContext, image_id: str, tag: str) -> None:
    image = get_visible(session, ctx, image_id, lock=True)
    enforce_owner(ctx, "image:modify_image", image)
    if tag not in {t.value for t in image.tags}:
        raise NotFound(f"Tag {tag} not found on image {image_id}.")
    set_tags(image, [t.value for t in image.tags if t.value != tag])
    image.updated_at = utcnow()


def delete_image(session: Session, ctx: RequestContext, image_id: str) -> str | None:
    """Delete the record; returns the data location for the caller to remove after commit."""
    image = get_visible(session, ctx, image_id, lock=True)
    enforce_owner(ctx, "image:delete_image", image)
    if image.protected:
        raise Forbidden(
            f"Image {image_id} is protected and cannot be deleted; set protected to false first."
        )
    location = image.location
    session.delete(image)
    session.flush()
    return location


def set_active_state(session: Session, ctx: RequestContext, image_id: str, active: bool) -> None:
    """Deactivate (active=False) or reactivate an image; admin only."""
    action = "image:reactivate" if active else "image:deactivate"
    image = get_visible(session, ctx, image_id, lock=True)
    enforce(ctx, action)
    if image.status not in ("active", "deactivated"):
        verb = "reactivate" if active else "deactivate"
        raise Forbidden(f"Not allowed to {verb} image in status '{image.status}'.")
    image.status = "active" if active else "deactivated"
    image.updated_at = utcnow()


# ---- members -------------------------------------------------------------------------------


def _shared_image_for_owner(session: Session, ctx: RequestContext, image_id: str) -> Image:
    image = get_visible(session, ctx, image_id, lock=True)
    enforce_owner(ctx, "image:add_member", image)
    if image.visibility != "shared":
        raise Forbidden(
            f"Only shared images have members; image {image_id} is {image.visibility}. "
            "Set its visibility to shared first."
        )
    return image


def add_member(session: Session, ctx: RequestContext, image_id: str, member: Any) -> ImageMember:
    image = _shared_image_for_owner(session, ctx, image_id)
    if not isinstance(member, str) or not member or len(member) > 64:
        raise BadRequest("'member' must be the id of the project to share the image with.")
    if session.get(ImageMember, (image.id, member)) is not None:
        raise Conflict(f"Project {member} is already a member of image {image_id}.")
    count = session.scalar(
        select(func.count()).select_from(ImageMember).where(ImageMember.image_id == image.id)
    )
    if count >= MAX_MEMBERS:
        raise PayloadTooLarge(f"An image may be shared with at most {MAX_MEMBERS} projects.")
    now = utcnow()
    m = ImageMember(
        image_id=image.id, member=member, status="pending", created_at=now, updated_at=now
    )
    session.add(m)
    session.flush()
    return m


def list_members(session: Session, ctx: RequestContext, image_id: str) -> list[ImageMember]:
    image = get_visible(session, ctx, image_id)
    enforce(ctx, "image:get_members")
    if image.visibility != "shared":
        raise Forbidden(f"Only shared images have members; image {image_id} is {image.visibility}.")
    q = select(ImageMember).where(ImageMember.image_id == image.id).order_by(ImageMember.created_at)
    if not (ctx.is_admin or is_owner(ctx, image)):
        q = q.where(ImageMember.member == ctx.project_id)
    return list(session.scalars(q))


def get_member(session: Session, ctx: RequestContext, image_id: str, member: str) -> ImageMember:
    image = get_visible(session, ctx, image_id)
    enforce(ctx, "image:get_member")
    m = session.get(ImageMember, (image.id, member))
    if m is None or not (ctx.is_admin or is_owner(ctx, image) or member == ctx.project_id):
        raise NotFound(f"Project {member} is not a member of image {image_id}.")
    return m


def update_member(
    session: Session, ctx: RequestContext, image_id: str, member: str, status: Any
) -> ImageMember:
    m = get_member(session, ctx, image_id, member)
    if not check(ctx, "image:modify_member", {"project_id": member}) or (member != ctx.project_id):
        raise Forbidden("Only the member project itself may accept or reject a shared image.")
    if status not in MEMBER_STATUSES:
        raise BadRequest(f"'status' must be one of {', '.join(MEMBER_STATUSES)}.")
    m.status = status
    m.updated_at = utcnow()
    return m


def delete_member(session: Session, ctx: RequestContext, image_id: str, member: str) -> None:
    image = get_visible(session, ctx, image_id, lock=True)
    enforce_owner(ctx, "image:delete_member", image)
    m = session.get(ImageMember, (image.id, member))
    if m is None:
        raise NotFound(f"Project {member} is not a member of image {image_id}.")
    session.delete(m)
