"""API errors, raised by any service and rendered in that service's own body shape."""

from __future__ import annotations

import html
from collections.abc import Callable
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response

from dockyard.logs import request_id_var


class ApiError(Exception):
    status = 500
    kind = "InternalError"

    def __init__(self, message: str, *, kind: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        if kind:
            self.kind = kind
        self.headers = headers or {}

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


class BadRequest(ApiError):
    status = 400
    kind = "BadRequest"


class Unauthorized(ApiError):
    status = 401
    kind = "Unauthorized"


class Forbidden(ApiError):
    status = 403
    kind = "Forbidden"


class NotFound(ApiError):
    status = 404
    kind = "NotFound"


class MethodNotAllowed(ApiError):
    status = 405
    kind = "MethodNotAllowed"


class Conflict(ApiError):
    status = 409
    kind = "Conflict"


class PayloadTooLarge(ApiError):
    status = 413
    kind = "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    status = 415
    kind = "UnsupportedMediaType"


class NotImplementedYet(ApiError):
    status = 501
    kind = "NotImplemented"


class ServerError(ApiError):
    status = 500
    kind = "InternalServerError"


ErrorFormat = Callable[[ApiError], Response]


def keystone_error(err: ApiError) -> Response:
    body = {"error": {"code": err.status, "title": err.title, "message": err.message}}
    return JSONResponse(body, status_code=err.status, headers=err.headers)


_NOVA_KEYS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "methodNotAllowed",
    409: "conflictingRequest",
    413: "overLimit",
    415: "mediaTypeNotSupported",
    500: "computeFault",
    501: "notImplemented",
}


def nova_error(err: ApiError) -> Response:
    key = _NOVA_KEYS.get(err.status, "computeFault")
    return JSONResponse(
        {key: {"code": err.status, "message": err.message}},
        status_code=err.status,
        headers=err.headers,
    )


def neutron_error(err: ApiError) -> Response:
    body = {"NeutronError": {"type": err.kind, "message": err.message, "detail": ""}}
    return JSONResponse(body, status_code=err.status, headers=err.headers)


def glance_error(err: ApiError) -> Response:
    # the HTML page real Glance (webob) sends: openstacksdk only shows messages from JSON or
    # HTML bodies, glanceclient strips the tags; both then print the message
    title = f"{err.status} {err.title}"
    body = (
        f"<html>\n <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n"
        f"  {html.escape(err.message)}<br /><br />\n\n\n\n </body>\n</html>"
    )
    return HTMLResponse(body, status_code=err.status, headers=err.headers)


def heat_error(err: ApiError) -> Response:
    body = {
        "explanation": err.message,
        "code": err.status,
        "error": {"message": err.message, "traceback": None, "type": err.kind},
        "title": err.title,
    }
    return JSONResponse(body, status_code=err.status, headers=err.headers)


def describe_validation_error(exc: RequestValidationError) -> str:
    problems = []
    for e in exc.errors():
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        if e.get("type") == "json_invalid":
            return "Malformed request body: the body is not valid JSON."
        where = ".".join(loc) or "body"
        problems.append(f"'{where}': {e.get('msg', 'invalid')}")
    return "Invalid input for field(s) " + "; ".join(problems)


_HTTP_ERRORS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


def install_error_handlers(app: FastAPI, render: ErrorFormat) -> None:
    """Make every error this app raises come out in the service's own shape."""

    async def on_api_error(request: Request, exc: ApiError) -> Response:
        return render(exc)

    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        return render(BadRequest(describe_validation_error(exc)))

    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        cls = _HTTP_ERRORS.get(exc.status_code, ServerError)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"The resource could not be found: {request.url.path}"
        err = cls(detail)
        err.status = exc.status_code
        return render(err)

    async def on_integrity(request: Request, exc: IntegrityError) -> Response:
        return render(Conflict("Conflict occurred attempting to store the resource: it exists."))

    async def on_unhandled(request: Request, exc: Exception) -> Response:
        # The traceback is logged by the dispatcher, which sees the exception re-raised.
        rid = request_id_var.get()
        return render(
            ServerError(
                "An unexpected error prevented the server from fulfilling your request. "
                f"Request id: {rid}."
            )
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(Exception, on_unhandled)
    app.add_exception_handler(IntegrityError, on_integrity)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
