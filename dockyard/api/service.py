"""A service mounted under a path prefix, with its own error shape and public paths."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp

from dockyard.api.errors import ErrorFormat
from dockyard.identity.catalog import ServiceEntry

# (method, path below the prefix) -> True when no token is needed
PublicCheck = Callable[[str, str], bool]
# (method, path below the prefix) -> True when the body may exceed max_body_bytes (data uploads)
StreamCheck = Callable[[str, str], bool]


def _never(method: str, path: str) -> bool:
    return False


@dataclass
class ServiceApp:
    prefix: str
    app: ASGIApp
    render_error: ErrorFormat
    is_public: PublicCheck = _never
    is_stream: StreamCheck = _never
    catalog: ServiceEntry | None = None
    background: list = field(default_factory=list)
