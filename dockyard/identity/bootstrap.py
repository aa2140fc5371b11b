"""First-start bootstrap of the identity data; every step is get-or-create."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from dockyard.identity.models import Assignment, Domain, Project, Role, User
from dockyard.identity.passwords import hash_password
from dockyard.identity.service import DEFAULT_DOMAIN_ID

BUILTIN_ROLES = ("admin", "member", "reader")


@dataclass(frozen=True)
class BootstrapResult:
    admin_project_id: str
    demo_project_id: str
    created_passwords: dict[str, str]  # user name -> password, only for users made now


def _get_or_create(session: Session, model: type, defaults: dict | None = None, **keys):
    obj = session.scalar(select(model).filter_by(**keys))
    if obj is None:
        obj = model(**keys, **(defaults or {}))
        session.add(obj)
        session.flush()
    return obj


def _grant(session: Session, user: User, target_type: str, target_id: str, role: Role) -> None:
    _get_or_create(
        session,
        Assignment,
        user_id=user.id,
        target_type=target_type,
        target_id=target_id,
        role_id=role.id,
    )


def bootstrap(
    session: Session, admin_password: str = "", demo_password: str = ""
) -> BootstrapResult:
    domain = session.get(Domain, DEFAULT_DOMAIN_ID)
    if domain is None:
        domain = Domain(id=DEFAULT_DOMAIN_ID, name="Default", description="The default domain")
        session.add(domain)
        session.flush()
    roles = {name: _get_or_create(session, Role, name=name) for name in BUILTIN_ROLES}
    projects = {
        name: _get_or_create(
            session,
            Project,
            {"description": f"Bootstrap project {name}"},
            name=name,
            domain_id=domain.id,
        )
        for name in ("admin", "demo")
    }
    created: dict[str, str] = {}
    users = {}
    for name, given in (("admin", admin_password), ("demo", demo_password)):
        user = session.scalar(select(User).where(User.name == name, User.domain_id == domain.id))
        if user is None:
            password = given or secrets.token_urlsafe(18)
            user = User(
                name=name,
                domain_id=domain.id,
                password_hash=hash_password(password),
                default_project_id=projects[name].id,
            )
            session.add(user)
            session.flush()
            created[name] = password
        users[name] = user
    _grant(session, users["admin"], "project", projects["admin"].id, roles["admin"])
    _grant(session, users["admin"], "project", projects["demo"].id, roles["admin"])
    _grant(session, users["admin"], "domain", domain.id, roles["admin"])
    _grant(session, users["demo"], "project", projects["demo"].id, roles["member"])
    return BootstrapResult(projects["admin"].id, projects["demo"].id, created)
