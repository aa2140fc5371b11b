"""Identity API v3 (Keystone), mounted under /identity."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Body, Depends, FastAPI, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse

from dockyard.api.bodies import member, parse
from dockyard.api.context import RequestContext, request_context
from dockyard.api.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    install_error_handlers,
    keystone_error,
)
from dockyard.api.policy import enforce
from dockyard.api.service import ServiceApp
from dockyard.identity import service as ids
from dockyard.identity.catalog import (
    ServiceEntry,
    build_catalog,
    endpoint_bodies,
    service_body,
)
from dockyard.identity.models import (
    ApplicationCredential,
    Assignment,
    Domain,
    Project,
    Role,
    User,
)
from dockyard.identity.passwords import hash_password, verify_password
from dockyard.runtime import Runtime

Ctx = Annotated[RequestContext, Depends(request_context)]
JsonBody = Annotated[dict, Body()]

V3_UPDATED = "2024-04-03T00:00:00Z"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


Name = Annotated[str, Field(min_length=1, max_length=64)]


class ProjectCreate(_Loose):
    name: Name
    domain_id: str | None = None
    description: str = ""
    enabled: bool = True
    is_domain: bool = False
    parent_id: str | None = None
    tags: list[str] = []

    @field_validator("name")
    @classmethod
    def _no_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


class ProjectUpdate(_Loose):
    name: Name | None = None
    description: str | None = None
    enabled: bool | None = None
    tags: list[str] | None = None


class UserCreate(_Loose):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    domain_id: str | None = None
    password: str | None = None
    email: str | None = None
    description: str = ""
    enabled: bool = True
    default_project_id: str | None = None


class UserUpdate(_Loose):
    name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    password: str | None = None
    email: str | None = None
    description: str | None = None
    enabled: bool | None = None
    default_project_id: str | None = None


class PasswordChange(_Loose):
    password: Annotated[str, Field(min_length=1)]
    original_password: str


class RoleCreate(_Loose):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    description: str = ""


class AppCredCreate(_Loose):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    secret: str | None = None
    description: str = ""
    expires_at: datetime | None = None
    roles: list[dict] | None = None
    unrestricted: bool = False


def build(runtime: Runtime) -> ServiceApp:
    settings = runtime.settings
    base = settings.base_url + "/identity"
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app, keystone_error)

    def version_doc() -> dict:
        return {
            "id": "v3.14",
            "status": "stable",
            "updated": V3_UPDATED,
            "links": [{"rel": "self", "href": base + "/v3/"}],
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
            ],
        }

    def link(path: str) -> dict:
        return {"self": f"{base}/v3/{path}"}

    def collection(name: str, items: list[dict], path: str) -> dict:
        return {name: items, "links": {"self": f"{base}/v3/{path}", "previous": None, "next": None}}

    def domain_view(d: Domain) -> dict:
        return {
            "id": d.id,
            "name": d.name,
            "description": d.description,
            "enabled": d.enabled,
            "tags": [],
            "options": {},
            "links": link(f"domains/{d.id}"),
        }

    def project_view(p: Project) -> dict:
        return {
            "id": p.id,
            "name": p.name,
            "domain_id": p.domain_id,
            "description": p.description,
            "enabled": p.enabled,
            "is_domain": False,
            "parent_id": p.domain_id,
            "tags": list(p.tags or []),
            "options": {},
            "links": link(f"projects/{p.id}"),
        }

    def user_view(u: User) -> dict:
        view = {
            "id": u.id,
            "name": u.name,
            "domain_id": u.domain_id,
            "enabled": u.enabled,
            "password_expires_at": None,
            "options": {},
            "links": link(f"users/{u.id}"),
        }
        if u.email:
            view["email"] = u.email
        if u.description:
            view["description"] = u.description
        if u.default_project_id:
            view["default_project_id"] = u.default_project_id
        return view

    def role_view(r: Role) -> dict:
        return {
            "id": r.id,
            "name": r.name,
            "domain_id": None,
            "description": r.description,
            "options": {},
            "links": link(f"roles/{r.id}"),
        }

    def catalog_for(project_id: str | None) -> list[dict]:
        return build_catalog(settings.base_url, settings.region, runtime.catalog, project_id)

    def subject_info(session: Session, subject: str | None) -> ids.TokenInfo:
        if not subject:
            raise BadRequest("The X-Subject-Token header is required.")
        try:
            return ids.validate(session, runtime.keys, subject)
        except Unauthorized as exc:
            raise NotFound(f"Could not find token: {subject[:12]}... ({exc.message})") from exc

    # ---- discovery ---------------------------------------------------------------------

    @app.get("/")
    def versions() -> JSONResponse:
        return JSONResponse({"versions": {"values": [version_doc()]}}, status_code=300)

    @app.get("/v3")
    @app.get("/v3/")
    def v3() -> dict:
        return {"version": version_doc()}

    # ---- tokens ------------------------------------------------------------------------

    @app.post("/v3/auth/tokens", status_code=201)
    def issue_token(body: JsonBody, nocatalog: str | None = None) -> Response:
        auth = member(body, "auth")
        with runtime.db.session() as session:
            info = ids.authenticate(session, runtime.keys, auth, settings.token_ttl)
            scoped = info.project is not None or info.domain is not None
            catalog = catalog_for(info.payload.project_id) if scoped else []
            body_out = ids.token_body(info, None if nocatalog is not None else catalog)
        return JSONResponse(body_out, status_code=201, headers={"X-Subject-Token": info.token})

    @app.api_route("/v3/auth/tokens", methods=["GET", "HEAD"])
    def check_token(
        request: Request,
        ctx: Ctx,
        x_subject_token: Annotated[str | None, Header()] = None,
        nocatalog: str | None = None,
    ) -> Response:
        with runtime.db.session() as session:
            info = subject_info(session, x_subject_token)
            if info.user.id != ctx.user_id and not ctx.is_admin:
                raise Forbidden("Only admins may validate the tokens of other users.")
            if request.method == "HEAD":
                return Response(status_code=200, headers={"X-Subject-Token": info.token})
            catalog = None if nocatalog is not None else catalog_for(info.payload.project_id)
            return JSONResponse(
                ids.token_body(info, catalog), headers={"X-Subject-Token": info.token}
            )

    @app.delete("/v3/auth/tokens", status_code=204)
    def revoke_token(ctx: Ctx, x_subject_token: Annotated[str | None, Header()] = None) -> Response:
        with runtime.db.session() as session:
            info = subject_info(session, x_subject_token)
            if info.user.id != ctx.user_id and not ctx.is_admin:
                raise Forbidden("Only admins may revoke the tokens of other users.")
            ids.revoke_token(session, info.payload)
        return Response(status_code=204)

    @app.get("/v3/auth/catalog")
    def auth_catalog(ctx: Ctx) -> dict:
        if ctx.project_id is None and ctx.domain_id is None:
            raise Forbidden("An unscoped token has no catalog.")
        return {"catalog": catalog_for(ctx.project_id), "links": link("auth/catalog")}

    @app.get("/v3/auth/projects")
    def auth_projects(ctx: Ctx) -> dict:
        with runtime.db.session() as session:
            projects = _user_projects(session, ctx.user_id)
            return collection("projects", [project_view(p) for p in projects], "auth/projects")

    @app.get("/v3/auth/domains")
    def auth_domains(ctx: Ctx) -> dict:
        with runtime.db.session() as session:
            ids_ = session.scalars(
                select(Assignment.target_id).where(
                    Assignment.user_id == ctx.user_id, Assignment.target_type == "domain"
                )
            ).all()
            domains = session.scalars(select(Domain).where(Domain.id.in_(set(ids_)))).all()
            return collection("domains", [domain_view(d) for d in domains], "auth/domains")

    # ---- domains -----------------------------------------------------------------------

    @app.get("/v3/domains")
    def list_domains(ctx: Ctx, name: str | None = None, enabled: str | None = None) -> dict:
        enforce(ctx, "identity:list_domains")
        with runtime.db.session() as session:
            q = select(Domain).order_by(Domain.name)
            if name is not None:
                q = q.where(Domain.name == name)
            if enabled is not None:
                q = q.where(Domain.enabled == _truthy(enabled))
            return collection("domains", [domain_view(d) for d in session.scalars(q)], "domains")

    @app.get("/v3/domains/{domain_id}")
    def show_domain(domain_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "identity:get_domain")
        with runtime.db.session() as session:
            d = ids.get_or_404(session, Domain, domain_id, "domain")
            if not ctx.is_admin and ctx.user_domain_id != d.id and ctx.project_domain_id != d.id:
                raise Forbidden("You may only see your own domain.")
            return {"domain": domain_view(d)}

    # ---- projects ----------------------------------------------------------------------

    @app.get("/v3/projects")
    def list_projects(
        ctx: Ctx,
        name: str | None = None,
        domain_id: str | None = None,
        enabled: str | None = None,
    ) -> dict:
        enforce(ctx, "identity:list_projects")
        with runtime.db.session() as session:
            q = select(Project).order_by(Project.name)
            if name is not None:
                q = q.where(Project.name == name)
            if domain_id is not None:
                q = q.where(Project.domain_id == domain_id)
            if enabled is not None:
                q = q.where(Project.enabled == _truthy(enabled))
            items = [project_view(p) for p in session.scalars(q)]
            return collection("projects", items, "projects")

    @app.post("/v3/projects", status_code=201)
    def create_project(body: JsonBody, ctx: Ctx) -> dict:
        enforce(ctx, "identity:create_project")
        req = parse(ProjectCreate, member(body, "project"), "project")
        if req.is_domain:
            raise BadRequest("Projects acting as domains are not supported.")
        with runtime.db.session() as session:
            domain_id = req.domain_id or ids.DEFAULT_DOMAIN_ID
            if req.parent_id and req.parent_id != domain_id:
                raise BadRequest("Nested projects are not supported; parent_id must be the domain.")
            ids.get_or_404(session, Domain, domain_id, "domain")
            _unique(session, Project, domain_id, req.name, "project")
            p = Project(
                name=req.name,
                domain_id=domain_id,
                description=req.description,
                enabled=req.enabled,
                tags=req.tags,
            )
            session.add(p)
            session.flush()
            return {"project": project_view(p)}

    @app.get("/v3/projects/{project_id}")
    def show_project(project_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "identity:get_project", {"id": project_id})
        with runtime.db.session() as session:
            return {
                "project": project_view(ids.get_or_404(session, Project, project_id, "project"))
            }

    @app.patch("/v3/projects/{project_id}")
    def update_project(project_id: str, body: JsonBody, ctx: Ctx) -> dict:
        enforce(ctx, "identity:update_project")
        req = parse(ProjectUpdate, member(body, "project"), "project")
        with runtime.db.session() as session:
            p = ids.get_or_404(session, Project, project_id, "project")
            if req.name is not None and req.name != p.name:
                _unique(session, Project, p.domain_id, req.name, "project")
                p.name = req.name
            if req.description is not None:
                p.description = req.description
            if req.enabled is not None:
                p.enabled = req.enabled
            if req.tags is not None:
                p.tags = req.tags
            return {"project": project_view(p)}

    @app.delete("/v3/projects/{project_id}", status_code=204)
    def delete_project(project_id: str, ctx: Ctx) -> Response:
        enforce(ctx, "identity:delete_project")
        with runtime.db.session() as session:
            p = ids.get_or_404(session, Project, project_id, "project")
            if ctx.project_id == p.id:
                raise Forbidden("You cannot delete the project your token is scoped to.")
            session.execute(
                delete(Assignment).where(
                    Assignment.target_type == "project", Assignment.target_id == p.id
                )
            )
            session.delete(p)
        return Response(status_code=204)

    # ---- users -------------------------------------------------------------------------

    @app.get("/v3/users")
    def list_users(
        ctx: Ctx,
        name: str | None = None,
        domain_id: str | None = None,
        enabled: str | None = None,
    ) -> dict:
        enforce(ctx, "identity:list_users")
        with runtime.db.session() as session:
            q = select(User).order_by(User.name)
            if name is not None:
                q = q.where(User.name == name)
            if domain_id is not None:
                q = q.where(User.domain_id == domain_id)
            if enabled is not None:
                q = q.where(User.enabled == _truthy(enabled))
            return collection("users", [user_view(u) for u in session.scalars(q)], "users")

    @app.post("/v3/users", status_code=201)
    def create_user(body: JsonBody, ctx: Ctx) -> dict:
        enforce(ctx, "identity:create_user")
        req = parse(UserCreate, member(body, "user"), "user")
        with runtime.db.session() as session:
            domain_id = req.domain_id or ids.DEFAULT_DOMAIN_ID
            ids.get_or_404(session, Domain, domain_id, "domain")
            _unique(session, User, domain_id, req.name, "user")
            if req.default_project_id:
                ids.get_or_404(session, Project, req.default_project_id, "project")
            u = User(
                name=req.name,
                domain_id=domain_id,
                password_hash=hash_password(req.password) if req.password else None,
                email=req.email,
                description=req.description,
                enabled=req.enabled,
                default_project_id=req.default_project_id,
            )
            session.add(u)
            session.flush()
            return {"user": user_view(u)}

    @app.get("/v3/users/{user_id}")
    def show_user(user_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "identity:get_user", {"user_id": user_id})
        with runtime.db.session() as session:
            return {"user": user_view(ids.get_or_404(session, User, user_id, "user"))}

    @app.patch("/v3/users/{user_id}")
    def update_user(user_id: str, body: JsonBody, ctx: Ctx) -> dict:
        enforce(ctx, "identity:update_user", {"user_id": user_id})
        req = parse(UserUpdate, member(body, "user"), "user")
        with runtime.db.session() as session:
            u = ids.get_or_404(session, User, user_id, "user")
            if req.name is not None and req.name != u.name:
                _unique(session, User, u.domain_id, req.name, "user")
                u.name = req.name
            if req.password is not None:
                u.password_hash = hash_password(req.password)
                ids.revoke_user_tokens(session, u.id)
            if req.enabled is False:
                ids.revoke_user_tokens(session, u.id)
            for attr in ("email", "description", "enabled", "default_project_id"):
                value = getattr(req, attr)
                if value is not None:
                    setattr(u, attr, value)
            return {"user": user_view(u)}

    @app.delete("/v3/users/{user_id}", status_code=204)
    def delete_user(user_id: str, ctx: Ctx) -> Response:
        enforce(ctx, "identity:delete_user")
        with runtime.db.session() as session:
            u = ids.get_or_404(session, User, user_id, "user")
            if u.id == ctx.user_id:
                raise Forbidden("You cannot delete yourself.")
            session.execute(delete(Assignment).where(Assignment.user_id == u.id))
            session.execute(
                delete(ApplicationCredential).where(ApplicationCredential.user_id == u.id)
            )
            session.delete(u)
        return Response(status_code=204)

    @app.post("/v3/users/{user_id}/password", status_code=204)
    def change_password(user_id: str, body: JsonBody, ctx: Ctx) -> Response:
        enforce(ctx, "identity:change_password", {"user_id": user_id})
        req = parse(PasswordChange, member(body, "user"), "user")
        with runtime.db.session() as session:
            u = ids.get_or_404(session, User, user_id, "user")
            if not verify_password(u.password_hash, req.original_password):
                raise Unauthorized("The original password is not correct.")
            u.password_hash = hash_password(req.password)
            ids.revoke_user_tokens(session, u.id)
        return Response(status_code=204)

    @app.get("/v3/users/{user_id}/projects")
    def user_projects(user_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "identity:list_user_projects", {"user_id": user_id})
        with runtime.db.session() as session:
            ids.get_or_404(session, User, user_id, "user")
            items = [project_view(p) for p in _user_projects(session, user_id)]
            return collection("projects", items, f"users/{user_id}/projects")

    # ---- roles -------------------------------------------------------------------------

    @app.get("/v3/roles")
    def list_roles(ctx: Ctx, name: str | None = None) -> dict:
        enforce(ctx, "identity:list_roles")
        with runtime.db.session() as session:
            q = select(Role).order_by(Role.name)
            if name is not None:
                q = q.where(Role.name == name)
            return collection("roles", [role_view(r) for r in session.scalars(q)], "roles")

    @app.post("/v3/roles", status_code=201)
    def create_role(body: JsonBody, ctx: Ctx) -> dict:
        enforce(ctx, "identity:create_role")
        req = parse(RoleCreate, member(body, "role"), "role")
        with runtime.db.session() as session:
            if session.scalar(select(Role).where(Role.name == req.name)):
                raise Conflict(f"Conflict occurred attempting to store role - {req.name} exists.")
            r = Role(name=req.name, description=req.description)
            session.add(r)
            session.flush()
            return {"role": role_view(r)}

    @app.get("/v3/roles/{role_id}")
    def show_role(role_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "identity:get_role")
        with runtime.db.session() as session:
            return {"role": role_view(ids.get_or_404(session, Role, role_id, "role"))}

    @app.delete("/v3/roles/{role_id}", status_code=204)
    def delete_role(role_id: str, ctx: Ctx) -> Response:
        enforce(ctx, "identity:delete_role")
        with runtime.db.session() as session:
            r = ids.get_or_404(session, Role, role_id, "role")
            if r.name in ("admin", "member", "reader"):
                raise Forbidden(f"The built-in role {r.name} cannot be deleted.")
            session.execute(delete(Assignment).where(Assignment.role_id == r.id))
            session.delete(r)
        return Response(status_code=204)

    # ---- grants ------------------------------------------------------------------------

    def grant_target(session: Session, target_type: str, target_id: str) -> None:
        model = Project if target_type == "project" else Domain
        ids.get_or_404(session, model, target_id, target_type)

    def find_grant(session: Session, t_type: str, t_id: str, user_id: str, role_id: str):
        grant_target(session, t_type, t_id)
        ids.get_or_404(session, User, user_id, "user")
        ids.get_or_404(session, Role, role_id, "role")
        return session.scalar(
            select(Assignment).where(
                Assignment.user_id == user_id,
                Assignment.target_type == t_type,
                Assignment.target_id == t_id,
                Assignment.role_id == role_id,
            )
        )

    for t_type, plural in (("project", "projects"), ("domain", "domains")):

        def routes(t_type: str = t_type, plural: str = plural) -> None:
            prefix = f"/v3/{plural}/{{target_id}}/users/{{user_id}}/roles"

            @app.get(prefix)
            def list_grants(target_id: str, user_id: str, ctx: Ctx) -> dict:
                enforce(ctx, "identity:list_grants")
                with runtime.db.session() as session:
                    grant_target(session, t_type, target_id)
                    roles = session.scalars(
                        select(Role)
                        .join(Assignment, Assignment.role_id == Role.id)
                        .where(
                            Assignment.user_id == user_id,
                            Assignment.target_type == t_type,
                            Assignment.target_id == target_id,
                        )
                    ).all()
                    path = f"{plural}/{target_id}/users/{user_id}/roles"
                    return collection("roles", [role_view(r) for r in roles], path)

            @app.put(prefix + "/{role_id}", status_code=204)
            def add_grant(target_id: str, user_id: str, role_id: str, ctx: Ctx) -> Response:
                enforce(ctx, "identity:create_grant")
                with runtime.db.session() as session:
                    if find_grant(session, t_type, target_id, user_id, role_id) is None:
                        session.add(
                            Assignment(
                                user_id=user_id,
                                target_type=t_type,
                                target_id=target_id,
                                role_id=role_id,
                            )
                        )
                return Response(status_code=204)

            @app.api_route(prefix + "/{role_id}", methods=["GET", "HEAD"])
            def check_grant(target_id: str, user_id: str, role_id: str, ctx: Ctx) -> Response:
                enforce(ctx, "identity:check_grant")
                with runtime.db.session() as session:
                    if find_grant(session, t_type, target_id, user_id, role_id) is None:
                        raise NotFound(
                            f"Could not find role assignment with role: {role_id}, "
                            f"user: {user_id}, {t_type}: {target_id}."
                        )
                return Response(status_code=204)

            @app.delete(prefix + "/{role_id}", status_code=204)
            def remove_grant(target_id: str, user_id: str, role_id: str, ctx: Ctx) -> Response:
                enforce(ctx, "identity:revoke_grant")
                with runtime.db.session() as session:
                    grant = find_grant(session, t_type, target_id, user_id, role_id)
                    if grant is None:
                        raise NotFound(
                            f"Could not find role assignment with role: {role_id}, "
                            f"user: {user_id}, {t_type}: {target_id}."
                        )
                    session.delete(grant)
                return Response(status_code=204)

        routes()

    @app.get("/v3/role_assignments")
    def role_assignments(request: Request, ctx: Ctx) -> dict:
        q = request.query_params
        user_id = q.get("user.id")
        if user_id == ctx.user_id and not ctx.is_admin:
            enforce(ctx, "identity:list_role_assignments_for_self", {"user_id": user_id})
        else:
            enforce(ctx, "identity:list_role_assignments")
        include_names = _truthy(q.get("include_names", "false"))
        effective = "effective" in q and q.get("effective", "") in ("", "1", "true", "True")
        with runtime.db.session() as session:
            stmt = select(Assignment)
            if user_id:
                stmt = stmt.where(Assignment.user_id == user_id)
            if q.get("scope.project.id"):
                stmt = stmt.where(
                    Assignment.target_type == "project",
                    Assignment.target_id == q["scope.project.id"],
                )
            if q.get("scope.domain.id"):
                stmt = stmt.where(
                    Assignment.target_type == "domain",
                    Assignment.target_id == q["scope.domain.id"],
                )
            if q.get("group.id"):
                return collection("role_assignments", [], "role_assignments")
            roles = {r.id: r for r in session.scalars(select(Role))}
            by_name = {r.name: r for r in roles.values()}
            rows: list[tuple[Assignment, Role]] = []
            for a in session.scalars(stmt):
                granted = [roles[a.role_id]]
                if effective:
                    granted = [
                        by_name[n] for n in ids.expand_roles({granted[0].name}) if n in by_name
                    ]
                rows.extend((a, r) for r in granted)
            if q.get("role.id"):
                rows = [(a, r) for a, r in rows if r.id == q["role.id"]]
            seen: set[tuple] = set()
            items = []
            for a, r in rows:
                key = (a.user_id, a.target_type, a.target_id, r.id)
                if key in seen:
                    continue
                seen.add(key)
                items.append(_assignment_view(session, a, r, include_names, base))
            return collection("role_assignments", items, "role_assignments")

    # ---- catalog (read-only: the catalog is what this process serves) -------------------

    @app.get("/v3/services")
    def list_services(ctx: Ctx, type: str | None = None) -> dict:
        enforce(ctx, "identity:list_catalog")
        items = [service_body(s) for s in runtime.catalog if type is None or s.type == type]
        return collection("services", items, "services")

    @app.get("/v3/services/{service_id}")
    def show_service(service_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "identity:list_catalog")
        for s in runtime.catalog:
            if s.id == service_id:
                return {"service": service_body(s)}
        raise NotFound(f"Could not find service: {service_id}.")

    @app.get("/v3/endpoints")
    def list_endpoints(
        ctx: Ctx, service_id: str | None = None, interface: str | None = None
    ) -> dict:
        enforce(ctx, "identity:list_catalog")
        items = [
            e
            for s in runtime.catalog
            for e in endpoint_bodies(settings.base_url, settings.region, s)
            if (service_id is None or e["service_id"] == service_id)
            and (interface is None or e["interface"] == interface)
        ]
        return collection("endpoints", items, "endpoints")

    @app.get("/v3/regions")
    def list_regions(ctx: Ctx) -> dict:
        region = {
            "id": settings.region,
            "description": "",
            "parent_region_id": None,
            "links": link(f"regions/{settings.region}"),
        }
        return collection("regions", [region], "regions")

    # ---- application credentials -------------------------------------------------------

    def app_cred_view(ac: ApplicationCredential, secret: str | None = None) -> dict:
        view = {
            "id": ac.id,
            "name": ac.name,
            "user_id": ac.user_id,
            "project_id": ac.project_id,
            "description": ac.description,
            "roles": [{"name": n} for n in ac.roles],
            "unrestricted": ac.unrestricted,
            "expires_at": ids.iso(ac.expires_at) if ac.expires_at else None,
            "access_rules": [],
            "links": link(f"users/{ac.user_id}/application_credentials/{ac.id}"),
        }
        if secret is not None:
            view["secret"] = secret
        return view

    @app.post("/v3/users/{user_id}/application_credentials", status_code=201)
    def create_app_cred(user_id: str, body: JsonBody, ctx: Ctx) -> dict:
        enforce(ctx, "identity:manage_app_credentials", {"user_id": user_id})
        if ctx.project_id is None:
            raise Forbidden("Application credentials need a project-scoped token.")
        if "application_credential" in ctx.methods:
            raise Forbidden("An application credential cannot create another one.")
        req = parse(AppCredCreate, member(body, "application_credential"), "application_credential")
        wanted = {r.get("name") for r in req.roles or [] if isinstance(r, dict)} or set(ctx.roles)
        if not wanted <= ctx.roles:
            raise Forbidden(f"You do not hold the role(s) {', '.join(sorted(wanted - ctx.roles))}.")
        expires = req.expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        secret = req.secret or secrets.token_urlsafe(48)
        with runtime.db.session() as session:
            exists = session.scalar(
                select(ApplicationCredential).where(
                    ApplicationCredential.user_id == user_id,
                    ApplicationCredential.name == req.name,
                )
            )
            if exists:
                raise Conflict(f"An application credential named {req.name} already exists.")
            ac = ApplicationCredential(
                name=req.name,
                user_id=user_id,
                project_id=ctx.project_id,
                secret_hash=hash_password(secret),
                description=req.description,
                roles=sorted(wanted),
                unrestricted=req.unrestricted,
                expires_at=expires,
            )
            session.add(ac)
            session.flush()
            return {"application_credential": app_cred_view(ac, secret)}

    @app.get("/v3/users/{user_id}/application_credentials")
    def list_app_creds(user_id: str, ctx: Ctx, name: str | None = None) -> dict:
        enforce(ctx, "identity:read_app_credentials", {"user_id": user_id})
        with runtime.db.session() as session:
            q = select(ApplicationCredential).where(ApplicationCredential.user_id == user_id)
            if name is not None:
                q = q.where(ApplicationCredential.name == name)
            items = [app_cred_view(ac) for ac in session.scalars(q)]
            path = f"users/{user_id}/application_credentials"
            return collection("application_credentials", items, path)

    @app.get("/v3/users/{user_id}/application_credentials/{cred_id}")
    def show_app_cred(user_id: str, cred_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "identity:read_app_credentials", {"user_id": user_id})
        with runtime.db.session() as session:
            ac = session.get(ApplicationCredential, cred_id)
            if ac is None or ac.user_id != user_id:
                raise NotFound(f"Could not find application credential: {cred_id}.")
            return {"application_credential": app_cred_view(ac)}

    @app.delete("/v3/users/{user_id}/application_credentials/{cred_id}", status_code=204)
    def delete_app_cred(user_id: str, cred_id: str, ctx: Ctx) -> Response:
        enforce(ctx, "identity:manage_app_credentials", {"user_id": user_id})
        with runtime.db.session() as session:
            ac = session.get(ApplicationCredential, cred_id)
            if ac is None or ac.user_id != user_id:
                raise NotFound(f"Could not find application credential: {cred_id}.")
            session.delete(ac)
        return Response(status_code=204)

    def is_public(method: str, path: str) -> bool:
        if path in ("/", "/v3", "/v3/"):
            return method in ("GET", "HEAD")
        return path == "/v3/auth/tokens" and method == "POST"

    return ServiceApp(
        prefix="/identity",
        app=app,
        render_error=keystone_error,
        is_public=is_public,
        catalog=ServiceEntry("identity", "keystone", "/identity/v3", "Identity"),
    )


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def _unique(session: Session, model: type, domain_id: str, name: str, what: str) -> None:
    found = session.scalar(select(model).where(model.domain_id == domain_id, model.name == name))
    if found is not None:
        raise Conflict(f"Conflict occurred attempting to store {what} - Duplicate entry: {name}.")


def _user_projects(session: Session, user_id: str) -> list[Project]:
    pids = session.scalars(
        select(Assignment.target_id).where(
            Assignment.user_id == user_id, Assignment.target_type == "project"
        )
    ).all()
    return list(
        session.scalars(
            select(Project).where(Project.id.in_(set(pids)), Project.enabled).order_by(Project.name)
        )
    )


def _assignment_view(
    session: Session, a: Assignment, role: Role, include_names: bool, base: str
) -> dict:
    user: dict = {"id": a.user_id}
    scope_obj: dict = {"id": a.target_id}
    role_obj: dict = {"id": role.id}
    if include_names:
        u = session.get(User, a.user_id)
        if u is not None:
            d = session.get(Domain, u.domain_id)
            user.update(name=u.name, domain={"id": u.domain_id, "name": d.name if d else ""})
        role_obj["name"] = role.name
        if a.target_type == "project":
            p = session.get(Project, a.target_id)
            if p is not None:
                d = session.get(Domain, p.domain_id)
                scope_obj.update(
                    name=p.name, domain={"id": p.domain_id, "name": d.name if d else ""}
                )
        else:
            d = session.get(Domain, a.target_id)
            if d is not None:
                scope_obj["name"] = d.name
    plural = "projects" if a.target_type == "project" else "domains"
    return {
        "role": role_obj,
        "user": user,
        "scope": {a.target_type: scope_obj},
        "links": {
            "assignment": f"{base}/v3/{plural}/{a.target_id}/users/{a.user_id}/roles/{role.id}"
        },
    }
