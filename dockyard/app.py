"""The ASGI application: one dispatcher in front of every service, plus the cross-cutting layer.

Order for each request: request id and error net -> service lookup -> body size limit ->
token validation (unless the path is public) -> the service's own app.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

import anyio
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from dockyard.api.errors import (
    ApiError,
    NotFound,
    PayloadTooLarge,
    ServerError,
    Unauthorized,
    keystone_error,
)
from dockyard.api.service import ServiceApp
from dockyard.config import Settings
from dockyard.db import Database
from dockyard.identity import service as identity
from dockyard.identity.keys import KeyRing, ensure_keys
from dockyard.logs import request_id_var
from dockyard.runtime import Runtime

log = logging.getLogger("dockyard.api")

REQUEST_ID_HEADER = b"x-openstack-request-id"


class _BodyTooLarge(StarletteHTTPException):
    """Raised while the body streams in; services render it as their own 413."""

    def __init__(self, limit: int):
        super().__init__(413, f"Request body is larger than the limit of {limit} bytes.")


def _limited_receive(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge(limit)
        return message

    return wrapped


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


class Dockyard:
    """Routes by path prefix to the services and applies the cross-cutting middleware."""

    def __init__(self, runtime: Runtime, services: list[ServiceApp]):
        self.runtime = runtime
        self.services = sorted(services, key=lambda s: len(s.prefix), reverse=True)

    def _service_for(self, path: str) -> ServiceApp | None:
        for svc in self.services:
            if path == svc.prefix or path.startswith(svc.prefix + "/"):
                return svc
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request_id = f"req-{uuid.uuid4()}"
        token = request_id_var.set(request_id)
        started = time.monotonic()
        status_holder = {"status": 0, "sent": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["sent"] = True
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        svc = self._service_for(scope["path"])
        render = svc.render_error if svc else keystone_error
        try:
            await self._handle(scope, receive, send_with_id, svc, request_id)
        except _BodyTooLarge as exc:
            if not status_holder["sent"]:
                await render(PayloadTooLarge(exc.detail))(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not status_holder["sent"]:
                err = ServerError(
                    "An unexpected error prevented the server from fulfilling your request. "
                    f"Request id: {request_id}."
                )
                await render(err)(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status_holder["status"],
                extra={
                    "fields": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status_holder["status"],
                        "duration_ms": round((time.monotonic() - started) * 1000, 2),
                    }
                },
            )
            request_id_var.reset(token)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, svc: ServiceApp | None, request_id: str
    ) -> None:
        path = scope["path"]
        if path in ("/healthcheck", "/health"):
            await self._health(send)
            return
        if svc is None:
            err = NotFound(f"No service is served at {path}.")
            await keystone_error(err)(scope, receive, send)
            return
        sub_path = path[len(svc.prefix) :] or "/"
        method = scope["method"]
        limit = self.runtime.settings.max_body_bytes
        if not svc.is_stream(method, sub_path):
            length = _header(scope, b"content-length")
            if length and length.isdigit() and int(length) > limit:
                raise _BodyTooLarge(limit)
            receive = _limited_receive(receive, limit)
        state = dict(scope.get("state") or {})
        if not svc.is_public(method, sub_path):
            try:
                state["context"] = await anyio.to_thread.run_sync(
                    self._authenticate, _header(scope, b"x-auth-token"), request_id
                )
            except ApiError as err:
                await svc.render_error(err)(scope, receive, send)
                return
        sub_scope = {
            **scope,
            "path": svc.prefix + sub_path,
            "raw_path": (svc.prefix + sub_path).encode(),
            "root_path": scope.get("root_path", "") + svc.prefix,
            "state": state,
        }
        await svc.app(sub_scope, receive, send)

    def _authenticate(self, token: str | None, request_id: str):
        if not token:
            raise Unauthorized("The request you have made requires authentication.")
        with self.runtime.db.session() as session:
            info = identity.validate(session, self.runtime.keys, token)
            return info.context(request_id)

    async def _health(self, send: Send) -> None:
        def probe() -> bool:
            try:
                with self.runtime.db.engine.connect() as conn:
                    conn.exec_driver_sql("SELECT 1")
                return True
            except Exception:
                log.exception("health check: database unreachable")
                return False

        ok = await anyio.to_thread.run_sync(probe)
        body = json.dumps({"status": "ok" if ok else "degraded", "database": ok}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200 if ok else 503,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        async with anyio.create_task_group() as tg:
            for svc in self.services:
                for task in svc.background:
                    tg.start_soon(task)
            await send({"type": "lifespan.startup.complete"})
            while (await receive())["type"] != "lifespan.shutdown":
                pass
            tg.cancel_scope.cancel()
        await send({"type": "lifespan.shutdown.complete"})


def build_runtime(settings: Settings, db: Database | None = None) -> Runtime:
    settings.home.mkdir(parents=True, exist_ok=True)
    ensure_keys(settings.key_dir)
    return Runtime(
        settings=settings,
        db=db or Database(settings.db_url),
        keys=KeyRing(settings.key_dir),
    )


def service_factories() -> list:
    """Every service this build serves, as `build(runtime) -> ServiceApp` functions."""
    from dockyard.compute import api as compute
    from dockyard.identity.api import build as identity
    from dockyard.image.api import build as image
    from dockyard.network.api import build as network
    from dockyard.orchestration.api import build as orchestration

    return [identity, image, network, compute.build, compute.build_versions, orchestration]


def create_app(runtime: Runtime) -> Dockyard:
    """Build every service this build serves and put the dispatcher in front of them."""
    services = [factory(runtime) for factory in service_factories()]
    runtime.catalog = [s.catalog for s in services if s.catalog is not None]
    return Dockyard(runtime, services)
