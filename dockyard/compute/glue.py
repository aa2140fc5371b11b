"""The small interfaces compute uses from the image and network services (no HTTP).

Kept in one place so the rest of compute reads in its own terms.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy.orm import Session

from dockyard.api.context import RequestContext
from dockyard.api.errors import ApiError, BadRequest

# ---- images -------------------------------------------------------------------------------


def boot_image(session: Session, ctx: RequestContext, image_ref: str):
    """The image to boot, or 400 as Nova answers for a bad imageRef."""
    from dockyard.image.boot import boot_image as _boot

    ref = str(image_ref).rstrip("/").rsplit("/", 1)[-1]
    try:
        return _boot(session, ctx, ref)
    except ApiError as exc:
        if exc.status == 404:
            raise BadRequest(f"Image {image_ref} could not be found.") from exc
        raise BadRequest(exc.message) from exc


def image_to_payload(image) -> dict:
    d = dataclasses.asdict(image)
    d["blob_path"] = str(image.blob_path) if image.blob_path else None
    return d


def image_from_payload(d: dict):
    from dockyard.image.boot import BootImage

    d = dict(d)
    d["blob_path"] = Path(d["blob_path"]) if d.get("blob_path") else None
    return BootImage(**d)


def ensure_image(runtime, client, image) -> str:
    from dockyard.docker import images as dimages

    ensure = dimages.ensure_image
    delivery = getattr(runtime, "image_delivery", None)
    if delivery is not None and hasattr(delivery, "ensure_image"):
        return delivery.ensure_image(client, image)
    return ensure(client, image)


def create_snapshot_image(session: Session, ctx, settings, name: str, properties: dict) -> str:
    """A queued image for a snapshot, in the caller's transaction; its id."""
    from dockyard.image.boot import create_snapshot

    return create_snapshot(session, ctx, settings, name, properties)


def upload_snapshot(runtime, ctx, image_id: str, chunks, claim_prefix: str) -> None:
    from dockyard.image.boot import upload_snapshot as _upload

    _upload(runtime, ctx, image_id, chunks, claim_prefix)


def snapshot_status(runtime, image_id: str) -> str | None:
    from dockyard.image.boot import snapshot_status as _status

    return _status(runtime, image_id)


def discard_snapshot(runtime, image_id: str) -> bool:
    from dockyard.image.boot import discard_snapshot as _discard

    return _discard(runtime, image_id)


# ---- networks -----------------------------------------------------------------------------


def auto_network_id(session: Session, ctx: RequestContext) -> str | None:
    from dockyard.network.ports import auto_network_id as _auto

    return _auto(session, ctx)


def allocate_port(session: Session, ctx: RequestContext, **kw):
    from dockyard.network.ports import allocate_port as _alloc

    return _alloc(session, ctx, **kw)


def ports_for_device(session: Session, device_id: str) -> list:
    from dockyard.network.ports import ports_for_device as _ports

    return list(_ports(session, device_id))


def release_ports(session: Session, device_id: str) -> None:
    from dockyard.network.ports import release_ports as _release

    _release(session, device_id)


def ensure_network(client, binding) -> None:
    from dockyard.docker import networks

    if getattr(binding, "network_spec", None) is not None:
        networks.ensure_network(client, binding)


def endpoint_config(binding, aliases: list[str] | None = None) -> dict:
    from dockyard.docker import networks

    return networks.endpoint_config(binding, aliases)


def connect(client, container_id: str, binding, aliases: list[str] | None = None) -> None:
    from dockyard.docker import networks

    networks.connect(client, container_id, binding, aliases)


def security_group_names(session: Session, ctx: RequestContext, refs: list[str]) -> list[str]:
    """Names for what a create request named (OSC sends group ids in the `name` key), as
    Nova shows them; an unknown reference is kept as given (allocate_port judges it)."""
    try:
        from dockyard.network.secgroups import visible_group
    except ImportError:
        return list(refs)
    out = []
    for ref in refs:
        try:
            out.append(visible_group(session, ctx, ref).name)
        except ApiError:
            out.append(ref)
    return out


def firewall_changed(runtime) -> None:
    """Tell the network service that ports came or went (it re-syncs security groups)."""
    try:
        from dockyard.network import firewall
    except ImportError:
        return
    trigger = getattr(firewall, "request_sync", None) or getattr(firewall, "trigger_sync", None)
    if trigger is not None:
        trigger(runtime)


def device_addresses(session: Session, device_ids: list[str]) -> set[str]:
    from dockyard.network.ports import fixed_ips_of_devices

    return fixed_ips_of_devices(session, device_ids)


def addresses_of(bindings) -> dict:
    out: dict[str, list[dict]] = {}
    for b in bindings:
        version = 6 if ":" in (b.ip_address or "") else 4
        out.setdefault(b.network_name, []).append(
            {"addr": b.ip_address, "version": version, "type": "fixed", "mac": b.mac_address}
        )
    return out
