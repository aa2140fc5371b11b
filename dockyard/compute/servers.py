"""Compute's Python interface for servers: create, find and delete, as the HTTP handlers and
orchestration's OS::Nova::Server use them. Callers own the session (one transaction: a refused
create writes nothing) and wake the runner afterwards with `kick(runtime)`."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dockyard.api.context import RequestContext
from dockyard.api.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound
from dockyard.api.policy import enforce
from dockyard.compute import flavors as flv
from dockyard.compute import glue, quotas, states
from dockyard.compute.microversion import MAX, Version
from dockyard.compute.models import KeyPair, Server, ServerGroup
from dockyard.db.base import utcnow
from dockyard.tasks import queue

NAME_RE = re.compile(r"^[^\x00-\x1f]{1,255}$")
CREATE = "compute.create"
DELETE = "compute.delete"
ACTION = "compute.action"


def register_runner(runtime, runner) -> None:
    runtime.wakers["compute"] = runner.kick


def kick(runtime) -> None:
    """Wake this process's compute runner now (it polls the database anyway)."""
    wake = getattr(runtime, "wakers", {}).get("compute")
    if wake is not None:
        wake()


@dataclass(frozen=True)
class ServerSpec:
    """What a create asks for, already in Python types (the API checked the JSON shapes)."""

    name: str
    flavor_ref: str
    image_ref: str
    # Nova's `networks`: "auto", "none", a list of {uuid, fixed_ip} / {port}, or None (not
    # given: before microversion 2.37 the project's network)
    networks: Any = "auto"
    key_name: str | None = None
    security_groups: list[str] | None = None
    metadata: dict = field(default_factory=dict)
    user_data: str | None = None
    min_count: int = 1
    max_count: int = 1
    group_id: str | None = None
    description: str | None = None
    availability_zone: str | None = None
    hostname: str | None = None
    access_ipv4: str = ""
    access_ipv6: str = ""
    tags: list[str] = field(default_factory=list)
    # the id to give the server (one server only): lets a caller that crashed mid-create
    # find what it made instead of making a second one
    server_id: str | None = None


@dataclass
class Created:
    servers: list[Server]
    reservation_id: str


def hostname_of(name: str) -> str:
    h = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return (h or "server")[:63].strip("-") or "server"


def checked_metadata(value: Any, limit: int) -> dict:
    if not isinstance(value, dict):
        raise BadRequest("Invalid input for field/attribute metadata: must be an object.")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 255:
            raise BadRequest("Metadata keys must be strings of 1 to 255 characters.")
        if not isinstance(v, str) or len(v) > 255:
            raise BadRequest(f"Metadata value for {k} must be a string of at most 255 characters.")
        out[k] = v
    if limit >= 0 and len(out) > limit:
        raise Forbidden(f"Quota exceeded for metadata_items: {len(out)} items, limit {limit}.")
    return out


def _need_project(ctx: RequestContext) -> str:
    if not ctx.project_id:
        raise Forbidden("The compute API needs a project-scoped token.")
    return ctx.project_id


def get(session: Session, ctx: RequestContext, server_id: str) -> Server:
    """The live server `server_id` of the caller's project (any project for admin), else 404."""
    _need_project(ctx)
    server = session.get(Server, server_id) if len(server_id) <= 36 else None
    if (
        server is None
        or server.deleted
        or (server.project_id != ctx.project_id and not ctx.is_admin)
    ):
        raise NotFound(f"Instance {server_id} could not be found.")
    return server


