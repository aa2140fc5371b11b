"""Image API v2 (Glance), mounted under /image."""

from __future__ import annotations

import errno
import json
import logging
import re
import time
from typing import Annotated

import anyio
from fastapi import Depends, FastAPI, Request, Response
from starlette.requests import ClientDisconnect
from starlette.responses import FileResponse, JSONResponse

from dockyard.api.context import RequestContext, request_context
from dockyard.api.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    glance_error,
    install_error_handlers,
)
from dockyard.api.policy import enforce
from dockyard.api.service import ServiceApp
from dockyard.identity.catalog import ServiceEntry
from dockyard.image import images as img
from dockyard.image import uploads
from dockyard.image.listing import list_images, next_link
from dockyard.image.schemas import image_schema, images_schema, member_schema, members_schema
from dockyard.image.store import BlobStore, LimitExceeded, WrittenBlob
from dockyard.runtime import Runtime

log = logging.getLogger("dockyard.image")

Ctx = Annotated[RequestContext, Depends(request_context)]

# version documents answered at / and /versions (newest first)
VERSIONS = ["2.17", "2.16", "2.15", "2.9", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0"]
PATCH_TYPES = (
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
)
# the body of a refused upload is read and dropped up to this many bytes, so the client
# gets to read the error instead of a reset connection
DRAIN_LIMIT = 1024**3
WRITE_BATCH = 1024 * 1024
_DATA_PATH = re.compile(r"^/v2/images/[^/]+/(file|stage)$")


class BlobResponse(FileResponse):
    chunk_size = 1024 * 1024  # fewer, larger sends than the 64 KiB default


def is_public(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") and path in ("/", "/versions", "/versions/")


def is_stream(method: str, path: str) -> bool:
    return method == "PUT" and bool(_DATA_PATH.match(path))


async def _drain(request: Request, already: int = 0) -> None:
    seen = already
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > DRAIN_LIMIT:
                return
    except (ClientDisconnect, RuntimeError):
        return


async def _receive_blob(request: Request, writer, alive) -> WrittenBlob:
    """Stream the request body into the writer, in batches written off the event loop;
    `alive()` is called now and then while data keeps coming."""
    buf = bytearray()
    last_beat = time.monotonic()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) >= WRITE_BATCH:
            data = bytes(buf)
            buf.clear()
            await anyio.to_thread.run_sync(writer.write, data)
            if time.monotonic() - last_beat > uploads.HEARTBEAT_SECONDS:
                last_beat = time.monotonic()
                await anyio.to_thread.run_sync(alive)
    if buf:
        await anyio.to_thread.run_sync(writer.write, bytes(buf))
    return await anyio.to_thread.run_sync(writer.finish)


def build(runtime: Runtime) -> ServiceApp:
    settings = runtime.settings
    base = settings.base_url + "/image"
    store = BlobStore(settings.blob_dir)
    uploads.reset_abandoned(runtime)
    uploads.sweep_store(runtime)
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app, glance_error)

    def versions_body() -> dict:
        values = []
        for i, v in enumerate(VERSIONS):
            values.append(
                {
                    "id": f"v{v}",
                    "status": "CURRENT" if i == 0 else "SUPPORTED",
                    "links": [{"rel": "self", "href": f"{base}/v2/"}],
                }
            )
        return {"versions": values}

    # ---- discovery and schemas ---------------------------------------------------------

    @app.get("/")
    def root() -> JSONResponse:
        return JSONResponse(versions_body(), status_code=300)

    @app.get("/versions")
    def versions() -> dict:
        return versions_body()

    @app.get("/v2/schemas/image")
    def schema_image(ctx: Ctx) -> dict:
        return image_schema()

    @app.get("/v2/schemas/images")
    def schema_images(ctx: Ctx) -> dict:
        return images_schema()

    @app.get("/v2/schemas/member")
    def schema_member(ctx: Ctx) -> dict:
        return member_schema()

    @app.get("/v2/schemas/members")
    def schema_members(ctx: Ctx) -> dict:
        return members_schema()

    @app.get("/v2/info/import")
    def import_info(ctx: Ctx) -> dict:
        return {
            "import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": ["glance-direct"],
            }
        }

    # ---- images ------------------------------------------------------------------------

    @app.post("/v2/images", status_code=201)
    async def create(request: Request, ctx: Ctx) -> JSONResponse:
        body = await _json(request)

        def work() -> dict:
            with runtime.db.session() as s:
                return img.view(img.create_image(s, ctx, body, settings))

        view = await anyio.to_thread.run_sync(work)
        return JSONResponse(
            view,
            status_code=201,
            headers={
                "Location": f"{base}/v2/images/{view['id']}",
                "OpenStack-image-import-methods": "glance-direct",
            },
        )

    @app.get("/v2/images")
    def index(request: Request, ctx: Ctx) -> dict:
        params = list(request.query_params.multi_items())
        with runtime.db.session() as s:
            page = list_images(s, ctx, params)
            body = {
                "images": [img.view(i) for i in page.images],
                "schema": "/v2/schemas/images",
                "first": "/v2/images",
            }
        if page.next_marker:
            body["next"] = next_link(params, page.next_marker)
        return body

    @app.get("/v2/images/{image_id}")
    def show(image_id: str, ctx: Ctx) -> dict:
        enforce(ctx, "image:get_image")
        with runtime.db.session() as s:
            return img.view(img.get_visible(s, ctx, image_id))

    @app.patch("/v2/images/{image_id}")
    async def update(image_id: str, request: Request, ctx: Ctx) -> dict:
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind not in PATCH_TYPES:
            raise UnsupportedMediaType(f"Unsupported Content-Type '{kind}': send {PATCH_TYPES[0]}.")
        ops = await _json(request)

        def work() -> dict:
            with runtime.db.session() as s:
                return img.view(img.update_image(s, ctx, image_id, ops, settings))

        return await anyio.to_thread.run_sync(work)

    @app.delete("/v2/images/{image_id}", status_code=204)
    def delete(image_id: str, ctx: Ctx) -> Response:
        with runtime.db.session() as s:
            location = img.delete_image(s, ctx, image_id)
        store.delete(location)
        return Response(status_code=204)

    @app.post("/v2/images/{image_id}/actions/deactivate", status_code=204)
    def deactivate(image_id: str, ctx: Ctx) -> Response:
        with runtime.db.session() as s:
            img.set_active_state(s, ctx, image_id, active=False)
        return Response(status_code=204)

    @app.post("/v2/images/{image_id}/actions/reactivate", status_code=204)
    def reactivate(image_id: str, ctx: Ctx) -> Response:
        with runtime.db.session() as s:
            img.set_active_state(s, ctx, image_id, active=True)
        return Response(status_code=204)

    @app.put("/v2/images/{image_id}/tags/{tag}", status_code=204)
    def add_tag(image_id: str, tag: str, ctx: Ctx) -> Response:
        with runtime.db.session() as s:
            img.add_tag(s, ctx, image_id, tag)
        return Response(status_code=204)

    @app.delete("/v2/images/{image_id}/tags/{tag}", status_code=204)
    def remove_tag(image_id: str, tag: str, ctx: Ctx) -> Response:
        with runtime.db.session() as s:
            img.remove_tag(s, ctx, image_id, tag)
        return Response(status_code=204)

    # ---- data --------------------------------------------------------------------------

    async def receive_data(image_id: str, request: Request, ctx: RequestContext) -> None:
        """The whole upload: claim the image, stream to a temp file, check, activate."""
        length_header = request.headers.get("content-length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        try:
            ticket = await anyio.to_thread.run_sync(uploads.begin, runtime, ctx, image_id, length)
        except ApiError:
            await _drain(request)
            raise
        writer = None
        try:
            writer = await anyio.to_thread.run_sync(store.writer, ticket.limit)
            try:
                blob = await _receive_blob(
                    request, writer, lambda: uploads.heartbeat(runtime, ticket)
                )
            except LimitExceeded as exc:
                await _drain(request, writer.size)
                raise uploads.limit_error(settings, ticket) from exc
            except ClientDisconnect as exc:
                raise BadRequest(
                    "The client went away before the image data was complete."
                ) from exc
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                await _drain(request, writer.size)
                raise PayloadTooLarge(
                    "Image storage media is full: the blob store has no space left for this "
                    "image. Nothing was stored."
                ) from exc
            archive = await anyio.to_thread.run_sync(uploads.check_data, ticket, blob)
            await anyio.to_thread.run_sync(uploads.finish, runtime, ticket, blob, archive)
            writer.done = True
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                if writer is not None:
                    await anyio.to_thread.run_sync(writer.abort)
                await anyio.to_thread.run_sync(uploads.abort, runtime, ticket)
            if not isinstance(exc, ApiError):
                log.warning("upload of image %s failed: %r", image_id, exc)
            raise

    @app.put("/v2/images/{image_id}/file", status_code=204)
    async def upload(image_id: str, request: Request, ctx: Ctx) -> Response:
        await receive_data(image_id, request, ctx)
        return Response(status_code=204)

    @app.get("/v2/images/{image_id}/file")
    def download(image_id: str, ctx: Ctx) -> Response:
        enforce(ctx, "image:download_image")
        with runtime.db.session() as s:
            image = img.get_visible(s, ctx, image_id)
            if image.status == "deactivated" and not ctx.is_admin:
                raise Forbidden(
                    "The requested image has been deactivated. Image data download is forbidden."
                )
            path = BlobStore.local_path(image.location)
            checksum = image.checksum
        if path is None:
            return Response(status_code=204)
        if not path.is_file():
            raise NotFound(f"The data of image {image_id} is missing from the store.")
        headers = {"Content-MD5": checksum} if checksum else {}
        return BlobResponse(path, media_type="application/octet-stream", headers=headers)

    # glance-direct import: stage the data, then import it (checks run at import time)
    @app.put("/v2/images/{image_id}/stage", status_code=204)
    async def stage(image_id: str, request: Request, ctx: Ctx) -> Response:
        await receive_data(image_id, request, ctx)
        return Response(status_code=204)

    @app.post("/v2/images/{image_id}/import", status_code=202)
    async def import_image(image_id: str, request: Request, ctx: Ctx) -> Response:
        body = await _json(request)
        method = body.get("method", {}) if isinstance(body, dict) else {}
        name = method.get("name") if isinstance(method, dict) else None
        if name != "glance-direct":
            raise BadRequest(
                f"Import method {name!r} is not supported here; use glance-direct "
                "(stage the data first)."
            )

        def work() -> None:
            with runtime.db.session() as s:
                image = img.get_visible(s, ctx, image_id)
                img.enforce_owner(ctx, "image:upload_image", image)
                if image.status != "active" or image.location is None:
                    raise Conflict(
                        f"Image {image_id} has no staged data (status {image.status}); "
                        "PUT the data to /v2/images/{id}/stage first."
                    )

        await anyio.to_thread.run_sync(work)
        return Response(status_code=202)

    # ---- members -----------------------------------------------------------------------

    @app.get("/v2/images/{image_id}/members")
    def members(image_id: str, ctx: Ctx) -> dict:
        with runtime.db.session() as s:
            items = [img.member_view(m) for m in img.list_members(s, ctx, image_id)]
        return {"members": items, "schema": "/v2/schemas/members"}

    @app.post("/v2/images/{image_id}/members")
    async def add_member(image_id: str, request: Request, ctx: Ctx) -> dict:
        body = await _json(request)
        if not isinstance(body, dict) or "member" not in body:
            raise BadRequest("Expecting {'member': '<project id>'} in the request body.")

        def work() -> dict:
            with runtime.db.session() as s:
                return img.member_view(img.add_member(s, ctx, image_id, body["member"]))

        return await anyio.to_thread.run_sync(work)

    @app.get("/v2/images/{image_id}/members/{member_id}")
    def show_member(image_id: str, member_id: str, ctx: Ctx) -> dict:
        with runtime.db.session() as s:
            return img.member_view(img.get_member(s, ctx, image_id, member_id))

    @app.put("/v2/images/{image_id}/members/{member_id}")
    async def update_member(image_id: str, member_id: str, request: Request, ctx: Ctx) -> dict:
        body = await _json(request)
        if not isinstance(body, dict) or "status" not in body:
            raise BadRequest("Expecting {'status': 'accepted|rejected|pending'} in the body.")

        def work() -> dict:
            with runtime.db.session() as s:
                m = img.update_member(s, ctx, image_id, member_id, body["status"])
                return img.member_view(m)

        return await anyio.to_thread.run_sync(work)

    @app.delete("/v2/images/{image_id}/members/{member_id}", status_code=204)
    def delete_member(image_id: str, member_id: str, ctx: Ctx) -> Response:
        with runtime.db.session() as s:
            img.delete_member(s, ctx, image_id, member_id)
        return Response(status_code=204)

    return ServiceApp(
        prefix="/image",
        app=app,
        render_error=glance_error,
        is_public=is_public,
        is_stream=is_stream,
        catalog=ServiceEntry("image", "glance", "/image"),
    )


async def _json(request: Request):
    raw = await request.body()
    if not raw:
        raise BadRequest("The request body is empty; expected JSON.")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequest("Malformed request body: the body is not valid JSON.") from exc
