"""The typed request context handed to every handler by the auth middleware."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from starlette.requests import Request

from dockyard.api.errors import Unauthorized


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    user_id: str
    user_name: str
    user_domain_id: str
    roles: frozenset[str]
    expires_at: datetime
    audit_ids: tuple[str, ...]
    methods: tuple[str, ...]
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None
    domain_name: str | None = None
    issued_at: datetime | None = None
    token: str = field(default="", repr=False)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def has_role(self, *names: str) -> bool:
        return bool(self.roles.intersection(names))


def request_context(request: Request) -> RequestContext:
    """FastAPI dependency: the caller's context, set by the auth middleware."""
    ctx = request.scope.get("state", {}).get("context")
    if ctx is None:
        raise Unauthorized("The request you have made requires authentication.")
    return ctx
