"""Software configs and deployments (Heat API): stored records that servers fetch as
metadata. dockyard runs no in-server agent, so deployments change only when updated."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI, Request
from sqlalchemy import select
from starlette.responses import Response

from dockyard.api.context import request_context
from dockyard.api.errors import BadRequest, NotFound
from dockyard.api.policy import enforce
from dockyard.db.base import utcnow
from dockyard.orchestration.models import SoftwareConfig, SoftwareDeployment


def _time(t: datetime | None) -> str | None:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else None


def config_view(c: SoftwareConfig) -> dict:
    return {
        "id": c.id,
        "name": c.name,
        "group": c.group,
        "config": c.config,
        "inputs": c.inputs or [],
        "outputs": c.outputs or [],
        "options": c.options or {},
        "creation_time": _time(c.created_at),
        "project": c.project_id,
    }


def deployment_view(d: SoftwareDeployment) -> dict:
    return {
        "id": d.id,
        "config_id": d.config_id,
        "server_id": d.server_id,
        "action": d.action,
        "status": d.status,
        "status_reason": d.status_reason,
        "input_values": d.input_values or {},
        "output_values": d.output_values or {},
        "creation_time": _time(d.created_at),
        "updated_time": _time(d.updated_at),
    }


def install(app: FastAPI, db, prefix: str, tenant_ok: Callable, body_of: Callable) -> None:
    """Add the /software_configs and /software_deployments routes under `prefix`."""

    def scoped(session, ctx, model, ident: str, what: str):
        row = session.get(model, ident)
        if row is None or (not ctx.is_admin and row.project_id != ctx.project_id):
            raise NotFound(f"The {what} ({ident}) could not be found.", kind="NotFound")
        return row

    def text(body: dict, key: str, default: str = "") -> str:
        value = body.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise BadRequest(f"{key} must be a string")
        return value

    @app.post(prefix + "/software_configs")
    async def create_config(tenant: str, request: Request):
        ctx = request_context(request)
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:software_configs")
        body = await body_of(request)
        if not isinstance(body, dict) or not body.get("name"):
            raise BadRequest("name is required for a software config")
        with db.session() as s:
            c = SoftwareConfig(
                id=str(uuid.uuid4()),
                project_id=ctx.project_id or "",
                name=text(body, "name"),
                group=text(body, "group", "Heat::Ungrouped") or "Heat::Ungrouped",
                config=text(body, "config"),
                inputs=list(body.get("inputs") or []),
                outputs=list(body.get("outputs") or []),
                options=dict(body.get("options") or {}),
                created_at=utcnow(),
            )
            s.add(c)
            s.flush()
            return {"software_config": config_view(c)}

    @app.get(prefix + "/software_configs")
    def list_configs(tenant: str, request: Request):
        ctx = request_context(request)
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:software_configs")
        with db.session() as s:
            q = select(SoftwareConfig).order_by(SoftwareConfig.created_at, SoftwareConfig.id)
            if not ctx.is_admin:
                q = q.where(SoftwareConfig.project_id == ctx.project_id)
            items = [
                {k: v for k, v in config_view(c).items() if k != "config"} for c in s.scalars(q)
            ]
        marker = request.query_params.get("marker")
        if marker:
            ids = [i["id"] for i in items]
            items = items[ids.index(marker) + 1 :] if marker in ids else []
        limit = request.query_params.get("limit")
        if limit and limit.isdigit():
            items = items[: int(limit)]
        return {"software_configs": items}

    @app.get(prefix + "/software_configs/{config_id}")
    def show_config(tenant: str, config_id: str, request: Request):
        ctx = request_context(request)
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:software_configs")
        with db.session() as s:
            return {
                "software_config": config_view(
                    scoped(s, ctx, SoftwareConfig, config_id, "Software Config")
                )
            }

    @app.delete(prefix + "/software_configs/{config_id}")
    def delete_config(tenant: str, config_id: str, request: Request):
        ctx = request_context(request)
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:software_configs")
        with db.session() as s:
            s.delete(scoped(s, ctx, SoftwareConfig, config_id, "Software Config"))
        return Response(status_code=204)

    @app.post(prefix + "/software_deployments")
    async def create_deployment(tenant: str, request: Request):
        ctx = request_context(request)
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:software_deployments")
        body = await body_of(request)
        if not isinstance(body, dict) or not body.get("config_id") or not body.get("server_id"):
            raise BadRequest("config_id and server_id are required for a software deployment")
        with db.session() as s:
            scoped(s, ctx, SoftwareConfig, str(body["config_id"]), "Software Config")
            d = SoftwareDeployment(
                id=str(uuid.uuid4()),
                project_id=ctx.project_id or "",
                config_id=str(body["config_id"]),
                server_id=text(body, "server_id"),
                action=text(body, "action", "INIT") or "INIT",
                status=text(body, "status", "COMPLETE") or "COMPLETE",
                status_reason=text(body, "status_reason"),
                input_values=dict(body.get("input_values") or {}),
                output_values={},
                created_at=utcnow(),
            )
            s.add(d)
            s.flush()
            return {"software_deployment": deployment_view(d)}

    @app.get(prefix + "/software_deployments")
    def list_deployments(tenant: str, request: Request):
        ctx = request_context(request)
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:software_deployments")
        with db.session() as s:
            q = select(SoftwareDeployment).order_by(SoftwareDeployment.created_at)
            if not ctx.is_admin:
                q = q.where(SoftwareDeployment.project_id == ctx.project_id)
            server = request.query_params.get("server_id")
            if server:
                q = q.where(SoftwareDeployment.server_id == server)
            return {"software_deployments": [deployment_view(d) for d in s.scalars(q)]}

    @app.get(prefix + "/software_deployments/metadata/{server_id}")
    def deployment_metadata(tenant: str, server_id: str, request: Request):
        ctx = request_context(request)
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:software_deployments")
        with db.session() as s:
            q = select(SoftwareDeployment).where(SoftwareDeployment.server_id == server_id)
            if not ctx.is_admin:
                q = q.where(SoftwareDeployment.project_id == ctx.project_id)
            out = []
            for d in s.scalars(q.order_by(SoftwareDeployment.created_at)):
                c = s.get(SoftwareConfig, d.config_id)
                if c is None:
                    continue
                item = config_view(c)
                item.update(
                    {
                        "id": d.id,
                        "inputs": [
                            {**i, "value": d.input_values.get(i.get("name"))}
                            for i in (c.inputs or [])
                            if isinstance(i, dict)
                        ],
                        "updated_time": _time(d.updated_at),
                    }
                )
                out.append(item)
            return {"metadata": out}

    @app.get(prefix + "/software_deployments/{deployment_id}")
    def show_deployment(tenant: str, deployment_id: str, request: Request):
        ctx = request_context(request)
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:software_deployments")
        with db.session() as s:
            d = scoped(s, ctx, SoftwareDeployment, deployment_id, "Software Deployment")
            return {"software_deployment": deployment_view(d)}

    @app.put(prefix + "/software_deployments/{deployment_id}")
    async def update_deployment(tenant: str, deployment_id: str, request: Request):
        ctx = request_context(request)
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:software_deployments")
        body = await body_of(request)
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object")
        with db.session() as s:
            d = scoped(s, ctx, SoftwareDeployment, deployment_id, "Software Deployment")
            if body.get("config_id"):
                scoped(s, ctx, SoftwareConfig, str(body["config_id"]), "Software Config")
                d.config_id = str(body["config_id"])
            for key in ("action", "status", "status_reason"):
                if body.get(key) is not None:
                    setattr(d, key, text(body, key))
            if body.get("input_values") is not None:
                d.input_values = dict(body["input_values"])
            if body.get("output_values") is not None:
                d.output_values = dict(body["output_values"])
            d.updated_at = utcnow()
            s.flush()
            return {"software_deployment": deployment_view(d)}

    @app.delete(prefix + "/software_deployments/{deployment_id}")
    def delete_deployment(tenant: str, deployment_id: str, request: Request):
        ctx = request_context(request)
        tenant_ok(ctx, tenant)
        enforce(ctx, "orchestration:software_deployments")
        with db.session() as s:
            s.delete(scoped(s, ctx, SoftwareDeployment, deployment_id, "Software Deployment"))
        return Response(status_code=204)