def requested_networks(
    session: Session, ctx: RequestContext, raw: Any, mv: Version = MAX
) -> list[dict]:
    """[{"network_id"|"port_id", "fixed_ip"}] from Nova's `networks`."""
    if raw == [] and mv < (2, 37):
        raw = None  # before 2.37 "no networks asked" means the project's network(s)
    explicit = raw is not None
    if raw is None:
        if mv >= (2, 37):
            raise BadRequest(
                "Invalid input for field/attribute networks: 'networks' is required "
                "since microversion 2.37 ('auto', 'none' or a list)."
            )
        raw = "auto"
    if isinstance(raw, str):
        if raw == "none":
            return []
        if raw != "auto":
            raise BadRequest("Invalid input for field/attribute networks: 'auto' or 'none'.")
        try:
            net = glue.auto_network_id(session, ctx)
        except ApiError:
            if mv >= (2, 37) or explicit:
                raise
            return []  # before 2.37 a server without networks simply has none
        return [{"network_id": net}]
    if not isinstance(raw, list):
        raise BadRequest("Invalid input for field/attribute networks: must be a list.")
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise BadRequest("Invalid input for field/attribute networks: list of objects.")
        if item.get("port"):
            out.append({"port_id": str(item["port"])})
        elif item.get("uuid"):
            entry = {"network_id": str(item["uuid"])}
            if item.get("fixed_ip"):
                entry["fixed_ip"] = str(item["fixed_ip"])
            out.append(entry)
        else:
            raise BadRequest("Each item of 'networks' needs 'uuid' or 'port'.")
    return out


def _allocate(session, ctx, server_id, nets: list[dict], groups: list[str] | None):
    bindings = []
    for req in nets:
        try:
            bindings.append(
                glue.allocate_port(
                    session,
                    ctx,
                    device_id=server_id,
                    network_id=req.get("network_id"),
                    port_id=req.get("port_id"),
                    fixed_ip=req.get("fixed_ip"),
                    security_groups=groups,
                )
            )
        except ApiError as exc:
            if exc.status == 404:
                raise BadRequest(exc.message) from exc
            raise
    return bindings


