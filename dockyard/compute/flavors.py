"""Flavors: the defaults, lookups with access rules, and the snapshot a server keeps."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dockyard.api.context import RequestContext
from dockyard.api.errors import BadRequest, NotFound
from dockyard.compute.models import Flavor, FlavorAccess, Meta

# id, name, ram MB, vcpus, disk GB (the classic Nova defaults)
DEFAULTS = (
    ("1", "m1.tiny", 512, 1, 1),
    ("2", "m1.small", 2048, 1, 20),
    ("3", "m1.medium", 4096, 2, 40),
    ("4", "m1.large", 8192, 4, 80),
    ("5", "m1.xlarge", 16384, 8, 160),
)

# Extra specs only an admin can set (they all are: flavor extra specs are admin-only) that
# change how the container is made. See docs/compute.md.
HOST_PROFILE_SPEC = "dockyard:host_profile"
HOST_PROFILES = ("docker-host",)


def seed(session: Session) -> None:
    """Create the default flavors once per deployment (an admin may delete them later)."""
    if session.get(Meta, "flavors_seeded") is not None:
        return
    for fid, name, ram, vcpus, disk in DEFAULTS:
        if (
            session.get(Flavor, fid) is None
            and session.scalar(select(Flavor).where(Flavor.name == name)) is None
        ):
            session.add(Flavor(id=fid, name=name, ram=ram, vcpus=vcpus, disk=disk, extra_specs={}))
    session.add(Meta(key="flavors_seeded", value="1"))
    try:
        session.flush()
    except IntegrityError:  # another process seeded at the same moment
        session.rollback()


def visible(session: Session, ctx: RequestContext, flavor: Flavor) -> bool:
    if flavor.is_public or ctx.is_admin:
        return True
    return (
        session.scalar(
            select(FlavorAccess).where(
                FlavorAccess.flavor_id == flavor.id, FlavorAccess.project_id == ctx.project_id
            )
        )
        is not None
    )


def get(session: Session, ctx: RequestContext, flavor_id: str) -> Flavor:
    flavor = session.get(Flavor, flavor_id)
    if flavor is None or not visible(session, ctx, flavor):
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return flavor


def for_boot(session: Session, ctx: RequestContext, flavor_ref: str) -> Flavor:
    """The flavor a create/resize names (by id, its link, or its name), or 400 as Nova
    answers. Also the interface orchestration uses to check a template's flavor."""
    ref = str(flavor_ref).rstrip("/").rsplit("/", 1)[-1]
    flavor = session.get(Flavor, ref)
    if flavor is None:  # a name (what templates use); ids win, as in the clients' lookups
        flavor = session.scalar(select(Flavor).where(Flavor.name == str(flavor_ref)))
    if flavor is None or not visible(session, ctx, flavor):
        raise BadRequest(f"Flavor {flavor_ref} could not be found.")
    if flavor.disabled:
        raise BadRequest(f"Flavor {flavor_ref} is disabled and cannot be used.")
    return flavor


def snapshot(flavor: Flavor) -> dict:
    """What a server keeps of its flavor (the flavor may change or go away later)."""
    return {
        "id": flavor.id,
        "name": flavor.name,
        "ram": flavor.ram,
        "vcpus": flavor.vcpus,
        "disk": flavor.disk,
        "ephemeral": flavor.ephemeral,
        "swap": flavor.swap,
        "extra_specs": dict(flavor.extra_specs or {}),
    }


def validate_extra_specs(specs: dict) -> dict:
    if not isinstance(specs, dict):
        raise BadRequest("'extra_specs' must be an object of string keys and values.")
    out = {}
    for k, v in specs.items():
        if not isinstance(k, str) or not k or len(k) > 255:
            raise BadRequest(f"Invalid extra spec key {k!r}: 1 to 255 characters.")
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise BadRequest(f"Invalid value for extra spec {k}: must be a string.")
        v = str(v)
        if len(v) > 255:
            raise BadRequest(f"Invalid value for extra spec {k}: at most 255 characters.")
        if k == HOST_PROFILE_SPEC and v not in HOST_PROFILES:
            raise BadRequest(
                f"Invalid value {v!r} for {HOST_PROFILE_SPEC}: one of {', '.join(HOST_PROFILES)}."
            )
        out[k] = v
    return out
