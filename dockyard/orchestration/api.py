"""Orchestration API v1 (Heat), mounted under /orchestration/v1/{project_id}."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response

from dockyard.api.context import RequestContext, request_context
from dockyard.api.errors import BadRequest, Forbidden, NotFound, heat_error, install_error_handlers
from dockyard.api.policy import enforce
from dockyard.api.service import ServiceApp
from dockyard.db.base import utcnow
from dockyard.identity.catalog import ServiceEntry
from dockyard.orchestration import diff, software, versions
from dockyard.orchestration import engine as eng
from dockyard.orchestration.errors import (
    TemplateError,
    in_progress,
    not_supported,
    stack_exists,
    stack_not_found,
)
from dockyard.orchestration.models import Event, Stack, StackResource
from dockyard.orchestration.parameters import HIDDEN
from dockyard.orchestration.resources import lookup_type
from dockyard.orchestration.resources import registry as build_registry
from dockyard.orchestration.resources.base import Context
from dockyard.orchestration.resources.nested import NestedStack, is_template_type
from dockyard.orchestration.services import Services
from dockyard.orchestration.stack import Definition, check_environment, pseudo_params
from dockyard.orchestration.template import check_size, parse_text
from dockyard.runtime import Runtime

Ctx = Annotated[RequestContext, Depends(request_context)]
PREFIX = "/orchestration"
NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_.-]{0,254}$")
LOOKUP_SUBPATHS = {"resources", "events", "template", "actions", "environment", "files"}
MAX_STACKS_PER_PROJECT = 512
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _time(t: datetime | None) -> str | None:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def _bool_query(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    low = raw.lower()
    if low not in ("true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n"):
        raise BadRequest(
            f'Unrecognized value "{raw}" for "{name}", acceptable values are: true, false'
        )
    return low in ("true", "1", "yes", "on", "t", "y")


def _is_public(method: str, path: str) -> bool:
    return path in ("/", "/v1", "/v1/")


def build(runtime: Runtime) -> ServiceApp:
    settings = runtime.settings
    db = runtime.db
    registry = build_registry()
    services = Services(runtime)
    engine = eng.Engine(runtime, registry, services)
    services.engine = engine  # nested stacks start their children's actions
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app, heat_error)
    base = settings.base_url + PREFIX + "/v1"

    # ---- helpers --------------------------------------------------------------------

    def tenant_ok(ctx: RequestContext, tenant: str) -> None:
        if tenant != ctx.project_id and not ctx.is_admin:
            raise Forbidden(
                f"The project {tenant} in the URL is not the project of your token.",
                kind="Forbidden",
            )

    def stack_url(tenant: str, s: Stack) -> str:
        return f"{base}/{tenant}/stacks/{s.name}/{s.id}"

    def find_stack(session: Session, ctx: RequestContext, tenant: str, ident: str) -> Stack:
        q = select(Stack)
        if UUID_RE.match(ident):
            q = q.where(Stack.id == ident)
        else:
            q = q.where(Stack.name == ident, Stack.deleted_at.is_(None))
        if not ctx.is_admin:
            q = q.where(Stack.project_id == ctx.project_id)
        else:
            q = q.where(Stack.project_id == tenant) if not UUID_RE.match(ident) else q
        found = session.scalars(q.order_by(Stack.created_at.desc())).first()
        if found is None:
            raise stack_not_found(ident)
        return found

    def get_stack(session: Session, ctx: RequestContext, tenant: str, name: str, sid: str) -> Stack:
        tenant_ok(ctx, tenant)
        s = session.get(Stack, sid)
        if s is None or (not ctx.is_admin and s.project_id != ctx.project_id) or s.name != name:
            raise stack_not_found(f"{name}/{sid}" if s is None or s.name != name else name)
        return s

    def make_ctx(ctx: RequestContext, sid: str = "", name: str = "") -> Context:
        return Context(
            project_id=ctx.project_id or "",
            user_id=ctx.user_id,
            user_name=ctx.user_name,
            roles=sorted(ctx.roles),
            stack_id=sid,
            stack_name=name,
            settings=settings,
            services=services,
        )

    def read_template(body: dict) -> dict:
        tpl = body.get("template")
        if tpl is None:
            if body.get("template_url"):
                raise BadRequest(
                    "template_url is not supported by this cloud; send the template itself "
                    "(the openstack client does this for -t files)"
                )
            raise BadRequest("No template specified", kind="InvalidTemplate")
        if isinstance(tpl, str):
            tpl = parse_text(tpl)
        if not isinstance(tpl, dict):
            raise TemplateError("The template is not a JSON object or YAML mapping.")
        check_size(tpl)
        return tpl

    def read_env(body: dict) -> dict:
        env = body.get("environment")
        if isinstance(env, str):
            env = parse_text(env) if env.strip() else {}
        env = check_environment(env)
        return json.loads(json.dumps(env or {}))

    def build_definition(
        tpl: dict,
        files: dict,
        env: dict,
        name: str,
        sid: str,
        project: str,
        strict: bool = True,
        ctx: RequestContext | None = None,
    ) -> Definition:
        custom = services.constraint_checker(make_ctx(ctx, sid, name)) if ctx else None
        return Definition.build(
            tpl, files, env, {}, pseudo_params(name, sid, project), registry, custom, strict=strict
        )

    def merged_env(env: dict, params: Any) -> dict:
        if params is not None and not isinstance(params, dict):
            raise BadRequest("parameters must be a map")
        env = dict(env)
        env["parameters"] = {**(env.get("parameters") or {}), **(params or {})}
        return env

    def tags_of(raw: Any) -> list[str] | None:
        if raw is None or raw == "":
            return None
        if isinstance(raw, list):
            return [str(t) for t in raw]
        return [t.strip() for t in str(raw).split(",") if t.strip()]

    def timeout_of(raw: Any) -> int | None:
        if raw is None:
            return None
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise BadRequest(f"Invalid timeout value {raw}") from None
        if value <= 0:
            raise BadRequest(f"Invalid timeout value {raw}")
        return value

    def params_view(s: Stack, defn: Definition | None) -> dict:
        out = {k: str(v) for k, v in pseudo_params(s.name, s.id, s.project_id).items()}
        if defn is None:
            return out
        for name, p in defn.template.parameters.items():
            if name in defn.params:
                out[name] = p.display(defn.params[name])
        return out

    def safe_defn(s: Stack) -> Definition | None:
        try:
            return engine.definition(s)
        except Exception:  # noqa: BLE001 - a stored stack always shows
            return None

    def stack_summary(tenant: str, s: Stack) -> dict:
        return {
            "id": s.id,
            "stack_name": s.name,
            "description": (s.template or {}).get("description", "") or "",
            "stack_status": f"{s.action}_{s.status}",
            "stack_status_reason": s.status_reason,
            "creation_time": _time(s.created_at),
            "updated_time": _time(s.updated_at),
            "deletion_time": _time(s.deleted_at),
            "stack_owner": s.username,
            "parent": s.parent_id,
            "stack_user_project_id": s.project_id,
            "tags": s.tags,
            "links": [{"href": stack_url(s.project_id, s), "rel": "self"}],
        }

    def stack_detail(tenant: str, s: Stack, resolve_outputs: bool = True) -> dict:
        defn = safe_defn(s)
        view = stack_summary(tenant, s)
        desc = defn.template.description if defn else "No description"
        view.update(
            {
                "description": desc,
                "template_description": desc,
                "parameters": params_view(s, defn),
                "capabilities": [],
                "notification_topics": [],
                "disable_rollback": s.disable_rollback,
                "timeout_mins": s.timeout_mins,
            }
        )
        if (
            resolve_outputs
            and defn is not None
            and not (s.action == "DELETE" and s.status == "COMPLETE")
        ):
            view["outputs"] = outputs_of(s, defn)
        return view

    def outputs_of(s: Stack, defn: Definition) -> list[dict]:
        lookup = eng.Lookup(engine, s, defn, engine.context(s))
        out = defn.outputs(lookup)
        for o in out:
            if "output_error" not in o:
                o.pop("output_error", None)
        return out

    def resource_view(tenant: str, s: Stack, r: StackResource, req_by: dict, detail: bool) -> dict:
        surl = stack_url(tenant, s)
        view = {
            "resource_name": r.name,
            "logical_resource_id": r.name,
            "physical_resource_id": r.physical_id or "",
            "resource_type": r.type,
            "resource_status": f"{r.action}_{r.status}",
            "resource_status_reason": r.status_reason,
            "creation_time": _time(r.created_at),
            "updated_time": _time(r.updated_at or r.created_at),
            "required_by": req_by.get(r.name, []),
            "links": [
                {"href": f"{surl}/resources/{r.name}", "rel": "self"},
                {"href": surl, "rel": "stack"},
            ],
        }
        cls = lookup_type(registry, r.type)
        if r.physical_id and cls is not None and issubclass(cls, NestedStack):
            view["links"].append(
                {"href": f"{base}/{s.project_id}/stacks/{r.physical_id}", "rel": "nested"}
            )
        if detail:
            cls = lookup_type(registry, r.type)
            view["description"] = cls.description if cls else ""
            attrs: dict[str, Any] = {}
            if cls is not None:
                plugin = cls(
                    engine.context(s),
                    r.name,
                    r.properties or {},
                    physical_id=r.physical_id,
                    data=r.data,
                    incarnation=r.incarnation,
                )
                if r.physical_id:
                    attrs = plugin.all_attributes()
                else:
                    attrs = dict.fromkeys(cls.attributes_schema)
                attrs["show"] = None
            view["attributes"] = attrs
        return view

    def event_view(tenant: str, s: Stack, e: Event, detail: bool) -> dict:
        surl = stack_url(tenant, s)
        view = {
            "id": e.id,
            "event_time": _time(e.created_at),
            "resource_name": e.resource_name,
            "logical_resource_id": e.resource_name,
            "physical_resource_id": e.physical_id,
            "resource_status": f"{e.action}_{e.status}",
            "resource_status_reason": e.reason,
            "links": [
                {"rel": "self", "href": f"{surl}/resources/{e.resource_name}/events/{e.id}"},
                {"rel": "resource", "href": f"{surl}/resources/{e.resource_name}"},
                {"rel": "stack", "href": surl},
            ],
        }
        if detail:
            view["resource_type"] = e.resource_type
            view["resource_properties"] = e.properties or {}
        return view

    def redirect(request: Request, tenant: str, s: Stack, sub: str = "") -> Response:
        url = stack_url(tenant, s) + (f"/{sub}" if sub else "")
        if request.url.query:
            url += "?" + request.url.query
        return Response(status_code=302, headers={"Location": url})

    def run(fn, *args):
        import anyio

        return anyio.to_thread.run_sync(fn, *args)

    # ---- versions -------------------------------------------------------------------

    @app.get("/")
    @app.get("/v1")
    @app.get("/v1/")
    def versions_doc():
        return JSONResponse(
            {
                "versions": [
                    {
                        "id": "v1.0",
                        "status": "CURRENT",
                        "links": [{"rel": "self", "href": base + "/"}],
                    }
                ]
            },
            status_code=300,
        )

    T = "/v1/{tenant}"

    @app.get(T + "/build_info")
    def build_info(tenant: str, ctx: Ctx):
        tenant_ok(ctx, tenant)
        return {"api": {"revision": "dockyard"}, "engine": {"revision": "dockyard"}}

    @app.get(T + "/template_versions")
    def list_versions(tenant: str, ctx: Ctx):
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:list_template_versions")
        return {"template_versions": versions.template_versions()}

    @app.get(T + "/template_versions/{version}/functions")
    def list_functions(tenant: str, version: str, request: Request, ctx: Ctx):
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:list_template_functions")
        prefix = "heat_template_version."
        v = versions.lookup(version[len(prefix) :]) if version.startswith(prefix) else None
        if v is None:
            raise NotFound(f"Template with version {version} not found", kind="NotFound")
        with_cond = _bool_query(request, "with_condition_func")
        return {"template_functions": versions.listed_functions(v, with_cond)}

    # ---- resource types -------------------------------------------------------------

    @app.get(T + "/resource_types")
    def resource_types(tenant: str, request: Request, ctx: Ctx):
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:list_resource_types")
        names = sorted(registry)
        pattern = request.query_params.get("name")
        if pattern:
            try:
                rx = re.compile(pattern)
            except re.error as exc:
                raise BadRequest(f"Invalid name filter: {exc}") from exc
            names = [n for n in names if rx.match(n)]
        status = request.query_params.get("support_status")
        if status:
            names = [n for n in names if registry[n].support_status["status"] == status.upper()]
        if _bool_query(request, "with_description"):
            return {
                "resource_types": [
                    {"resource_type": n, "description": registry[n].description} for n in names
                ]
            }
        return {"resource_types": names}

    def rtype(name: str):
        cls = registry.get(name)
        if cls is None:
            raise NotFound(f"The Resource Type ({name}) could not be found.", kind="EntityNotFound")
        return cls

    @app.get(T + "/resource_types/{type_name}")
    def resource_type(tenant: str, type_name: str, request: Request, ctx: Ctx):
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:show_resource_type")
        return rtype(type_name).schema_view(_bool_query(request, "with_description"))

    @app.get(T + "/resource_types/{type_name}/template")
    def resource_type_template(tenant: str, type_name: str, request: Request, ctx: Ctx):
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:show_resource_type")
        kind = request.query_params.get("template_type", "cfn")
        if kind not in ("hot", "cfn"):
            raise BadRequest(f"Template type is not supported: {kind}")
        return rtype(type_name).template_view(kind)

    # ---- validate -------------------------------------------------------------------

    def do_validate(ctx: RequestContext, body: dict, show_nested: bool) -> dict:
        tpl = read_template(body)
        env = merged_env(read_env(body), body.get("parameters"))
        files = body.get("files") or {}
        defn = build_definition(
            tpl, files, env, "validate", "", ctx.project_id or "", False, ctx=ctx
        )
        defn.validate(lambda: make_ctx(ctx))
        user = env.get("parameters") or {}
        params = {
            n: p.api_view(user.get(n), n in user) for n, p in defn.template.parameters.items()
        }
        out: dict[str, Any] = {
            "Description": defn.template.description,
            "Parameters": params,
            "Environment": {
                "parameters": user,
                "parameter_defaults": env.get("parameter_defaults") or {},
                "resource_registry": {
                    **{r.type: r.type for r in defn.active.values() if is_template_type(r.type)},
                    **(env.get("resource_registry") or {}),
                    "resources": (env.get("resource_registry") or {}).get("resources") or {},
                },
                "event_sinks": [],
            },
        }
        if defn.template.parameter_groups:
            out["ParameterGroups"] = defn.template.parameter_groups
        if show_nested:
            nested = nested_parameters(defn, files, ctx.project_id or "")
            if nested:
                out["NestedParameters"] = nested
        return out

    def preview_resources(
        defn: Definition, stack_name: str, project: str, files: dict, depth: int = 0
    ) -> list:
        """Resources as a preview shows them; a nested stack's are a list in their place."""
        out: list = []
        identity = {"stack_name": stack_name, "stack_id": "None", "tenant": project}
        required = defn.required_by()
        for n in defn.order:
            r = defn.active[n]
            props = defn.properties(n, _Names())
            if is_template_type(r.type) and r.type in files and depth < 5:
                text = files[r.type]
                child = Definition.build(
                    text if isinstance(text, dict) else parse_text(text),
                    files,
                    {"parameters": {k: v for k, v in props.items() if v is not None}},
                    {},
                    pseudo_params(f"{stack_name}-{n}", "None", project),
                    registry,
                )
                inner = preview_resources(child, f"{stack_name}-{n}", project, files, depth + 1)
                for item in inner:
                    if isinstance(item, dict):
                        item["parent_resource"] = n
                out.append(inner)
                continue
            cls = defn.registry[r.type]
            out.append(
                {
                    "resource_name": n,
                    "resource_type": r.type,
                    "resource_action": "INIT",
                    "resource_status": "COMPLETE",
                    "resource_status_reason": "",
                    "physical_resource_id": "",
                    "description": "",
                    "creation_time": None,
                    "updated_time": None,
                    "required_by": required.get(n, []),
                    "stack_name": stack_name,
                    "resource_identity": {**identity, "path": f"/resources/{n}"},
                    "stack_identity": {**identity, "path": ""},
                    "attributes": dict.fromkeys(cls.attributes_schema),
                    "properties": props,
                    "metadata": {},
                }
            )
        return out

    def nested_parameters(defn: Definition, files: dict, project: str, depth: int = 0) -> dict:
        """validate?show_nested: each provider-template resource's parameters, with the values
        the parent passes (Heat's NestedParameters)."""
        out: dict[str, Any] = {}
        if depth > 5:
            return out
        for name in defn.order:
            r = defn.active[name]
            if not is_template_type(r.type) or r.type not in files:
                continue
            given = {
                k: v
                for k, v in (defn.properties(name, _Names(), check=False) or {}).items()
                if v is not None
            }
            text = files[r.type]
            doc = text if isinstance(text, dict) else parse_text(text)
            known = set((doc.get("parameters") or {}) if isinstance(doc, dict) else ())
            given = {k: v for k, v in given.items() if k in known}
            child = Definition.build(
                doc,
                files,
                {"parameters": given},
                {},
                pseudo_params(name, "", project),
                registry,
                strict=False,
            )
            entry: dict[str, Any] = {
                "Description": child.template.description,
                "Parameters": {
                    n: p.api_view(given.get(n), n in given)
                    for n, p in child.template.parameters.items()
                },
                "Type": r.type,
            }
            deeper = nested_parameters(child, files, project, depth + 1)
            if deeper:
                entry["NestedParameters"] = deeper
            out[name] = entry
        return out

    @app.post(T + "/validate")
    async def validate(tenant: str, request: Request, ctx: Ctx):
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:validate_template")
        body = await _json(request)
        return await run(do_validate, ctx, body, _bool_query(request, "show_nested"))

    # ---- stacks ---------------------------------------------------------------------

    def do_create(ctx: RequestContext, tenant: str, body: dict, preview: bool) -> dict:
        name = body.get("stack_name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise BadRequest(
                f'Invalid stack name {name} must contain only alphanumeric or "_-." characters, '
                "must start with alpha and must be 255 characters or less.",
                kind="StackValidationFailed",
            )
        tpl = read_template(body)
        files = body.get("files") or {}
        if not isinstance(files, dict):
            raise BadRequest("files must be a map")
        env = merged_env(read_env(body), body.get("parameters"))
        sid = str(uuid.uuid4())
        project = tenant if ctx.is_admin else (ctx.project_id or "")
        defn = build_definition(tpl, files, env, name, sid, project, ctx=ctx)
        defn.validate(lambda: make_ctx(ctx, sid, name))
        timeout = timeout_of(body.get("timeout_mins"))
        disable_rollback = body.get("disable_rollback", True)
        if not isinstance(disable_rollback, bool):
            disable_rollback = str(disable_rollback).lower() in ("true", "1", "yes")
        if preview:
            fake = Stack(
                id="None", name=name, project_id=project, username=ctx.user_name,
                template=tpl, files=files, environment=env, action="INIT", status="COMPLETE",
                status_reason="", disable_rollback=disable_rollback, timeout_mins=timeout,
                tags=tags_of(body.get("tags")), created_at=utcnow(),
            )  # fmt: skip
            view = stack_summary(tenant, fake)
            view.update(
                {
                    "parameters": params_view(fake, defn),
                    "description": defn.template.description,
                    "template_description": defn.template.description,
                    "disable_rollback": disable_rollback,
                    "timeout_mins": timeout,
                    "capabilities": [],
                    "notification_topics": [],
                    "resources": preview_resources(defn, name, project, files),
                }
            )
            return {"stack": view}
        with db.session() as session:
            dup = session.scalar(
                select(Stack.id).where(
                    Stack.project_id == project, Stack.name == name, Stack.deleted_at.is_(None)
                )
            )
            if dup:
                raise stack_exists(name)
            count = (
                session.query(Stack)
                .filter(Stack.project_id == project, Stack.deleted_at.is_(None))
                .count()
            )
            if count >= MAX_STACKS_PER_PROJECT:
                raise BadRequest(
                    f"You have reached the maximum stacks per tenant, {MAX_STACKS_PER_PROJECT}. "
                    "Please delete some stacks.",
                    kind="RequestLimitExceeded",
                )
            s = Stack(
                id=sid,
                name=name,
                project_id=project,
                user_id=ctx.user_id,
                username=ctx.user_name,
                roles=sorted(ctx.roles),
                template=tpl,
                files=files,
                environment=env,
                action="CREATE",
                status="IN_PROGRESS",
                status_reason="",
                generation=0,
                disable_rollback=disable_rollback,
                timeout_mins=timeout,
                tags=tags_of(body.get("tags")),
                created_at=utcnow(),
            )
            session.add(s)
            try:
                session.flush()
            except IntegrityError:  # a concurrent create of the same name won
                raise stack_exists(name) from None
            eng.begin_action(session, s, "CREATE")
            url = stack_url(project, s)
        engine.runner.kick()
        return {"stack": {"id": sid, "links": [{"href": url, "rel": "self"}]}, "url": url}

    @app.post(T + "/stacks")
    async def create_stack(tenant: str, request: Request, ctx: Ctx):
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:create_stack")
        body = await _json(request)
        out = await run(do_create, ctx, tenant, body, False)
        url = out.pop("url")
        return JSONResponse(out, status_code=201, headers={"Location": url})

    @app.post(T + "/stacks/preview")
    async def preview_stack(tenant: str, request: Request, ctx: Ctx):
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:preview_stack")
        body = await _json(request)
        return await run(do_create, ctx, tenant, body, True)

    def do_list(ctx: RequestContext, tenant: str, request: Request, detail: bool) -> dict:
        qp = request.query_params
        with db.session() as session:
            q = select(Stack)
            global_tenant = _bool_query(request, "global_tenant") and ctx.is_admin
            if not global_tenant:
                q = q.where(Stack.project_id == (tenant if ctx.is_admin else ctx.project_id))
            if not _bool_query(request, "show_deleted"):
                q = q.where(Stack.deleted_at.is_(None))
            if not _bool_query(request, "show_nested"):
                q = q.where(Stack.parent_id.is_(None))
            for key, col in (("id", Stack.id), ("name", Stack.name)):
                vals = qp.getlist(key)
                if vals:
                    q = q.where(col.in_(vals))
            statuses = qp.getlist("status")
            actions = qp.getlist("action")
            stacks = list(session.scalars(q))
            if statuses:
                stacks = [
                    s for s in stacks
                    if s.status in statuses or f"{s.action}_{s.status}" in statuses
                ]  # fmt: skip
            if actions:
                stacks = [s for s in stacks if s.action in actions]
            for key, want_all, negate in (
                ("tags", True, False),
                ("tags_any", False, False),
                ("not_tags", True, True),
                ("not_tags_any", False, True),
            ):
                raw = qp.get(key)
                if raw:
                    wanted = {t.strip() for t in raw.split(",") if t.strip()}

                    def match(s: Stack, wanted=wanted, want_all=want_all) -> bool:
                        have = set(s.tags or [])
                        return wanted <= have if want_all else bool(wanted & have)

                    stacks = [s for s in stacks if match(s) != negate]
            keys = qp.getlist("sort_keys") or ["creation_time"]
            sort_dir = qp.get("sort_dir", "desc")
            if sort_dir not in ("asc", "desc"):
                raise BadRequest("Unknown sort direction, must be one of: asc, desc")
            attr = {
                "stack_name": "name",
                "stack_status": "status",
                "creation_time": "created_at",
                "created_at": "created_at",
                "updated_time": "updated_at",
                "updated_at": "updated_at",
                "name": "name",
            }
            for k in keys:
                if k not in attr:
                    raise BadRequest(f"Sort key {k} is not supported")
            stacks.sort(
                key=lambda s: (
                    tuple((getattr(s, attr[k]) is not None, getattr(s, attr[k]) or 0) for k in keys)
                    + (s.id,)
                ),
                reverse=sort_dir == "desc",
            )
            marker = qp.get("marker")
            if marker:
                ids = [s.id for s in stacks]
                if marker not in ids:
                    raise NotFound(
                        f"The Stack ({marker}) could not be found.", kind="EntityNotFound"
                    )
                stacks = stacks[ids.index(marker) + 1 :]
            total = len(stacks)
            limit = qp.get("limit")
            if limit is not None:
                try:
                    stacks = stacks[: max(0, int(limit))]
                except ValueError:
                    raise BadRequest("limit must be an integer") from None
            views = [
                (stack_detail(tenant, s) if detail else stack_summary(tenant, s)) for s in stacks
            ]
            if global_tenant:
                for v, s in zip(views, stacks, strict=True):
                    v["project"] = s.project_id
            out: dict[str, Any] = {"stacks": views}
            if _bool_query(request, "with_count"):
                out["count"] = total
            return out

    @app.get(T + "/stacks")
    async def list_stacks(tenant: str, request: Request, ctx: Ctx):
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:list_stacks")
        return await run(do_list, ctx, tenant, request, False)

    @app.get(T + "/stacks/detail")
    async def list_stacks_detail(tenant: str, request: Request, ctx: Ctx):
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:list_stacks")
        return await run(do_list, ctx, tenant, request, True)

    def do_lookup(ctx: RequestContext, tenant: str, ident: str) -> Stack:
        tenant_ok(ctx, tenant)
        with db.session() as session:
            s = find_stack(session, ctx, tenant, ident)
            session.expunge(s)
            return s

    @app.api_route(T + "/stacks/{ident}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def lookup(tenant: str, ident: str, request: Request, ctx: Ctx):
        enforce(ctx, "orchestration:lookup_stack")
        s = await run(do_lookup, ctx, tenant, ident)
        return redirect(request, tenant, s)

    # /stacks/{name}/{id}[/...] or /stacks/{name}/{subpath}[/...]
    @app.api_route(
        T + "/stacks/{ident}/{second}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
    )
    async def stack_or_lookup(tenant: str, ident: str, second: str, request: Request, ctx: Ctx):
        if second in LOOKUP_SUBPATHS or second == "outputs" and not UUID_RE.match(second):
            enforce(ctx, "orchestration:lookup_stack")
            s = await run(do_lookup, ctx, tenant, ident)
            return redirect(request, tenant, s, second)
        m = request.method
        if m == "GET":
            enforce(ctx, "orchestration:show_stack")
            resolve = _bool_query(request, "resolve_outputs", True)

            def show():
                with db.session() as session:
                    s = get_stack(session, ctx, tenant, ident, second)
                    enforce(ctx, "orchestration:show_stack", {"project_id": s.project_id})
                    return {"stack": stack_detail(tenant, s, resolve)}

            return await run(show)
        if m == "DELETE":
            enforce(ctx, "orchestration:delete_stack")
            await run(do_delete, ctx, tenant, ident, second)
            return Response(status_code=204)
        if m in ("PUT", "PATCH"):
            enforce(ctx, "orchestration:update_stack")
            body = await _json(request)
            await run(do_update, ctx, tenant, ident, second, body, m == "PATCH", False)
            return JSONResponse({}, status_code=202)
        raise BadRequest(f"{m} is not supported here", kind="NotSupported")

    def do_delete(ctx: RequestContext, tenant: str, name: str, sid: str) -> None:
        with db.session() as session:
            s = get_stack(session, ctx, tenant, name, sid)
            enforce(ctx, "orchestration:delete_stack", {"project_id": s.project_id})
            if s.action == "DELETE" and s.status == "COMPLETE":
                raise stack_not_found(name)
            if s.action == "DELETE" and s.status == "IN_PROGRESS":
                return
            eng.begin_action(session, s, "DELETE", roles=list(ctx.roles))
        engine.runner.kick()

    def do_update(
        ctx: RequestContext, tenant: str, name: str, sid: str, body: dict, patch: bool,
        preview: bool,
    ) -> dict | None:  # fmt: skip
        with db.session() as session:
            s = get_stack(session, ctx, tenant, name, sid)
            enforce(ctx, "orchestration:update_stack", {"project_id": s.project_id})
            if s.action in ("SUSPEND", "DELETE") and not preview:
                what = "suspended" if s.action == "SUSPEND" else "deleted"
                raise not_supported(f"Updating a stack when it is {what} is not supported.")
            if s.status == "IN_PROGRESS" and not preview:
                raise in_progress(s.name, s.action)
            if patch:
                tpl = read_template(body) if body.get("template") else s.template
                env = read_env(body) if body.get("environment") is not None else {}
                old = dict(s.environment or {})
                params = dict(old.get("parameters") or {})
                for k in body.get("clear_parameters") or []:
                    params.pop(k, None)
                params.update(env.get("parameters") or {})
                params.update(body.get("parameters") or {})
                env = {**old, **env, "parameters": params}
                files = {**(s.files or {}), **(body.get("files") or {})}
            else:
                tpl = read_template(body)
                env = merged_env(read_env(body), body.get("parameters"))
                files = body.get("files") or {}
            defn = build_definition(tpl, files, env, s.name, s.id, s.project_id, ctx=ctx)
            defn.validate(lambda: make_ctx(ctx, s.id, s.name))
            old_defn = safe_defn(s)
            if old_defn is not None:
                for pname, p in old_defn.template.parameters.items():
                    if (
                        p.immutable
                        and pname in defn.params
                        and pname in old_defn.params
                        and defn.params[pname] != old_defn.params[pname]
                    ):
                        raise TemplateError(
                            f"The following parameters are immutable and may not be "
                            f"updated: {pname}",
                            kind="ImmutableParameterModified",
                        )
            if preview:
                return preview_changes(s, defn, old_defn)
            s.new_template, s.new_environment, s.new_files = tpl, env, files
            if "timeout_mins" in body and body["timeout_mins"] is not None:
                s.timeout_mins = timeout_of(body["timeout_mins"])
            if body.get("disable_rollback") is not None:
                s.disable_rollback = bool(body["disable_rollback"])
            if "tags" in body and (not patch or body["tags"] is not None):
                s.tags = tags_of(body["tags"])
            s.updated_at = utcnow()
            eng.begin_action(session, s, "UPDATE", roles=list(ctx.roles))
        engine.runner.kick()
        return None

    def preview_changes(s: Stack, defn: Definition, old: Definition | None) -> dict:
        changes: dict[str, list] = {
            k: [] for k in ("unchanged", "updated", "replaced", "added", "deleted")
        }
        with db.session() as session:
            rows = {
                r.name: r
                for r in session.scalars(
                    select(StackResource).where(StackResource.stack_id == s.id)
                )
            }
        lookup = eng.Lookup(engine, s, defn, engine.context(s))

        def item(name: str, rtype: str) -> dict:
            return {
                "resource_name": name,
                "resource_type": rtype,
                "stack_name": s.name,
                "resource_action": "INIT",
                "resource_status": "COMPLETE",
            }

        for name in defn.order:
            rtype = defn.active[name].type
            row = rows.get(name)
            try:
                props = defn.properties(name, lookup)
            except Exception:  # noqa: BLE001 - shown as a change, the update will say why
                props = {}
            current = (
                diff.Current(row.type, row.properties or {}, row.action, row.status)
                if row is not None
                else None
            )
            cls = defn.registry[rtype]
            plugin = cls(engine.context(s), name, (row.properties if row else None) or {})
            kind, _ = diff.classify(current, rtype, props, plugin.needs_replace)
            changes[kind].append(item(name, rtype))
        for name, row in rows.items():
            if name not in defn.active:
                changes["deleted"].append(item(name, row.type))
        return {"resource_changes": changes}

    @app.api_route(T + "/stacks/{name}/{sid}/preview", methods=["PUT", "PATCH"])
    async def preview_update(tenant: str, name: str, sid: str, request: Request, ctx: Ctx):
        enforce(ctx, "orchestration:preview_update_stack")
        body = await _json(request)
        return await run(do_update, ctx, tenant, name, sid, body, request.method == "PATCH", True)

    def abandon_data(s: Stack) -> dict:
        with db.session() as session:
            rows = list(
                session.scalars(select(StackResource).where(StackResource.stack_id == s.id))
            )
        return {
            "id": s.id,
            "name": s.name,
            "action": s.action,
            "status": s.status,
            "template": s.template,
            "environment": hide_env(s),
            "files": s.files or {},
            "project_id": s.project_id,
            "stack_user_project_id": s.project_id,
            "tags": s.tags,
            "resources": {
                r.name: {
                    "name": r.name,
                    "type": r.type,
                    "action": r.action,
                    "status": r.status,
                    "resource_id": r.physical_id,
                    "metadata": r.metadata_ or {},
                    "resource_data": {},
                }
                for r in rows
            },
        }

    @app.delete(T + "/stacks/{name}/{sid}/abandon")
    def abandon(tenant: str, name: str, sid: str, ctx: Ctx):
        enforce(ctx, "orchestration:abandon_stack")
        raise not_supported("Stack abandon is disabled by the operator (enable_stack_abandon).")

    @app.get(T + "/stacks/{name}/{sid}/export")
    def export(tenant: str, name: str, sid: str, ctx: Ctx):
        enforce(ctx, "orchestration:export_stack")
        with db.session() as session:
            s = get_stack(session, ctx, tenant, name, sid)
            return abandon_data(s)

    def hide_env(s: Stack) -> dict:
        env = json.loads(json.dumps(s.environment or {}))
        defn = safe_defn(s)
        hidden = [n for n, p in defn.template.parameters.items() if p.hidden] if defn else []
        for section in ("parameters", "parameter_defaults"):
            vals = env.get(section) or {}
            for n in hidden:
                if n in vals:
                    vals[n] = HIDDEN
            env[section] = vals
        env.setdefault("resource_registry", {"resources": {}})
        env.setdefault("encrypted_param_names", [])
        env.setdefault("event_sinks", [])
        return env

    @app.get(T + "/stacks/{name}/{sid}/template")
    def show_template(tenant: str, name: str, sid: str, ctx: Ctx):
        enforce(ctx, "orchestration:show_template")
        with db.session() as session:
            return get_stack(session, ctx, tenant, name, sid).template

    @app.get(T + "/stacks/{name}/{sid}/environment")
    def show_environment(tenant: str, name: str, sid: str, ctx: Ctx):
        enforce(ctx, "orchestration:show_environment")
        with db.session() as session:
            return hide_env(get_stack(session, ctx, tenant, name, sid))

    @app.get(T + "/stacks/{name}/{sid}/files")
    def show_files(tenant: str, name: str, sid: str, ctx: Ctx):
        enforce(ctx, "orchestration:show_files")
        with db.session() as session:
            return get_stack(session, ctx, tenant, name, sid).files or {}

    @app.get(T + "/stacks/{name}/{sid}/outputs")
    def list_outputs(tenant: str, name: str, sid: str, ctx: Ctx):
        enforce(ctx, "orchestration:list_outputs")
        with db.session() as session:
            s = get_stack(session, ctx, tenant, name, sid)
            defn = safe_defn(s)
            outs = defn.template.outputs if defn else {}
            return {
                "outputs": [
                    {"output_key": k, "description": o.description} for k, o in outs.items()
                ]
            }

    @app.get(T + "/stacks/{name}/{sid}/outputs/{key}")
    def show_output(tenant: str, name: str, sid: str, key: str, ctx: Ctx):
        enforce(ctx, "orchestration:show_output")
        with db.session() as session:
            s = get_stack(session, ctx, tenant, name, sid)
            session.expunge(s)
        defn = safe_defn(s)
        if defn is None or key not in defn.template.outputs:
            raise NotFound(f"Specified output key {key} not found.", kind="NotFound")
        for o in outputs_of(s, defn):
            if o["output_key"] == key:
                return {"output": o}
        raise NotFound(f"Specified output key {key} not found.", kind="NotFound")

    @app.post(T + "/stacks/{name}/{sid}/actions")
    async def actions(tenant: str, name: str, sid: str, request: Request, ctx: Ctx):
        body = await _json(request)
        if not isinstance(body, dict) or len(body) != 1:
            raise BadRequest("Multiple actions specified" if body else "No action specified")
        (action,) = body
        known = ("suspend", "resume", "check", "cancel_update", "cancel_without_rollback")
        if action not in known:
            raise BadRequest(f"Invalid action {action} specified")
        enforce(ctx, f"orchestration:{action}")

        def do():
            with db.session() as session:
                s = get_stack(session, ctx, tenant, name, sid)
                if action in ("cancel_update", "cancel_without_rollback"):
                    ok = s.status == "IN_PROGRESS" and (
                        s.action == "UPDATE"
                        or (action == "cancel_without_rollback" and s.action == "CREATE")
                    )
                    if not ok:
                        raise not_supported(
                            f"Cancelling update when stack is {s.action}_{s.status} "
                            "is not supported."
                        )
                    if action == "cancel_update":
                        # back to the stored template (the running update stops by itself)
                        eng.begin_action(session, s, "ROLLBACK", roles=list(ctx.roles))
                    else:
                        s.generation = Stack.generation + 1  # in SQL, like begin_action
                        eng.set_stack_state(
                            session, s, s.action, "FAILED", f"Stack {s.action} cancelled"
                        )
                    engine.runner.kick()
                    return
                if s.status == "IN_PROGRESS":
                    raise in_progress(s.name, s.action)
                if s.action == "DELETE":
                    raise stack_not_found(name)
                eng.begin_action(session, s, action.upper(), roles=list(ctx.roles))
            engine.runner.kick()

        await run(do)
        return Response(status_code=200)

    # ---- resources ------------------------------------------------------------------

    def resources_of(session: Session, s: Stack) -> list[StackResource]:
        return list(
            session.scalars(
                select(StackResource)
                .where(StackResource.stack_id == s.id)
                .order_by(StackResource.created_at, StackResource.name)
            )
        )

    def req_by_of(s: Stack) -> dict:
        defn = safe_defn(s)
        return defn.required_by() if defn else {}

    @app.get(T + "/stacks/{name}/{sid}/resources")
    async def list_resources(tenant: str, name: str, sid: str, request: Request, ctx: Ctx):
        enforce(ctx, "orchestration:list_resources")
        qp = request.query_params
        allowed = {
            "nested_depth",
            "with_detail",
            "type",
            "status",
            "name",
            "action",
            "id",
            "physical_resource_id",
        }
        bad = [k for k in qp if k not in allowed]
        if bad:
            raise BadRequest(f"Invalid filter parameters {bad}")
        if qp.get("nested_depth") is not None:
            try:
                int(qp["nested_depth"])
            except ValueError:
                raise BadRequest("nested_depth must be an integer") from None
        detail = _bool_query(request, "with_detail")

        depth = int(qp.get("nested_depth") or 0)

        def do():
            # (stack, row, parent resource name) down to nested_depth levels of children
            found: list[tuple[Stack, StackResource, str | None]] = []
            with db.session() as session:
                s = get_stack(session, ctx, tenant, name, sid)
                level = [(s, None)]
                for _ in range(depth + 1):
                    nxt = []
                    for st, parent_res in level:
                        rows = resources_of(session, st)
                        found.extend((st, r, parent_res) for r in rows)
                        children = {
                            c.id: c
                            for c in session.scalars(select(Stack).where(Stack.parent_id == st.id))
                        }
                        nxt.extend(
                            (children[r.physical_id], r.name)
                            for r in rows
                            if r.physical_id in children
                        )
                    level = nxt
                session.expunge_all()
            filters = {
                "type": lambda r: r.type,
                "name": lambda r: r.name,
                "action": lambda r: r.action,
                "id": lambda r: r.physical_id,
                "physical_resource_id": lambda r: r.physical_id,
            }
            for key, get in filters.items():
                vals = qp.getlist(key)
                if vals:
                    found = [f for f in found if get(f[1]) in vals]
            statuses = qp.getlist("status")
            if statuses:
                found = [
                    f for f in found
                    if f[1].status in statuses or f"{f[1].action}_{f[1].status}" in statuses
                ]  # fmt: skip
            out, req_by = [], {}
            for st, r, parent_res in found:
                if st.id not in req_by:
                    req_by[st.id] = req_by_of(st)
                view = resource_view(st.project_id, st, r, req_by[st.id], detail)
                if parent_res is not None:
                    view["parent_resource"] = parent_res
                out.append(view)
            return {"resources": out}

        return await run(do)

    def one_resource(session: Session, s: Stack, rname: str) -> StackResource:
        r = session.scalars(
            select(StackResource).where(StackResource.stack_id == s.id, StackResource.name == rname)
        ).first()
        if r is None:
            raise NotFound(
                f"The Resource ({rname}) could not be found in Stack {s.name}.",
                kind="ResourceNotFound",
            )
        return r

    @app.get(T + "/stacks/{name}/{sid}/resources/{rname}")
    async def show_resource(tenant: str, name: str, sid: str, rname: str, ctx: Ctx):
        enforce(ctx, "orchestration:show_resource")

        def do():
            with db.session() as session:
                s = get_stack(session, ctx, tenant, name, sid)
                r = one_resource(session, s, rname)
                session.expunge(r)
                session.expunge(s)
            return {"resource": resource_view(tenant, s, r, req_by_of(s), True)}

        return await run(do)

    @app.get(T + "/stacks/{name}/{sid}/resources/{rname}/metadata")
    def resource_metadata(tenant: str, name: str, sid: str, rname: str, ctx: Ctx):
        enforce(ctx, "orchestration:show_resource")
        with db.session() as session:
            s = get_stack(session, ctx, tenant, name, sid)
            return {"metadata": one_resource(session, s, rname).metadata_ or {}}

    @app.post(T + "/stacks/{name}/{sid}/resources/{rname}/signal")
    def signal(tenant: str, name: str, sid: str, rname: str, ctx: Ctx):
        enforce(ctx, "orchestration:signal_resource")
        with db.session() as session:
            s = get_stack(session, ctx, tenant, name, sid)
            r = one_resource(session, s, rname)
            raise BadRequest(
                f"Signal resource during {r.action} is not supported.",
                kind="ResourceActionNotSupported",
            )

    @app.patch(T + "/stacks/{name}/{sid}/resources/{rname}")
    async def mark_unhealthy(
        tenant: str, name: str, sid: str, rname: str, request: Request, ctx: Ctx
    ):
        enforce(ctx, "orchestration:mark_unhealthy")
        body = await _json(request)
        if not isinstance(body, dict) or "mark_unhealthy" not in body:
            raise BadRequest("Missing mandatory (mark_unhealthy) key from mark unhealthy request")
        extra = set(body) - {"mark_unhealthy", "resource_status_reason"}
        if extra:
            raise BadRequest(f"Invalid keys in resource mark unhealthy {sorted(extra)}")
        mark = body["mark_unhealthy"]
        if not isinstance(mark, bool):
            mark = str(mark).lower()
            if mark not in ("true", "false"):
                raise BadRequest(f'Unrecognized value "{mark}", acceptable values are: true, false')
            mark = mark == "true"
        reason = str(body.get("resource_status_reason") or "")

        def do():
            with db.session() as session:
                s = get_stack(session, ctx, tenant, name, sid)
                r = one_resource(session, s, rname)
                if mark:
                    r.action, r.status = "CHECK", "FAILED"
                    r.status_reason = reason or "Marked unhealthy"
                elif r.action == "CHECK" and r.status == "FAILED":
                    r.action, r.status, r.status_reason = "CHECK", "COMPLETE", reason
                else:
                    return
                r.updated_at = utcnow()
                eng.add_event(
                    session,
                    s.id,
                    r.name,
                    r.type,
                    r.physical_id,
                    r.action,
                    r.status,
                    r.status_reason,
                    r.properties,
                )

        await run(do)
        return Response(status_code=200)

    # ---- events ---------------------------------------------------------------------

    def do_events(ctx, tenant, name, sid, request: Request, rname: str | None) -> dict:
        qp = request.query_params
        with db.session() as session:
            s = get_stack(session, ctx, tenant, name, sid)
            q = select(Event).where(Event.stack_id == s.id)
            if rname is not None:
                one_resource(session, s, rname) if rname != s.name else None
                q = q.where(Event.resource_name == rname)
            for key, col in (
                ("resource_name", Event.resource_name),
                ("resource_type", Event.resource_type),
                ("resource_action", Event.action),
            ):
                vals = qp.getlist(key)
                if vals:
                    q = q.where(col.in_(vals))
            statuses = qp.getlist("resource_status")
            if statuses:
                plain = [st.split("_")[-1] for st in statuses]
                q = q.where(or_(Event.status.in_(plain)))
            sort_dir = qp.get("sort_dir")
            keys = qp.getlist("sort_keys")
            desc = sort_dir == "desc" or (sort_dir is None and not keys)
            if sort_dir not in (None, "asc", "desc"):
                raise BadRequest("Unknown sort direction, must be one of: asc, desc")
            q = q.order_by(Event.seq.desc() if desc else Event.seq)
            marker = qp.get("marker")
            if marker:
                seq = session.scalar(select(Event.seq).where(Event.id == marker))
                if seq is None:
                    raise NotFound(
                        f"The Event ({marker}) could not be found.", kind="EntityNotFound"
                    )
                q = q.where(Event.seq < seq if desc else Event.seq > seq)
            limit = qp.get("limit")
            if limit is not None:
                try:
                    q = q.limit(max(0, int(limit)))
                except ValueError:
                    raise BadRequest("limit must be an integer") from None
            events = list(session.scalars(q))
            if rname is not None and not events and not marker:
                raise NotFound(f"No events found for resource {rname}", kind="NotFound")
            return {"events": [event_view(tenant, s, e, False) for e in events]}

    @app.get(T + "/stacks/{name}/{sid}/events")
    async def list_events(tenant: str, name: str, sid: str, request: Request, ctx: Ctx):
        enforce(ctx, "orchestration:list_events")
        return await run(do_events, ctx, tenant, name, sid, request, None)

    @app.get(T + "/stacks/{name}/{sid}/resources/{rname}/events")
    async def resource_events(
        tenant: str, name: str, sid: str, rname: str, request: Request, ctx: Ctx
    ):
        enforce(ctx, "orchestration:list_events")
        return await run(do_events, ctx, tenant, name, sid, request, rname)

    @app.get(T + "/stacks/{name}/{sid}/resources/{rname}/events/{eid}")
    def show_event(tenant: str, name: str, sid: str, rname: str, eid: str, ctx: Ctx):
        enforce(ctx, "orchestration:show_event")
        with db.session() as session:
            s = get_stack(session, ctx, tenant, name, sid)
            e = session.scalars(
                select(Event).where(
                    Event.stack_id == s.id, Event.id == eid, Event.resource_name == rname
                )
            ).first()
            if e is None:
                raise NotFound(f"The Event ({eid}) could not be found.", kind="EntityNotFound")
            return {"event": event_view(tenant, s, e, True)}

    software.install(app, db, T, tenant_ok, _json)

    # last: catch-all for name lookups of deeper paths
    @app.api_route(
        T + "/stacks/{ident}/{sub}/{rest:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def deep_lookup(tenant: str, ident: str, sub: str, rest: str, request: Request, ctx: Ctx):
        if sub in LOOKUP_SUBPATHS:
            enforce(ctx, "orchestration:lookup_stack")
            s = await run(do_lookup, ctx, tenant, ident)
            return redirect(request, tenant, s, f"{sub}/{rest}")
        raise NotFound(f"The resource could not be found: {request.url.path}")

    async def start_engine():
        await engine.runner.run()

    return ServiceApp(
        prefix=PREFIX,
        app=app,
        render_error=heat_error,
        is_public=_is_public,
        catalog=ServiceEntry(
            "orchestration", "heat", PREFIX + "/v1/{project_id}", "Orchestration service"
        ),
        background=[start_engine],
    )


class _Names:
    def ref(self, name: str) -> Any:
        return name

    def attr(self, name: str, attr: str) -> Any:
        return None

    def all_attrs(self, name: str) -> dict:
        return {}


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None