def create(
    session: Session, settings, ctx: RequestContext, spec: ServerSpec, mv: Version = MAX
) -> Created:
    """Rows, ports and one durable create operation per server, within the quota (the first
    write of the transaction locks the project's quota, so concurrent creates never exceed
    it). Raises the error Nova gives for a bad flavor, image, key, group or network."""
    enforce(ctx, "compute:servers:create")
    project_id = _need_project(ctx)
    if not NAME_RE.match(spec.name or "") or not spec.name.strip():
        raise BadRequest(
            "Invalid input for field/attribute name: a string of 1 to 255 printable "
            "characters, not only spaces."
        )
    if spec.user_data is not None:
        if len(spec.user_data) > 65535:
            raise BadRequest("user_data must be base64 text of at most 65535 bytes.")
        try:
            base64.b64decode(spec.user_data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("Invalid input for field/attribute user_data: not base64.") from exc
    if spec.max_count < spec.min_count:
        raise BadRequest("min_count must be <= max_count.")
    if spec.server_id and spec.max_count != 1:
        raise BadRequest("A server id can only be given for a single server.")
    if spec.availability_zone:
        zone, _, forced = spec.availability_zone.partition(":")
        if zone not in ("nova", ""):
            raise BadRequest(f"The requested availability zone is not available: {zone}.")
        if forced:
            enforce(ctx, "compute:servers:create:forced_host")
    limits = quotas.limits_for(session, settings, project_id)
    meta = checked_metadata(spec.metadata or {}, limits.get("metadata_items", -1))
    flavor = flv.for_boot(session, ctx, spec.flavor_ref)
    image = glue.boot_image(session, ctx, spec.image_ref)
    if image.min_ram and flavor.ram < image.min_ram:
        raise BadRequest("Flavor's memory is too small for requested image.")
    if image.min_disk and flavor.disk and flavor.disk < image.min_disk:
        raise BadRequest("Flavor's disk is too small for requested image.")
    key_data = None
    if spec.key_name:
        kp = session.scalar(
            select(KeyPair).where(KeyPair.user_id == ctx.user_id, KeyPair.name == spec.key_name)
        )
        if kp is None:
            raise BadRequest(f"Invalid key_name provided: {spec.key_name}.")
        key_data = kp.public_key
    group = None
    if spec.group_id:
        group = session.get(ServerGroup, str(spec.group_id))
        if group is None or (group.project_id != project_id and not ctx.is_admin):
            raise BadRequest(f"Invalid server group {spec.group_id}: not found.")
    nets = requested_networks(session, ctx, spec.networks, mv)
    if any("port_id" in n for n in nets) and spec.max_count > 1:
        raise BadRequest("Unable to launch multiple instances with a single port.")
    quotas.lock(session, f"quota:{project_id}")
    used = quotas.usage(session, project_id)
    per = {"instances": 1, "cores": flavor.vcpus, "ram": flavor.ram}
    fits = quotas.headroom(limits, used, per)
    if group is not None:
        members = session.scalar(
            select(func.count(Server.id)).where(
                Server.server_group_id == group.id, Server.deleted.is_(False)
            )
        )
        sgm = limits.get("server_group_members", -1)
        if sgm >= 0:
            fits = min(fits, max(sgm - int(members or 0), 0))
    count = min(spec.max_count, fits)
    if count < spec.min_count:
        delta = {k: v * spec.min_count for k, v in per.items()}
        found = quotas.overs(limits, used, delta)
        raise Forbidden(
            quotas.exceeded_message(found) if found else "Quota exceeded for server_group_members."
        )
    sg_names = spec.security_groups
    shown_groups = (
        glue.security_group_names(session, ctx, sg_names)
        if sg_names
        else (["default"] if nets else [])
    )
    reservation = f"r-{secrets.token_hex(4)}"
    image_payload = glue.image_to_payload(image)
    made: list[Server] = []
    for i in range(count):
        sid = spec.server_id or str(uuid.uuid4())
        display = spec.name if count == 1 else f"{spec.name}-{i + 1}"
        server = Server(
            id=sid,
            number=secrets.randbelow(2**31),
            name=display,
            description=spec.description,
            project_id=project_id,
            user_id=ctx.user_id,
            image_id=image.id,
            flavor_id=flavor.id,
            flavor=flv.snapshot(flavor),
            vm_state=states.BUILDING,
            task_state="scheduling",
            power_state=states.NOSTATE,
            key_name=spec.key_name or None,
            key_data=key_data,
            meta=meta,
            user_data=spec.user_data,
            security_groups=shown_groups,
            requested_networks=nets,
            availability_zone=spec.availability_zone or "nova",
            reservation_id=reservation,
            launch_index=i,
            hostname=hostname_of(spec.hostname or display),
            server_group_id=group.id if group else None,
            access_ipv4=spec.access_ipv4,
            access_ipv6=spec.access_ipv6,
            tags=list(spec.tags),
        )
        session.add(server)
        session.flush()
        bindings = _allocate(session, ctx, sid, nets, sg_names)
        server.port_ids = [b.port_id for b in bindings]
        server.addresses = glue.addresses_of(bindings)
        queue.enqueue(session, CREATE, sid, {"image": image_payload}, max_attempts=4)
        made.append(server)
    return Created(made, reservation)


def start_delete(
    session: Session, ctx: RequestContext, server_id: str, force: bool = False
) -> Server:
    """Mark the server deleting and queue its delete (once: a second call changes nothing)."""
    enforce(ctx, "compute:servers:delete")
    server = get(session, ctx, server_id)
    if server.locked and not ctx.is_admin:
        raise Conflict(f"Instance {server.id} is locked; unlock it before deleting it.")
    if server.task_state == "deleting":
        return server
    states.check("delete", server.vm_state, server.task_state)
    server.task_state = "deleting"
    server.updated_at = utcnow()
    queue.enqueue(session, DELETE, server.id, {"force": force}, max_attempts=6)
    return server


def find_live(session: Session, server_id: str) -> Server | None:
    """The server row if it exists and is not deleted (no project check: for owners that
    keep the id, like orchestration's resources)."""
    server = session.get(Server, server_id)
    return None if server is None or server.deleted else server


def project_addresses(session: Session, project_id: str) -> set[str]:
    """The fixed IPs the project's ACTIVE servers hold now (their ports' live bindings, not
    the addresses recorded at boot): what `docker_endpoint` may target."""
    ids = list(
        session.scalars(
            select(Server.id).where(
                Server.project_id == project_id,
                Server.deleted.is_(False),
                Server.vm_state == states.ACTIVE,
            )
        )
    )
    return glue.device_addresses(session, ids)


def enqueue_action(
    session: Session,
    ctx: RequestContext,
    server_id: str,
    action: str,
    payload: dict,
    prepare: Callable[[Session, Server], None] | None = None,
) -> Server:
    """Check the action against the server's state, set its task_state and queue it."""
    server = get(session, ctx, server_id)
    if server.locked and not ctx.is_admin:
        raise Conflict(f"Instance {server.id} is locked; unlock it to {action}.")
    task = states.check(action, server.vm_state, server.task_state)
    if action == "reboot" and payload.get("type") == "HARD":
        task = "rebooting_hard"
    if prepare is not None:
        prepare(session, server)
    server.task_state = task
    server.updated_at = utcnow()
    queue.enqueue(session, ACTION, server.id, payload, max_attempts=3)
    return server


def start_resize(
    session: Session, settings, ctx: RequestContext, server_id: str, flavor_ref: str
) -> Server:
    """Queue a resize to another flavor (applied live); the server then waits in RESIZED
    (VERIFY_RESIZE) for confirm_resize or a revert. Quota is checked for the growth only."""
    payload: dict = {"action": "resize"}

    def prepare(s: Session, server: Server) -> None:
        new = flv.for_boot(s, ctx, flavor_ref)
        old = dict(server.flavor or {})
        if new.id == server.flavor_id:
            raise BadRequest("When resizing, instances must change flavor!")
        delta = {
            "cores": new.vcpus - int(old.get("vcpus", 0)),
            "ram": new.ram - int(old.get("ram", 0)),
        }
        if delta["cores"] > 0 or delta["ram"] > 0:
            quotas.enforce(s, settings, server.project_id, delta)
        server.old_flavor = old
        server.flavor = flv.snapshot(new)
        server.flavor_id = new.id
        payload["flavor"] = server.flavor

    return enqueue_action(session, ctx, server_id, "resize", payload, prepare)


def confirm_resize(session: Session, ctx: RequestContext, server_id: str) -> Server:
    server = get(session, ctx, server_id)
    if server.locked and not ctx.is_admin:
        raise Conflict(f"Instance {server.id} is locked.")
    states.check("confirmResize", server.vm_state, server.task_state)
    server.vm_state = states.ACTIVE
    server.old_flavor = None
    server.updated_at = utcnow()
    return server


def start_rebuild(
    session: Session,
    settings,
    ctx: RequestContext,
    server_id: str,
    image_ref: str,
    changes: dict | None = None,
) -> Server:
    """Queue a rebuild from `image_ref` (same id, same fixed IPs). `changes` may set name,
    metadata, description, key_name (None removes the key) and user_data on the way."""
    changes = changes or {}
    payload: dict = {"action": "rebuild"}

    def prepare(s: Session, server: Server) -> None:
        image = glue.boot_image(s, ctx, image_ref)
        flavor_ram = int((server.flavor or {}).get("ram", 0))
        if image.min_ram and flavor_ram < image.min_ram:
            raise BadRequest("Flavor's memory is too small for requested image.")
        if "name" in changes:
            server.name = changes["name"]
        if "metadata" in changes:
            limits = quotas.limits_for(s, settings, server.project_id)
            server.meta = checked_metadata(changes["metadata"], limits.get("metadata_items", -1))
        if "description" in changes:
            server.description = changes["description"]
        if "key_name" in changes:
            if changes["key_name"] is None:
                server.key_name, server.key_data = None, None
            else:
                kp = s.scalar(
                    select(KeyPair).where(
                        KeyPair.user_id == ctx.user_id, KeyPair.name == changes["key_name"]
                    )
                )
                if kp is None:
                    raise BadRequest(f"Invalid key_name provided: {changes['key_name']}.")
                server.key_name, server.key_data = kp.name, kp.public_key
        if "user_data" in changes:
            server.user_data = changes["user_data"]
        server.image_id = image.id
        payload["image"] = glue.image_to_payload(image)
        payload["keep_stopped"] = server.vm_state == states.STOPPED

    return enqueue_action(session, ctx, server_id, "rebuild", payload, prepare)
