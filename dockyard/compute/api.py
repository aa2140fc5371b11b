"""Compute API v2.1 (Nova), mounted under /compute/v2.1; see docs/compute.md."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import uuid
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import Body, Depends, FastAPI, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.api.context import RequestContext, request_context
from dockyard.api.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    install_error_handlers,
    nova_error,
)
from dockyard.api.policy import enforce
from dockyard.api.service import ServiceApp
from dockyard.compute import flavors as flv
from dockyard.compute import glue, groups, hosts, keypairs, quotas, servers, states, views
from dockyard.compute.driver import Compute, requester_payload
from dockyard.compute.microversion import MAX, MIN, Version, negotiate, response_headers
from dockyard.compute.models import (
    Flavor,
    FlavorAccess,
    Host,
    KeyPair,
    QuotaLimit,
    Server,
    ServerGroup,
)
from dockyard.compute.reconciler import Reconciler
from dockyard.compute.servers import ACTION
from dockyard.db.base import utcnow
from dockyard.docker import containers
from dockyard.identity.catalog import ServiceEntry
from dockyard.runtime import Runtime
from dockyard.tasks import queue

PREFIX = "/compute/v2.1"
Ctx = Annotated[RequestContext, Depends(request_context)]
JsonBody = Annotated[Any, Body()]

UNSUPPORTED_ACTIONS = {
    "os-getVNCConsole": "VNC consoles",
    "os-getSPICEConsole": "SPICE consoles",
    "os-getRDPConsole": "RDP consoles",
    "os-getSerialConsole": "serial consoles",
    "os-getMKSConsole": "MKS consoles",
    "os-migrateLive": "live migration",
    "migrate": "cold migration",
    "evacuate": "evacuation",
    "rescue": "rescue mode",
    "unrescue": "rescue mode",
    "shelve": "shelving",
    "shelveOffload": "shelving",
    "unshelve": "shelving",
    "changePassword": "setting the admin password",
    "trigger_crash_dump": "crash dumps",
    "injectNetworkInfo": "network info injection",
    "resetNetwork": "network reset",
    "addFixedIp": "nova-network fixed IPs",
    "removeFixedIp": "nova-network fixed IPs",
    "addFloatingIp": "nova floating IP actions (use openstack floating ip)",
    "removeFloatingIp": "nova floating IP actions (use openstack floating ip)",
    "createBackup": "scheduled backups (use createImage)",
    "restore": "soft delete (servers are deleted at once)",
    "addSecurityGroup": "changing security groups of a server (use openstack port set)",
    "removeSecurityGroup": "changing security groups of a server (use openstack port set)",
}
SIMPLE_ACTIONS = ("os-stop", "os-start", "pause", "unpause", "suspend", "resume")
MAX_LIST = 1000
# what the list filters read besides the body's columns
LIST_FILTER_COLUMNS = ("name", "vm_state", "task_state", "addresses", "locked")
NAME_RE = re.compile(r"^[^\x00-\x1f]{1,255}$")


def _version_doc(base: str) -> dict:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": str(MAX),
        "min_version": str(MIN),
        "updated": "2013-07-23T11:33:21Z",
        "links": [
            {"rel": "self", "href": base + "/"},
            {
                "rel": "describedby",
                "type": "text/html",
                "href": "https://docs.openstack.org/",
            },
        ],
        "media-types": [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ],
    }


def _versions_list(base_url: str) -> dict:
    v21 = _version_doc(base_url + PREFIX)
    v20 = {
        **v21,
        "id": "v2.0",
        "status": "SUPPORTED",
        "version": "",
        "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
        "links": [{"rel": "self", "href": base_url + "/compute/v2/"}],
    }
    return {"versions": [v20, v21]}


class _Microversions:
    """Negotiates the microversion of each request and echoes it on the response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers

        try:
            version = negotiate(Headers(scope=scope))
        except ApiError as err:
            await nova_error(err)(scope, receive, send)
            return
        state = dict(scope.get("state") or {})
        state["microversion"] = version
        scope = {**scope, "state": state}
        extra = [(k.lower().encode(), v.encode()) for k, v in response_headers(version).items()]

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, send_with_version)


def microversion(request: Request) -> Version:
    return request.scope.get("state", {}).get("microversion", MIN)


Mv = Annotated[Version, Depends(microversion)]


def _need_project(ctx: RequestContext) -> str:
    if not ctx.project_id:
        raise Forbidden("The compute API needs a project-scoped token.")
    return ctx.project_id


def _obj(body: Any, key: str) -> dict:
    if not isinstance(body, dict) or key not in body:
        raise BadRequest(f"Invalid input for field/attribute {key}: the body needs '{key}'.")
    value = body[key]
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {key}: must be an object.")
    return value


def _int(value: Any, name: str, minimum: int = 0, maximum: int = 2**31 - 1) -> int:
    try:
        if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
            raise ValueError
        n = int(value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"Invalid input for field/attribute {name}: must be an integer.") from exc
    if not minimum <= n <= maximum:
        raise BadRequest(
            f"Invalid input for field/attribute {name}: must be between {minimum} and {maximum}."
        )
    return n


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    raise BadRequest(f"Invalid input for field/attribute {name}: must be a boolean.")


def _float(value: Any, name: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"Invalid input for field/attribute {name}: must be a number.") from exc
    if not 0 < out < 3.4e38:
        raise BadRequest(f"Invalid input for field/attribute {name}: must be positive.")
    return out


def _name(value: Any, what: str = "name") -> str:
    if not isinstance(value, str) or not NAME_RE.match(value) or not value.strip():
        raise BadRequest(
            f"Invalid input for field/attribute {what}: a string of 1 to 255 printable "
            "characters, not only spaces."
        )
    return value


def _parse_time(value: str, name: str) -> datetime:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"Invalid filter {name}: {value!r} is not an ISO 8601 time.") from exc
    if dt.tzinfo is None:
        from datetime import UTC

        dt = dt.replace(tzinfo=UTC)
    return dt


def build(runtime: Runtime) -> ServiceApp:
    settings = runtime.settings
    base = settings.base_url + PREFIX
    links = views.Links(base)
    compute = Compute(runtime)
    servers.register_runner(runtime, compute.runner)
    reconciler = Reconciler(compute)
    db = runtime.db
    with db.session() as s:
        flv.seed(s)
    with db.session() as s:
        hosts.ensure_local(s, settings)

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app, nova_error)

    # ---- lookups ------------------------------------------------------------------------

    def get_server(s: Session, ctx: RequestContext, server_id: str, lock: bool = False) -> Server:
        return servers.get(s, ctx, server_id)

    def host_up_map(s: Session) -> dict[str, bool]:
        return {h.name: bool(h.up and h.enabled) for h in s.scalars(select(Host))}

    def detail(s: Session, server: Server, mv: Version, ctx: RequestContext, groups=False):
        ups = host_up_map(s)
        show_groups = None
        if groups:
            show_groups = [server.server_group_id] if server.server_group_id else []
        return views.server_detail(
            server,
            mv,
            ctx,
            links,
            host_up=ups.get(server.host or "", True),
            show_groups=show_groups,
        )

    # ---- versions -----------------------------------------------------------------------

    @app.get("/")
    def version_v21() -> dict:
        return {"version": _version_doc(base)}

    # ---- flavors ------------------------------------------------------------------------

    def list_flavors(
        s: Session, ctx: RequestContext, request: Request, mv: Version
    ) -> tuple[list[Flavor], list[dict]]:
        q = request.query_params
        rows = list(s.scalars(select(Flavor)))
        is_public = (q.get("is_public") or "").lower()
        out = []
        for f in rows:
            if not flv.visible(s, ctx, f):
                continue
            if is_public in ("true", "1", "yes") and not f.is_public:
                continue
            if is_public in ("false", "0", "no") and f.is_public:
                continue
            if "minRam" in q and f.ram < _int(q["minRam"], "minRam"):
                continue
            if "minDisk" in q and f.disk < _int(q["minDisk"], "minDisk"):
                continue
            out.append(f)
        key = q.get("sort_key", "flavorid")
        attr = {
            "flavorid": "id",
            "id": "id",
            "name": "name",
            "memory_mb": "ram",
            "ram": "ram",
            "vcpus": "vcpus",
            "root_gb": "disk",
            "disk": "disk",
        }.get(key, "id")
        rev = q.get("sort_dir", "asc") == "desc"

        def sort_key(f: Flavor):
            v = getattr(f, attr)
            if attr == "id":
                return (0, int(v), "") if str(v).isdigit() else (1, 0, str(v))
            return v

        out.sort(key=sort_key, reverse=rev)
        out, link = paginate(out, q, "flavors", lambda f: f.id, request)
        return out, link

    def paginate(items: list, q, collection: str, ident, request: Request):
        marker = q.get("marker")
        if marker:
            ids = [ident(x) for x in items]
            if marker not in ids:
                raise BadRequest(f"marker [{marker}] not found")
            items = items[ids.index(marker) + 1 :]
        limit = _int(q["limit"], "limit", 0) if "limit" in q else None
        max_limit = MAX_LIST if limit is None else min(limit, MAX_LIST)
        more = len(items) > max_limit
        items = items[:max_limit]
        link: list[dict] = []
        if items and (more or (limit is not None and len(items) == limit and limit > 0)):
            params = dict(q)
            params["marker"] = ident(items[-1])
            params["limit"] = str(max_limit)
            from urllib.parse import urlencode

            path = request.url.path.split(PREFIX, 1)[-1]
            link = [{"rel": "next", "href": f"{base}{path}?{urlencode(params)}"}]
        return items, link

    def flavors_body(request: Request, ctx: RequestContext, mv: Version, view) -> dict:
        enforce(ctx, "compute:flavors:read")
        with db.session() as s:
            items, link = list_flavors(s, ctx, request, mv)
            body: dict = {"flavors": [view(f, mv, links) for f in items]}
        if link:
            body["flavors_links"] = link
        return body

    @app.get("/flavors")
    def flavors_index(request: Request, ctx: Ctx, mv: Mv) -> dict:
        return flavors_body(request, ctx, mv, views.flavor_summary)

    @app.get("/flavors/detail")
    def flavors_detail(request: Request, ctx: Ctx, mv: Mv) -> dict:
        return flavors_body(request, ctx, mv, views.flavor_detail)

    @app.get("/flavors/{flavor_id}")
    def flavor_show(flavor_id: str, ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:flavors:read")
        with db.session() as s:
            return {"flavor": views.flavor_detail(flv.get(s, ctx, flavor_id), mv, links)}

    @app.post("/flavors")
    def flavor_create(body: JsonBody, ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:flavors:manage")
        f = _obj(body, "flavor")
        name = _name(f.get("name"))
        fid = f.get("id")
        if fid in (None, "", "auto"):
            fid = str(uuid.uuid4())
        fid = str(fid)
        if not re.match(r"^[\w\.\- ]{1,255}$", fid):
            raise BadRequest("Invalid input for field/attribute id: letters, digits, '.-_ '.")
        desc = f.get("description")
        if desc is not None and mv < (2, 55):
            raise BadRequest("Additional properties are not allowed ('description' was unexpected)")
        flavor = Flavor(
            id=fid,
            name=name,
            ram=_int(f.get("ram"), "ram", 1),
            vcpus=_int(f.get("vcpus"), "vcpus", 1),
            disk=_int(f.get("disk", 0), "disk", 0),
            ephemeral=_int(f.get("OS-FLV-EXT-DATA:ephemeral", 0), "ephemeral", 0),
            swap=_int(f.get("swap", 0) or 0, "swap", 0),
            rxtx_factor=_float(f.get("rxtx_factor", 1.0), "rxtx_factor"),
            is_public=_bool(f.get("os-flavor-access:is_public", True), "is_public"),
            description=desc,
            extra_specs={},
        )
        with db.session() as s:
            if s.get(Flavor, fid) is not None:
                raise Conflict(f"Flavor with ID {fid} already exists.")
            if s.scalar(select(Flavor).where(Flavor.name == name)) is not None:
                raise Conflict(f"Flavor with name {name} already exists.")
            s.add(flavor)
            s.flush()
            return {"flavor": views.flavor_detail(flavor, mv, links)}

    @app.put("/flavors/{flavor_id}")
    def flavor_update(flavor_id: str, body: JsonBody, ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:flavors:manage")
        if mv < (2, 55):
            raise NotFound("Updating a flavor needs microversion 2.55 or later.")
        f = _obj(body, "flavor")
        with db.session() as s:
            flavor = flv.get(s, ctx, flavor_id)
            flavor.description = f.get("description")
            return {"flavor": views.flavor_detail(flavor, mv, links)}

    @app.delete("/flavors/{flavor_id}", status_code=202)
    def flavor_delete(flavor_id: str, ctx: Ctx) -> Response:
        enforce(ctx, "compute:flavors:manage")
        with db.session() as s:
            s.delete(flv.get(s, ctx, flavor_id))
        return Response(status_code=202)

    @app.get("/flavors/{flavor_id}/os-extra_specs")
    def extra_specs_index(flavor_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "compute:flavors:read")
        with db.session() as s:
            return {"extra_specs": dict(flv.get(s, ctx, flavor_id).extra_specs or {})}

    @app.post("/flavors/{flavor_id}/os-extra_specs")
    def extra_specs_create(flavor_id: str, body: JsonBody, ctx: Ctx) -> dict:
        enforce(ctx, "compute:flavors:manage")
        specs = flv.validate_extra_specs(_obj(body, "extra_specs"))
        with db.session() as s:
            flavor = flv.get(s, ctx, flavor_id)
            flavor.extra_specs = {**(flavor.extra_specs or {}), **specs}
            return {"extra_specs": dict(flavor.extra_specs)}

    @app.get("/flavors/{flavor_id}/os-extra_specs/{key}")
    def extra_spec_show(flavor_id: str, key: str, ctx: Ctx) -> dict:
        enforce(ctx, "compute:flavors:read")
        with db.session() as s:
            specs = flv.get(s, ctx, flavor_id).extra_specs or {}
            if key not in specs:
                raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
            return {key: specs[key]}

    @app.put("/flavors/{flavor_id}/os-extra_specs/{key}")
    def extra_spec_update(flavor_id: str, key: str, body: JsonBody, ctx: Ctx) -> dict:
        enforce(ctx, "compute:flavors:manage")
        if not isinstance(body, dict) or len(body) != 1 or key not in body:
            raise BadRequest("Request body and URI mismatch: the body must be {key: value}.")
        specs = flv.validate_extra_specs(body)
        with db.session() as s:
            flavor = flv.get(s, ctx, flavor_id)
            flavor.extra_specs = {**(flavor.extra_specs or {}), **specs}
            return specs

    @app.delete("/flavors/{flavor_id}/os-extra_specs/{key}")
    def extra_spec_delete(flavor_id: str, key: str, ctx: Ctx) -> Response:
        enforce(ctx, "compute:flavors:manage")
        with db.session() as s:
            flavor = flv.get(s, ctx, flavor_id)
            specs = dict(flavor.extra_specs or {})
            if key not in specs:
                raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
            del specs[key]
            flavor.extra_specs = specs
        return Response(status_code=200)

    @app.get("/flavors/{flavor_id}/os-flavor-access")
    def flavor_access_index(flavor_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "compute:flavors:manage")
        with db.session() as s:
            flavor = flv.get(s, ctx, flavor_id)
            if flavor.is_public:
                raise NotFound("Access list not available for public flavors.")
            return {"flavor_access": access_list(s, flavor_id)}

    def access_list(s: Session, flavor_id: str) -> list[dict]:
        rows = s.scalars(select(FlavorAccess).where(FlavorAccess.flavor_id == flavor_id))
        return [{"flavor_id": flavor_id, "tenant_id": r.project_id} for r in rows]

    @app.post("/flavors/{flavor_id}/action")
    def flavor_action(flavor_id: str, body: JsonBody, ctx: Ctx) -> dict:
        enforce(ctx, "compute:flavors:manage")
        with db.session() as s:
            flavor = flv.get(s, ctx, flavor_id)
            if isinstance(body, dict) and "addTenantAccess" in body:
                tenant = _obj(body, "addTenantAccess").get("tenant")
                if not tenant:
                    raise BadRequest("addTenantAccess needs 'tenant'.")
                if flavor.is_public:
                    raise Conflict("Can not add access to a public flavor.")
                exists = s.scalar(
                    select(FlavorAccess).where(
                        FlavorAccess.flavor_id == flavor_id, FlavorAccess.project_id == tenant
                    )
                )
                if exists is not None:
                    raise Conflict(f"Flavor access already exists for {flavor_id} / {tenant}.")
                s.add(FlavorAccess(flavor_id=flavor_id, project_id=tenant))
                s.flush()
            elif isinstance(body, dict) and "removeTenantAccess" in body:
                tenant = _obj(body, "removeTenantAccess").get("tenant")
                row = s.scalar(
                    select(FlavorAccess).where(
                        FlavorAccess.flavor_id == flavor_id, FlavorAccess.project_id == tenant
                    )
                )
                if row is None:
                    raise NotFound(f"Flavor access not found for {flavor_id} / {tenant}.")
                s.delete(row)
                s.flush()
            else:
                raise BadRequest("Use addTenantAccess or removeTenantAccess.")
            return {"flavor_access": access_list(s, flavor_id)}

    # ---- key pairs ----------------------------------------------------------------------

    def keypair_owner(ctx: RequestContext, user_id: str | None, mv: Version) -> str:
        if user_id and user_id != ctx.user_id:
            if mv < (2, 10) or not ctx.is_admin:
                raise Forbidden("Only admins may manage the key pairs of other users.")
            return user_id
        return ctx.user_id

    def get_keypair(s: Session, user_id: str, name: str) -> KeyPair:
        kp = s.scalar(select(KeyPair).where(KeyPair.user_id == user_id, KeyPair.name == name))
        if kp is None:
            raise NotFound(f"Keypair {name} not found for user {user_id}.")
        return kp

    @app.get("/os-keypairs")
    def keypairs_index(request: Request, ctx: Ctx, mv: Mv) -> dict:
        q = request.query_params
        user_id = keypair_owner(ctx, q.get("user_id"), mv)
        with db.session() as s:
            rows = list(
                s.scalars(select(KeyPair).where(KeyPair.user_id == user_id).order_by(KeyPair.name))
            )
            link: list = []
            if mv >= (2, 35):
                rows, link = paginate(rows, q, "os-keypairs", lambda k: k.name, request)
            body: dict = {"keypairs": [{"keypair": views.keypair_body(k, mv)} for k in rows]}
        if link:
            body["keypairs_links"] = link
        return body

    @app.post("/os-keypairs")
    def keypair_create(body: JsonBody, ctx: Ctx, mv: Mv) -> JSONResponse:
        k = _obj(body, "keypair")
        name = keypairs.validate_name(k.get("name"))
        key_type = k.get("type", "ssh") if mv >= (2, 2) else "ssh"
        if key_type not in ("ssh", "x509"):
            raise BadRequest("Invalid input for field/attribute type: 'ssh' or 'x509'.")
        user_id = keypair_owner(ctx, k.get("user_id"), mv)
        enforce(ctx, "compute:keypairs:manage", {"user_id": user_id})
        public_key = k.get("public_key")
        private_key = None
        if public_key is None:
            if mv >= (2, 92):
                raise BadRequest(
                    "Invalid input for field/attribute keypair: 'public_key' is a required "
                    "property (server-side key generation was removed in 2.92)."
                )
            private_key, public_key = keypairs.generate(key_type)
        with db.session() as s:
            kp = keypairs.create(s, settings, ctx, user_id, name, public_key, key_type)
            out = views.keypair_body(kp, mv)
            out["user_id"] = user_id
            if private_key is not None:
                out["private_key"] = private_key
        return JSONResponse({"keypair": out}, status_code=201 if mv >= (2, 2) else 200)

    @app.get("/os-keypairs/{name}")
    def keypair_show(name: str, request: Request, ctx: Ctx, mv: Mv) -> dict:
        user_id = keypair_owner(ctx, request.query_params.get("user_id"), mv)
        with db.session() as s:
            return {"keypair": views.keypair_body(get_keypair(s, user_id, name), mv, full=True)}

    @app.delete("/os-keypairs/{name}")
    def keypair_delete(name: str, request: Request, ctx: Ctx, mv: Mv) -> Response:
        user_id = keypair_owner(ctx, request.query_params.get("user_id"), mv)
        with db.session() as s:
            keypairs.delete(s, user_id, name)
        return Response(status_code=202 if mv < (2, 2) else 204)

    # ---- servers: create ----------------------------------------------------------------

    @app.post("/servers", status_code=202)
    def server_create(body: JsonBody, request: Request, ctx: Ctx, mv: Mv) -> JSONResponse:
        enforce(ctx, "compute:servers:create")
        _need_project(ctx)
        sv = _obj(body, "server")
        hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
        name = _name(sv.get("name"))
        if "flavorRef" not in sv:
            raise BadRequest("Invalid input for field/attribute server: 'flavorRef' is required.")
        image_ref = sv.get("imageRef")
        if not image_ref:
            for bdm in sv.get("block_device_mapping_v2") or []:
                if isinstance(bdm, dict) and bdm.get("source_type") == "image":
                    image_ref = bdm.get("uuid")
            if not image_ref:
                raise BadRequest(
                    "Invalid input for field/attribute imageRef: an image is required "
                    "(dockyard has no volumes to boot from)."
                )
        min_count = _int(sv.get("min_count", 1), "min_count", 1)
        max_count = _int(sv.get("max_count", min_count), "max_count", 1)
        user_data = sv.get("user_data")
        if user_data is not None:
            if not isinstance(user_data, str) or len(user_data) > 65535:
                raise BadRequest("user_data must be base64 text of at most 65535 bytes.")
            try:
                base64.b64decode(user_data, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise BadRequest(
                    "Invalid input for field/attribute user_data: not base64."
                ) from exc
        description = sv.get("description")
        if description is not None and mv < (2, 19):
            raise BadRequest("Additional properties are not allowed ('description' was unexpected)")
        az = sv.get("availability_zone")
        sgroups_raw = sv.get("security_groups")
        sg_names: list[str] | None = None
        if sgroups_raw is not None:
            if not isinstance(sgroups_raw, list):
                raise BadRequest("security_groups must be a list of {'name': ...}.")
            sg_names = [str(g.get("name")) for g in sgroups_raw if isinstance(g, dict)]
        group_id = hints.get("group") if isinstance(hints, dict) else None
        tags = sv.get("tags") or []
        spec = servers.ServerSpec(
            name=name,
            flavor_ref=str(sv["flavorRef"]),
            image_ref=str(image_ref),
            networks=sv.get("networks"),
            key_name=sv.get("key_name") or None,
            security_groups=sg_names,
            metadata=sv.get("metadata") or {},
            user_data=user_data,
            min_count=min_count,
            max_count=max_count,
            group_id=str(group_id) if group_id else None,
            description=description,
            availability_zone=str(az) if az else None,
            hostname=sv.get("hostname"),
            access_ipv4=sv.get("accessIPv4") or "",
            access_ipv6=sv.get("accessIPv6") or "",
            tags=list(tags) if isinstance(tags, list) else [],
        )
        with db.session() as s:
            created = servers.create(s, settings, ctx, spec, mv)
            made, reservation = created.servers, created.reservation_id
            first = made[0]
            resp_body: dict
            if sv.get("return_reservation_id") or body.get("return_reservation_id"):
                resp_body = {"reservation_id": reservation}
            else:
                resp_body = {
                    "server": {
                        "id": first.id,
                        "links": links("servers", first.id),
                        "OS-DCF:diskConfig": "MANUAL",
                        "adminPass": secrets.token_urlsafe(9),
                    }
                }
                if first.security_groups:
                    resp_body["server"]["security_groups"] = [
                        {"name": n} for n in first.security_groups
                    ]
            location = f"{base}/servers/{first.id}"
        compute.runner.kick()
        return JSONResponse(resp_body, status_code=202, headers={"Location": location})

    # ---- servers: read ------------------------------------------------------------------

    def list_servers(
        request: Request, ctx: Ctx, mv: Version, fields: tuple[str, ...] = ("id", "name")
    ) -> tuple[list[Server], list]:
        """The visible servers the query asks for, as plain rows of the columns `fields` (plus
        what the filters read)."""
        enforce(ctx, "compute:servers:index")
        project_id = _need_project(ctx)
        q = request.query_params
        all_tenants = "all_tenants" in q and q.get("all_tenants", "").lower() not in (
            "0",
            "false",
            "no",
        )
        if all_tenants:
            enforce(ctx, "compute:servers:all_tenants")
        stmt = select(Server)
        changes_since = q.get("changes-since")
        if not changes_since:
            stmt = stmt.where(Server.deleted.is_(False))
        if not all_tenants:
            stmt = stmt.where(Server.project_id == project_id)
        elif q.get("project_id") or q.get("tenant_id"):
            stmt = stmt.where(Server.project_id == (q.get("project_id") or q.get("tenant_id")))
        if changes_since:
            stmt = stmt.where(Server.updated_at >= _parse_time(changes_since, "changes-since"))
        if q.get("changes-before") and mv >= (2, 66):
            stmt = stmt.where(
                Server.updated_at <= _parse_time(q["changes-before"], "changes-before")
            )
        if q.get("image"):
            stmt = stmt.where(Server.image_id == q["image"].rstrip("/").rsplit("/", 1)[-1])
        if q.get("flavor"):
            stmt = stmt.where(Server.flavor_id == q["flavor"].rstrip("/").rsplit("/", 1)[-1])
        if q.get("host") and ctx.is_admin:
            stmt = stmt.where(Server.host == q["host"])
        if q.get("reservation_id"):
            stmt = stmt.where(Server.reservation_id == q["reservation_id"])
        if q.get("availability_zone"):
            stmt = stmt.where(Server.availability_zone == q["availability_zone"])
        if q.get("key_name"):
            stmt = stmt.where(Server.key_name == q["key_name"])
        sort_keys = q.getlist("sort_key") or ["created_at"]
        sort_dirs = q.getlist("sort_dir") or ["desc"]
        columns = {
            "created_at": Server.created_at,
            "updated_at": Server.updated_at,
            "display_name": Server.name,
            "name": Server.name,
            "uuid": Server.id,
            "launched_at": Server.launched_at,
            "vm_state": Server.vm_state,
            "host": Server.host,
        }
        order = []
        for i, key in enumerate(sort_keys):
            col = columns.get(key)
            if col is None:
                raise BadRequest(f"Invalid sort_key {key}.")
            d = sort_dirs[i] if i < len(sort_dirs) else sort_dirs[-1]
            order.append(col.desc() if d == "desc" else col.asc())
        order.append(Server.id.desc())
        stmt = stmt.order_by(*order)
        # plain rows (not ORM objects) of the columns the body needs: the JSON columns no
        # body shows (requested_networks, port_ids, ...) are not even decoded
        wanted = dict.fromkeys((*fields, *LIST_FILTER_COLUMNS))
        table = Server.__table__.columns
        stmt = stmt.with_only_columns(*(table[c] for c in wanted))
        # a Core query on a plain connection: the ORM's per-row loading machinery costs more
        # than the query itself at 1000 rows
        with db.engine.connect() as conn:
            rows = list(conn.execute(stmt).all())
        name_re = None
        if q.get("name"):
            try:
                name_re = re.compile(q["name"])
            except re.error:
                name_re = re.compile(re.escape(q["name"]))
        ip_re = re.compile(re.escape(q["ip"]).replace(r"\.\*", ".*")) if q.get("ip") else None
        status_f = {x.upper() for x in q.getlist("status")}
        out = []
        for sv in rows:
            if name_re and not name_re.search(sv.name):
                continue
            if status_f and states.status(sv.vm_state, sv.task_state) not in status_f:
                continue
            if ip_re and not any(
                ip_re.match(e.get("addr", ""))
                for entries in (sv.addresses or {}).values()
                for e in entries
            ):
                continue
            if q.get("locked") and mv >= (2, 73):
                want = q["locked"].lower() in ("1", "true", "yes")
                if bool(sv.locked) != want:
                    continue
            out.append(sv)
        return paginate(out, q, "servers", lambda x: x.id, request)

    @app.get("/servers")
    def servers_index(request: Request, ctx: Ctx, mv: Mv) -> dict:
        rows, link = list_servers(request, ctx, mv)
        body: dict = {"servers": [views.server_summary(x, links) for x in rows]}
        if link:
            body["servers_links"] = link
        return body

    @app.get("/servers/detail")
    def servers_detail(request: Request, ctx: Ctx, mv: Mv) -> Response:
        rows, link = list_servers(request, ctx, mv, views.DETAIL_COLUMNS)
        with db.session() as s:
            ups = host_up_map(s)
        view = views.ServerView(mv, ctx, links)
        body: dict = {
            "servers": [view.detail(x, host_up=ups.get(x.host or "", True)) for x in rows]
        }
        if link:
            body["servers_links"] = link
        # orjson: encoding 1000 server bodies with json costs more than building them
        return Response(orjson.dumps(body), media_type="application/json")

    @app.get("/servers/{server_id}")
    def server_show(server_id: str, ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:servers:show")
        with db.session() as s:
            server = get_server(s, ctx, server_id)
            return {"server": detail(s, server, mv, ctx, groups=True)}

    @app.put("/servers/{server_id}")
    def server_update(server_id: str, body: JsonBody, ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:servers:update")
        sv = _obj(body, "server")
        with db.session() as s:
            server = get_server(s, ctx, server_id)
            if "name" in sv:
                server.name = _name(sv["name"])
            if "description" in sv:
                if mv < (2, 19):
                    raise BadRequest("'description' needs microversion 2.19 or later.")
                server.description = sv["description"]
            if "accessIPv4" in sv:
                server.access_ipv4 = sv["accessIPv4"] or ""
            if "accessIPv6" in sv:
                server.access_ipv6 = sv["accessIPv6"] or ""
            if "hostname" in sv and mv >= (2, 90):
                server.hostname = servers.hostname_of(sv["hostname"])
            server.updated_at = utcnow()
            return {"server": detail(s, server, mv, ctx, groups=mv >= (2, 71))}

    def start_delete(server_id: str, ctx: RequestContext, force: bool = False) -> None:
        with db.session() as s:
            servers.start_delete(s, ctx, server_id, force)
        compute.runner.kick()

    @app.delete("/servers/{server_id}", status_code=204)
    def server_delete(server_id: str, ctx: Ctx) -> Response:
        start_delete(server_id, ctx)
        return Response(status_code=204)

    # ---- servers: metadata, ips, security groups -----------------------------------------

    @app.get("/servers/{server_id}/metadata")
    def metadata_index(server_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "compute:servers:show")
        with db.session() as s:
            return {"metadata": dict(get_server(s, ctx, server_id).meta or {})}

    def set_metadata(server_id: str, ctx: RequestContext, new: dict, replace: bool) -> dict:
        enforce(ctx, "compute:servers:update")
        with db.session() as s:
            server = get_server(s, ctx, server_id)
            limits = quotas.limits_for(s, settings, server.project_id)
            merged = dict(new) if replace else {**(server.meta or {}), **new}
            server.meta = servers.checked_metadata(merged, limits.get("metadata_items", -1))
            server.updated_at = utcnow()
            return dict(server.meta)

    @app.put("/servers/{server_id}/metadata")
    def metadata_replace(server_id: str, body: JsonBody, ctx: Ctx) -> dict:
        return {"metadata": set_metadata(server_id, ctx, _obj(body, "metadata"), True)}

    @app.post("/servers/{server_id}/metadata")
    def metadata_merge(server_id: str, body: JsonBody, ctx: Ctx) -> dict:
        return {"metadata": set_metadata(server_id, ctx, _obj(body, "metadata"), False)}

    @app.get("/servers/{server_id}/metadata/{key}")
    def metadata_show(server_id: str, key: str, ctx: Ctx) -> dict:
        enforce(ctx, "compute:servers:show")
        with db.session() as s:
            meta = get_server(s, ctx, server_id).meta or {}
            if key not in meta:
                raise NotFound("Metadata item was not found.")
            return {"meta": {key: meta[key]}}

    @app.put("/servers/{server_id}/metadata/{key}")
    def metadata_set(server_id: str, key: str, body: JsonBody, ctx: Ctx) -> dict:
        item = _obj(body, "meta")
        if list(item) != [key]:
            raise BadRequest("Request body and URI mismatch.")
        set_metadata(server_id, ctx, item, False)
        return {"meta": item}

    @app.delete("/servers/{server_id}/metadata/{key}", status_code=204)
    def metadata_delete(server_id: str, key: str, ctx: Ctx) -> Response:
        enforce(ctx, "compute:servers:update")
        with db.session() as s:
            server = get_server(s, ctx, server_id)
            meta = dict(server.meta or {})
            if key not in meta:
                raise NotFound("Metadata item was not found.")
            del meta[key]
            server.meta = meta
        return Response(status_code=204)

    @app.get("/servers/{server_id}/ips")
    def ips_index(server_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "compute:servers:show")
        with db.session() as s:
            addrs = views.addresses(get_server(s, ctx, server_id))
        return {
            "addresses": {
                n: [{"version": e["version"], "addr": e["addr"]} for e in v]
                for n, v in addrs.items()
            }
        }

    @app.get("/servers/{server_id}/ips/{network}")
    def ips_show(server_id: str, network: str, ctx: Ctx) -> dict:
        addrs = ips_index(server_id, ctx)["addresses"]
        if network not in addrs:
            raise NotFound(f"There are no addresses on network {network}.")
        return {network: addrs[network]}

    @app.get("/servers/{server_id}/os-security-groups")
    def server_secgroups(server_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "compute:servers:show")
        with db.session() as s:
            server = get_server(s, ctx, server_id)
            return {
                "security_groups": [
                    {
                        "id": n,
                        "name": n,
                        "description": "",
                        "tenant_id": server.project_id,
                        "rules": [],
                    }
                    for n in server.security_groups or []
                ]
            }

    @app.get("/servers/{server_id}/os-volume_attachments")
    def volume_attachments(server_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "compute:servers:show")
        with db.session() as s:
            get_server(s, ctx, server_id)
        return {"volumeAttachments": []}

    @app.post("/servers/{server_id}/os-volume_attachments")
    def volume_attach(server_id: str, ctx: Ctx) -> dict:
        raise BadRequest(
            "Volume attachments are not supported by dockyard's Docker driver: servers are "
            "containers and there is no block storage service."
        )

    @app.post("/servers/{server_id}/remote-consoles")
    def remote_console(server_id: str, ctx: Ctx) -> dict:
        raise BadRequest(
            "Remote consoles (VNC, SPICE, RDP, serial, MKS) are not supported by dockyard's "
            "Docker driver; use os-getConsoleOutput (openstack console log show)."
        )

    @app.get("/servers/{server_id}/os-instance-actions")
    def instance_actions(server_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "compute:servers:show")
        with db.session() as s:
            get_server(s, ctx, server_id)
        return {"instanceActions": []}

    # ---- servers: actions ---------------------------------------------------------------

    @app.post("/servers/{server_id}/action")
    def server_action(server_id: str, body: JsonBody, request: Request, ctx: Ctx, mv: Mv):
        if not isinstance(body, dict) or len(body) != 1:
            raise BadRequest("An action body is one object with exactly one action key.")
        action, args = next(iter(body.items()))
        enforce(ctx, "compute:servers:action")
        if action in UNSUPPORTED_ACTIONS:
            with db.session() as s:
                get_server(s, ctx, server_id)
            raise BadRequest(
                f"Action '{action}' is not supported: dockyard's Docker driver does not "
                f"support {UNSUPPORTED_ACTIONS[action]}."
            )
        if action == "os-getConsoleOutput":
            return console_output(server_id, args, ctx)
        if action == "createImage":
            return create_image(server_id, args, ctx, mv)
        if action in ("lock", "unlock"):
            return lock_action(server_id, action, args, ctx, mv)
        if action == "forceDelete":
            start_delete(server_id, ctx, force=True)
            return Response(status_code=202)
        if action == "os-resetState":
            return reset_state(server_id, args, ctx)
        if action == "confirmResize":
            return confirm_resize(server_id, ctx)
        if action in SIMPLE_ACTIONS or action in ("reboot", "revertResize"):
            payload: dict = {"action": action}
            if action == "reboot":
                kind = (args or {}).get("type") if isinstance(args, dict) else None
                if kind not in ("SOFT", "HARD"):
                    raise BadRequest("Invalid input for field/attribute type: 'SOFT' or 'HARD'.")
                payload["type"] = kind
            enqueue_action(server_id, ctx, action, payload)
            return Response(status_code=202)
        if action == "rebuild":
            return rebuild(server_id, args, ctx, mv)
        if action == "resize":
            return resize(server_id, args, ctx)
        raise BadRequest(f"There is no such action: {action}")

    def enqueue_action(
        server_id: str, ctx: RequestContext, action: str, payload: dict, prepare=None
    ) -> Server:
        with db.session() as s:
            server = servers.enqueue_action(s, ctx, server_id, action, payload, prepare)
        compute.runner.kick()
        return server

    def console_output(server_id: str, args: Any, ctx: RequestContext) -> dict:
        enforce(ctx, "compute:servers:console_output")
        length = None
        if isinstance(args, dict) and args.get("length") is not None:
            length = _int(args["length"], "length", -1)
            if length == -1:
                length = None
        with db.session() as s:
            server = get_server(s, ctx, server_id)
            host = server.host
            if server.vm_state == states.BUILDING or not host:
                raise Conflict(f"Instance {server_id} is not ready yet (still building).")
        try:
            text = containers.logs(compute.client(host), server_id, length)
        except containers.ContainerGone as exc:
            raise Conflict(f"Console output is not available: {exc}.") from exc
        except Exception as exc:  # noqa: BLE001 - the engine's trouble is not a 500 of ours
            raise Conflict(
                f"Console output is not available: compute host {host} did not answer ({exc})."
            ) from exc
        if length is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-length:]) if length else ""
        return {"output": text}

    def lock_action(server_id, action, args, ctx, mv) -> Response:
        with db.session() as s:
            server = get_server(s, ctx, server_id)
            if action == "lock":
                reason = None
                if isinstance(args, dict) and mv >= (2, 73):
                    reason = args.get("locked_reason")
                server.locked = True
                server.locked_reason = reason
                server.locked_by = "admin" if ctx.is_admin else "owner"
            else:
                if server.locked and server.locked_by == "admin" and not ctx.is_admin:
                    raise Forbidden("The server was locked by an admin; only an admin can unlock.")
                server.locked = False
                server.locked_reason = None
                server.locked_by = None
            server.updated_at = utcnow()
        return Response(status_code=202)

    def reset_state(server_id, args, ctx) -> Response:
        enforce(ctx, "compute:servers:reset_state")
        state = args.get("state") if isinstance(args, dict) else None
        if state not in ("active", "error"):
            raise BadRequest("Invalid input for field/attribute state: 'active' or 'error'.")
        with db.session() as s:
            server = get_server(s, ctx, server_id)
            server.vm_state = state
            server.task_state = None
            server.updated_at = utcnow()
        return Response(status_code=202)

    def confirm_resize(server_id, ctx) -> Response:
        with db.session() as s:
            servers.confirm_resize(s, ctx, server_id)
        reconciler.mark(server_id)
        return Response(status_code=204)

    def resize(server_id, args, ctx) -> Response:
        if not isinstance(args, dict) or "flavorRef" not in args:
            raise BadRequest("Invalid input for field/attribute resize: 'flavorRef' is required.")
        with db.session() as s:
            servers.start_resize(s, settings, ctx, server_id, args["flavorRef"])
        compute.runner.kick()
        return Response(status_code=202)

    def rebuild(server_id, args, ctx, mv) -> JSONResponse:
        if not isinstance(args, dict) or not args.get("imageRef"):
            raise BadRequest("Invalid input for field/attribute rebuild: 'imageRef' is required.")
        changes: dict = {}
        if "name" in args:
            changes["name"] = _name(args["name"])
        if "metadata" in args:
            changes["metadata"] = args["metadata"]
        if "description" in args and mv >= (2, 19):
            changes["description"] = args["description"]
        if "key_name" in args and mv >= (2, 54):
            changes["key_name"] = args["key_name"]
        if "user_data" in args and mv >= (2, 57):
            changes["user_data"] = args["user_data"]
        with db.session() as s:
            servers.start_rebuild(s, settings, ctx, server_id, args["imageRef"], changes)
        compute.runner.kick()
        with db.session() as s:
            server = get_server(s, ctx, server_id)
            out = detail(s, server, mv, ctx, groups=mv >= (2, 71))
        out["adminPass"] = secrets.token_urlsafe(9)
        return JSONResponse({"server": out}, status_code=202)

    def create_image(server_id, args, ctx, mv) -> Response:
        """createImage: a queued image and a durable snapshot operation, answered at once (the
        operation commits the container and saves it into the image; see driver._snapshot)."""
        enforce(ctx, "compute:servers:create_image")
        if not isinstance(args, dict):
            raise BadRequest("Invalid input for field/attribute createImage: must be an object.")
        name = _name(args.get("name"))
        props = args.get("metadata") or {}
        if not isinstance(props, dict):
            raise BadRequest("createImage metadata must be an object.")
        with db.session() as s:
            server = get_server(s, ctx, server_id)
            if server.locked and not ctx.is_admin:
                raise Conflict(f"Instance {server.id} is locked.")
            task = states.check("createImage", server.vm_state, server.task_state)
            if not server.host:
                raise Conflict(f"Cannot snapshot instance {server.id}: it has no container yet.")
            properties = {
                **{str(k): str(v) for k, v in props.items()},
                "image_type": "snapshot",
                "instance_uuid": server.id,
                "base_image_ref": server.image_id,
            }
            new_id = glue.create_snapshot_image(s, ctx, settings, name, properties)
            server.task_state = task
            server.updated_at = utcnow()
            payload = {
                "action": "createImage",
                "image_id": new_id,
                "requester": requester_payload(ctx),
            }
            queue.enqueue(s, ACTION, server.id, payload, max_attempts=3)
        compute.runner.kick()
        if mv >= (2, 45):
            return JSONResponse({"image_id": new_id}, status_code=202)
        image_url = f"{settings.base_url}/image/v2/images/{new_id}"
        return Response(status_code=202, headers={"Location": image_url})

    # ---- server groups ------------------------------------------------------------------

    group_members = groups.members
    get_group = groups.get

    @app.get("/os-server-groups")
    def groups_index(request: Request, ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:server_groups:read")
        project_id = _need_project(ctx)
        q = request.query_params
        with db.session() as s:
            stmt = select(ServerGroup).order_by(ServerGroup.created_at)
            if not (ctx.is_admin and q.get("all_projects", "").lower() in ("1", "true", "yes")):
                stmt = stmt.where(ServerGroup.project_id == project_id)
            rows = list(s.scalars(stmt))
            offset = _int(q.get("offset", 0), "offset", 0)
            rows = rows[offset:]
            if "limit" in q:
                rows = rows[: _int(q["limit"], "limit", 0)]
            return {
                "server_groups": [
                    views.server_group_body(g, group_members(s, g.id), mv) for g in rows
                ]
            }

    @app.post("/os-server-groups")
    def group_create(body: JsonBody, ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:server_groups:manage")
        _need_project(ctx)
        g = _obj(body, "server_group")
        name = _name(g.get("name"))
        rules: dict = {}
        if mv >= (2, 64):
            policy = g.get("policy")
            rules = g.get("rules") or {}
            if isinstance(rules, dict) and "max_server_per_host" in rules:
                rules["max_server_per_host"] = _int(
                    rules["max_server_per_host"], "max_server_per_host", 1
                )
        else:
            policies = g.get("policies")
            if not isinstance(policies, list) or len(policies) != 1:
                raise BadRequest("Invalid input for field/attribute policies: exactly one policy.")
            policy = policies[0]
        with db.session() as s:
            group = groups.create(s, settings, ctx, name, policy, rules)
            return {"server_group": views.server_group_body(group, [], mv)}

    @app.get("/os-server-groups/{gid}")
    def group_show(gid: str, ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:server_groups:read")
        with db.session() as s:
            g = get_group(s, ctx, gid)
            return {"server_group": views.server_group_body(g, group_members(s, g.id), mv)}

    @app.delete("/os-server-groups/{gid}", status_code=204)
    def group_delete(gid: str, ctx: Ctx) -> Response:
        enforce(ctx, "compute:server_groups:manage")
        with db.session() as s:
            groups.delete(s, ctx, gid)
        return Response(status_code=204)

    # ---- quotas and limits ---------------------------------------------------------------

    def quota_keys(mv: Version) -> dict[str, int]:
        extra: dict[str, int] = {}
        if mv < (2, 57):
            extra.update(quotas.LEGACY)
        if mv < (2, 36):
            extra.update(quotas.LEGACY_NETWORK)
        return extra

    def quota_target(ctx: RequestContext, project_id: str) -> None:
        _need_project(ctx)
        if project_id != ctx.project_id:
            enforce(ctx, "compute:quotas:update")
        enforce(ctx, "compute:quotas:show", {"project_id": project_id})

    @app.get("/os-quota-sets/{project_id}")
    def quota_show(project_id: str, ctx: Ctx, mv: Mv) -> dict:
        quota_target(ctx, project_id)
        with db.session() as s:
            limits = quotas.limits_for(s, settings, project_id)
        return {"quota_set": {"id": project_id, **limits, **quota_keys(mv)}}

    @app.get("/os-quota-sets/{project_id}/detail")
    def quota_detail(project_id: str, ctx: Ctx, mv: Mv) -> dict:
        quota_target(ctx, project_id)
        with db.session() as s:
            limits = quotas.limits_for(s, settings, project_id)
            used = quotas.usage(s, project_id)
        body: dict = {"id": project_id}
        for r, lim in {**limits, **quota_keys(mv)}.items():
            body[r] = {"limit": lim, "in_use": used.get(r, 0), "reserved": 0}
        return {"quota_set": body}

    @app.get("/os-quota-sets/{project_id}/defaults")
    def quota_defaults(project_id: str, ctx: Ctx, mv: Mv) -> dict:
        _need_project(ctx)
        return {"quota_set": {"id": project_id, **quotas.defaults(settings), **quota_keys(mv)}}

    @app.put("/os-quota-sets/{project_id}")
    def quota_update(project_id: str, body: JsonBody, ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:quotas:update")
        qs = _obj(body, "quota_set")
        force = bool(qs.get("force", False))
        with db.session() as s:
            quotas.lock(s, f"quota:{project_id}")
            used = quotas.usage(s, project_id)
            for r, v in qs.items():
                if r in ("force", "id"):
                    continue
                if r in quotas.LEGACY or r in quotas.LEGACY_NETWORK:
                    continue
                if r not in quotas.RESOURCES:
                    raise BadRequest(f"Bad key(s) {r} in quota_set.")
                value = _int(v, r, -1)
                if not force and value >= 0 and used.get(r, 0) > value:
                    raise BadRequest(
                        f"Quota limit {value} for {r} must be greater than or equal to already "
                        f"used and reserved {used.get(r, 0)}."
                    )
                row = s.scalar(
                    select(QuotaLimit).where(
                        QuotaLimit.project_id == project_id, QuotaLimit.resource == r
                    )
                )
                if row is None:
                    s.add(QuotaLimit(project_id=project_id, resource=r, hard_limit=value))
                else:
                    row.hard_limit = value
            s.flush()
            limits = quotas.limits_for(s, settings, project_id)
        return {"quota_set": {**limits, **quota_keys(mv)}}

    @app.delete("/os-quota-sets/{project_id}", status_code=202)
    def quota_delete(project_id: str, ctx: Ctx) -> Response:
        enforce(ctx, "compute:quotas:update")
        with db.session() as s:
            for row in s.scalars(select(QuotaLimit).where(QuotaLimit.project_id == project_id)):
                s.delete(row)
        return Response(status_code=202)

    @app.get("/limits")
    def limits_show(request: Request, ctx: Ctx, mv: Mv) -> dict:
        project_id = _need_project(ctx)
        q = request.query_params
        if q.get("tenant_id") and q["tenant_id"] != project_id:
            enforce(ctx, "compute:quotas:update")
            project_id = q["tenant_id"]
        enforce(ctx, "compute:limits", {"project_id": project_id})
        with db.session() as s:
            lim = quotas.limits_for(s, settings, project_id)
            used = quotas.usage(s, project_id)
        absolute = {
            "maxTotalInstances": lim["instances"],
            "maxTotalCores": lim["cores"],
            "maxTotalRAMSize": lim["ram"],
            "maxTotalKeypairs": lim["key_pairs"],
            "maxServerMeta": lim["metadata_items"],
            "maxServerGroups": lim["server_groups"],
            "maxServerGroupMembers": lim["server_group_members"],
            "totalInstancesUsed": used["instances"],
            "totalCoresUsed": used["cores"],
            "totalRAMUsed": used["ram"],
            "totalServerGroupsUsed": used["server_groups"],
        }
        if mv < (2, 39):
            absolute["maxImageMeta"] = 128
        if mv < (2, 57):
            absolute.update(maxPersonality=5, maxPersonalitySize=10240)
        if mv < (2, 36):
            absolute.update(
                maxSecurityGroups=-1,
                maxSecurityGroupRules=-1,
                maxTotalFloatingIps=-1,
                totalFloatingIpsUsed=0,
                totalSecurityGroupsUsed=0,
            )
        return {"limits": {"rate": [], "absolute": absolute}}

    # ---- availability zones, hypervisors, services ----------------------------------------

    @app.get("/os-availability-zone")
    def az_index(ctx: Ctx) -> dict:
        enforce(ctx, "compute:availability_zones")
        return {
            "availabilityZoneInfo": [
                {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}
            ]
        }

    @app.get("/os-availability-zone/detail")
    def az_detail(ctx: Ctx) -> dict:
        enforce(ctx, "compute:availability_zones:detail")
        with db.session() as s:
            rows = list(s.scalars(select(Host)))
        host_map = {
            h.name: {
                "nova-compute": {
                    "available": bool(h.up and h.enabled),
                    "active": bool(h.enabled),
                    "updated_at": views.iso_micro(h.last_seen),
                }
            }
            for h in rows
        }
        return {
            "availabilityZoneInfo": [
                {"zoneName": "nova", "zoneState": {"available": True}, "hosts": host_map}
            ]
        }

    def hypervisor_body(h: Host, used: dict, mv: Version, detailed: bool) -> dict:
        n, ram, cpus = used.get(h.name, (0, 0, 0))
        body: dict = {
            "id": str(h.id) if mv >= (2, 53) else h.id,
            "hypervisor_hostname": h.name,
            "state": "up" if h.up else "down",
            "status": "enabled" if h.enabled else "disabled",
        }
        if detailed:
            body.update(
                host_ip=h.url.split("://", 1)[-1].split(":")[0]
                if h.url.startswith("tcp")
                else "127.0.0.1",
                hypervisor_type="docker",
                hypervisor_version=1,
                service={
                    "host": h.name,
                    "id": str(h.id) if mv >= (2, 53) else h.id,
                    "disabled_reason": h.disabled_reason,
                },
            )
            if mv < (2, 88):
                body.update(
                    vcpus=h.vcpus,
                    memory_mb=h.memory_mb,
                    local_gb=0,
                    vcpus_used=cpus,
                    memory_mb_used=ram,
                    local_gb_used=0,
                    free_ram_mb=h.memory_mb - ram,
                    free_disk_gb=0,
                    current_workload=0,
                    running_vms=n,
                    disk_available_least=0,
                    cpu_info="{}",
                )
            else:
                body["uptime"] = None
        return body

    @app.get("/os-hypervisors")
    def hypervisors_index(ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:hosts")
        with db.session() as s:
            rows = list(s.scalars(select(Host).order_by(Host.id)))
            used = hosts.usage_by_host(s)
        return {"hypervisors": [hypervisor_body(h, used, mv, False) for h in rows]}

    @app.get("/os-hypervisors/detail")
    def hypervisors_detail(ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:hosts")
        with db.session() as s:
            rows = list(s.scalars(select(Host).order_by(Host.id)))
            used = hosts.usage_by_host(s)
        return {"hypervisors": [hypervisor_body(h, used, mv, True) for h in rows]}

    @app.get("/os-hypervisors/{hid}")
    def hypervisor_show(hid: str, ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:hosts")
        with db.session() as s:
            h = s.get(Host, int(hid)) if hid.isdigit() else hosts.get(s, hid)
            if h is None:
                raise NotFound(f"Hypervisor with ID {hid} could not be found.")
            used = hosts.usage_by_host(s)
            return {"hypervisor": hypervisor_body(h, used, mv, True)}

    def service_body(h: Host, mv: Version) -> dict:
        return {
            "id": str(h.id) if mv >= (2, 53) else h.id,
            "binary": "nova-compute",
            "host": h.name,
            "zone": "nova",
            "status": "enabled" if h.enabled else "disabled",
            "state": "up" if h.up else "down",
            "updated_at": views.iso_micro(h.last_seen),
            "disabled_reason": h.disabled_reason,
            "forced_down": False,
        }

    @app.get("/os-services")
    def services_index(ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:hosts")
        with db.session() as s:
            return {
                "services": [service_body(h, mv) for h in s.scalars(select(Host).order_by(Host.id))]
            }

    @app.put("/os-services/{sid}")
    def service_update(sid: str, body: JsonBody, ctx: Ctx, mv: Mv) -> dict:
        enforce(ctx, "compute:hosts")
        if mv < (2, 53):
            raise NotFound("Use microversion 2.53 or later to update services by id.")
        if not isinstance(body, dict) or not body:
            raise BadRequest("The body must be an object with 'status' (and 'disabled_reason').")
        unknown = set(body) - {"status", "disabled_reason", "forced_down"}
        if unknown:
            raise BadRequest(
                f"Additional properties are not allowed: {', '.join(sorted(unknown))}."
            )
        with db.session() as s:
            h = s.get(Host, int(sid)) if sid.isdigit() else None
            if h is None:
                raise NotFound(f"Service {sid} could not be found.")
            if "status" in body:
                if body["status"] not in ("enabled", "disabled"):
                    raise BadRequest("status must be 'enabled' or 'disabled'.")
                h.enabled = body["status"] == "enabled"
                h.disabled_reason = body.get("disabled_reason") if not h.enabled else None
            return {"service": service_body(h, mv)}

    # ---- wiring -------------------------------------------------------------------------

    def is_public(method: str, path: str) -> bool:
        return method in ("GET", "HEAD") and path in ("/", "")

    compute.reconciler = reconciler
    return ServiceApp(
        prefix=PREFIX,
        app=_Microversions(app),
        render_error=nova_error,
        is_public=is_public,
        catalog=ServiceEntry("compute", "nova", PREFIX, "Compute"),
        background=[compute.runner.run, reconciler.run],
    )


def build_versions(runtime: Runtime) -> ServiceApp:
    """GET /compute (and /compute/): the list of compute API versions, no token needed."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app, nova_error)
    base_url = runtime.settings.base_url

    @app.get("/")
    def versions() -> dict:
        return _versions_list(base_url)

    return ServiceApp(
        prefix="/compute",
        app=app,
        render_error=nova_error,
        is_public=lambda method, path: method in ("GET", "HEAD") and path in ("/", ""),
    )
