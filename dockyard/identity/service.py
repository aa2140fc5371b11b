"""Identity logic: authentication, token validation, role resolution, revocation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from dockyard.api.context import RequestContext
from dockyard.api.errors import BadRequest, NotFound, Unauthorized
from dockyard.identity import tokens
from dockyard.identity.keys import KeyRing
from dockyard.identity.models import (
    ApplicationCredential,
    Assignment,
    Domain,
    Project,
    RevocationEvent,
    Role,
    User,
)
from dockyard.identity.passwords import verify_password

DEFAULT_DOMAIN_ID = "default"

# Implied roles, as Keystone's bootstrap sets them up: admin ⇒ member ⇒ reader.
IMPLIES: dict[str, tuple[str, ...]] = {"admin": ("member",), "member": ("reader",)}

AUTH_FAILED = "The request you have made requires authentication."


def expand_roles(names: set[str]) -> set[str]:
    """Close a set of role names under the implication table."""
    result, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in result:
            result.add(name)
            todo.extend(IMPLIES.get(name, ()))
    return result


@dataclass(frozen=True)
class TokenInfo:
    token: str
    payload: tokens.TokenPayload
    user: User
    user_domain: Domain
    project: Project | None
    project_domain: Domain | None
    domain: Domain | None
    roles: list[Role]

    def context(self, request_id: str) -> RequestContext:
        return RequestContext(
            request_id=request_id,
            user_id=self.user.id,
            user_name=self.user.name,
            user_domain_id=self.user.domain_id,
            roles=frozenset(r.name for r in self.roles),
            expires_at=self.payload.expires_at,
            issued_at=self.payload.issued_at,
            audit_ids=self.payload.audit_ids,
            methods=self.payload.methods,
            project_id=self.project.id if self.project else None,
            project_name=self.project.name if self.project else None,
            project_domain_id=self.project.domain_id if self.project else None,
            domain_id=self.domain.id if self.domain else None,
            domain_name=self.domain.name if self.domain else None,
            token=self.token,
        )


def roles_on(session: Session, user_id: str, target_type: str, target_id: str) -> list[Role]:
    """Effective roles (implied ones included) of a user on a project or domain."""
    direct = session.scalars(
        select(Role)
        .join(Assignment, Assignment.role_id == Role.id)
        .where(
            Assignment.user_id == user_id,
            Assignment.target_type == target_type,
            Assignment.target_id == target_id,
        )
    ).all()
    names = expand_roles({r.name for r in direct})
    if not names:
        return []
    return list(session.scalars(select(Role).where(Role.name.in_(names)).order_by(Role.name)))


def find_domain(session: Session, ref: dict | None) -> Domain:
    if not isinstance(ref, dict) or not (ref.get("id") or ref.get("name")):
        raise BadRequest("A domain must be given by 'id' or 'name'.")
    if ref.get("id"):
        domain = session.get(Domain, ref["id"])
    else:
        domain = session.scalar(select(Domain).where(Domain.name == ref["name"]))
    if domain is None:
        raise Unauthorized(AUTH_FAILED)
    return domain


def _find_user(session: Session, ref: dict) -> User | None:
    if ref.get("id"):
        return session.get(User, ref["id"])
    if not ref.get("name"):
        raise BadRequest("A user must be given by 'id', or by 'name' with a 'domain'.")
    domain = find_domain(session, ref.get("domain"))
    return session.scalar(select(User).where(User.name == ref["name"], User.domain_id == domain.id))


def _password_user(session: Session, password: dict) -> User:
    ref = password.get("user") if isinstance(password, dict) else None
    if not isinstance(ref, dict) or not isinstance(ref.get("password"), str):
        raise BadRequest("Expecting to find 'user' with a 'password' in 'identity.password'.")
    user = _find_user(session, ref)
    ok = verify_password(user.password_hash if user else None, ref["password"])
    if user is None or not ok or not user.enabled:
        raise Unauthorized(AUTH_FAILED)
    domain = session.get(Domain, user.domain_id)
    if domain is None or not domain.enabled:
        raise Unauthorized(AUTH_FAILED)
    return user


def _app_cred_user(
    session: Session, cred: dict, now: datetime
) -> tuple[User, ApplicationCredential]:
    if not isinstance(cred, dict) or not isinstance(cred.get("secret"), str):
        raise BadRequest("Expecting 'secret' in 'identity.application_credential'.")
    if cred.get("id"):
        ac = session.get(ApplicationCredential, cred["id"])
    elif cred.get("name") and isinstance(cred.get("user"), dict):
        user = _find_user(session, cred["user"])
        ac = user and session.scalar(
            select(ApplicationCredential).where(
                ApplicationCredential.user_id == user.id,
                ApplicationCredential.name == cred["name"],
            )
        )
    else:
        raise BadRequest("An application credential needs an 'id', or a 'name' and a 'user'.")
    ok = verify_password(ac.secret_hash if ac else None, cred["secret"])
    if not ac or not ok or (ac.expires_at and ac.expires_at <= now):
        raise Unauthorized(AUTH_FAILED)
    user = session.get(User, ac.user_id)
    if user is None or not user.enabled:
        raise Unauthorized(AUTH_FAILED)
    return user, ac


def _resolve_scope(session: Session, scope: object, user: User) -> tuple[str | None, str | None]:
    """(project_id, domain_id) for a requested scope; unscoped falls back to the default project."""
    if scope in (None, "unscoped", {}):
        if user.default_project_id and roles_on(
            session, user.id, "project", user.default_project_id
        ):
            return user.default_project_id, None
        return None, None
    if not isinstance(scope, dict):
        raise BadRequest("'scope' must be an object naming a 'project' or a 'domain'.")
    if "project" in scope:
        ref = scope["project"]
        if not isinstance(ref, dict):
            raise BadRequest("'scope.project' must be an object.")
        if ref.get("id"):
            project = session.get(Project, ref["id"])
        elif ref.get("name"):
            domain = find_domain(session, ref.get("domain"))
            project = session.scalar(
                select(Project).where(Project.name == ref["name"], Project.domain_id == domain.id)
            )
        else:
            raise BadRequest("'scope.project' needs an 'id', or a 'name' and a 'domain'.")
        if project is None or not project.enabled:
            raise Unauthorized(AUTH_FAILED)
        if not roles_on(session, user.id, "project", project.id):
            raise Unauthorized(f"User {user.id} has no access to project {project.id}.")
        return project.id, None
    if "domain" in scope:
        domain = find_domain(session, scope["domain"])
        if not roles_on(session, user.id, "domain", domain.id):
            raise Unauthorized(f"User {user.id} has no access to domain {domain.id}.")
        return None, domain.id
    raise BadRequest("Only project and domain scopes are supported.")


def authenticate(
    session: Session,
    keys: KeyRing,
    auth: object,
    ttl: int,
    now: datetime | None = None,
) -> TokenInfo:
    """Check the credentials in an auth request and issue a token for the asked scope."""
    now = now or datetime.now(UTC)
    if not isinstance(auth, dict) or not isinstance(auth.get("identity"), dict):
        raise BadRequest("Expecting to find 'identity' in 'auth'.")
    identity = auth["identity"]
    methods = identity.get("methods")
    if not isinstance(methods, list) or not methods:
        raise BadRequest("Expecting a non-empty list in 'identity.methods'.")
    parent: tokens.TokenPayload | None = None
    app_cred: ApplicationCredential | None = None
    if methods == ["password"]:
        user = _password_user(session, identity.get("password"))
    elif methods == ["token"]:
        ref = identity.get("token")
        if not isinstance(ref, dict) or not isinstance(ref.get("id"), str):
            raise BadRequest("Expecting 'id' in 'identity.token'.")
        parent_info = validate(session, keys, ref["id"], now=now)
        parent, user = parent_info.payload, parent_info.user
    elif methods == ["application_credential"]:
        user, app_cred = _app_cred_user(session, identity.get("application_credential"), now)
    else:
        raise Unauthorized(f"Unsupported authentication method(s): {', '.join(map(str, methods))}.")

    if app_cred is not None:
        if auth.get("scope") not in (None, {}):
            raise Unauthorized("Application credentials cannot request a scope.")
        project_id, domain_id = app_cred.project_id, None
    else:
        project_id, domain_id = _resolve_scope(session, auth.get("scope"), user)
    token, payload = tokens.issue(
        keys,
        user_id=user.id,
        methods=tuple(methods),
        ttl=ttl,
        project_id=project_id,
        domain_id=domain_id,
        parent=parent,
        app_cred_id=app_cred.id if app_cred else None,
        now=now,
    )
    return _token_info(session, token, payload)


def is_revoked(session: Session, payload: tokens.TokenPayload) -> bool:
    hit = session.scalar(
        select(RevocationEvent.id)
        .where(
            or_(
                RevocationEvent.audit_id.in_(payload.audit_ids),
                (RevocationEvent.user_id == payload.user_id)
                & (RevocationEvent.issued_before >= payload.issued_at),
            )
        )
        .limit(1)
    )
    return hit is not None


def _token_info(session: Session, token: str, payload: tokens.TokenPayload) -> TokenInfo:
    user = session.get(User, payload.user_id)
    if user is None or not user.enabled:
        raise Unauthorized("The token's user no longer exists or is disabled.")
    user_domain = session.get(Domain, user.domain_id)
    project = project_domain = domain = None
    roles: list[Role] = []
    if payload.project_id:
        project = session.get(Project, payload.project_id)
        if project is None or not project.enabled:
            raise Unauthorized("The token's project no longer exists or is disabled.")
        project_domain = session.get(Domain, project.domain_id)
        roles = roles_on(session, user.id, "project", project.id)
        if payload.app_cred_id:
            ac = session.get(ApplicationCredential, payload.app_cred_id)
            if ac is None:
                raise Unauthorized("The token's application credential no longer exists.")
            allowed = expand_roles(set(ac.roles))
            roles = [r for r in roles if r.name in allowed]
        if not roles:
            raise Unauthorized("The token's user has no role on its project any more.")
    elif payload.domain_id:
        domain = session.get(Domain, payload.domain_id)
        if domain is None or not domain.enabled:
            raise Unauthorized("The token's domain no longer exists or is disabled.")
        roles = roles_on(session, user.id, "domain", domain.id)
        if not roles:
            raise Unauthorized("The token's user has no role on its domain any more.")
    return TokenInfo(token, payload, user, user_domain, project, project_domain, domain, roles)


def validate(session: Session, keys: KeyRing, token: str, now: datetime | None = None) -> TokenInfo:
    """Everything a valid token stands for; 401 when it is bad, expired or revoked."""
    try:
        payload = tokens.decode(keys, token, now=now)
    except tokens.TokenInvalid as exc:
        raise Unauthorized(f"{AUTH_FAILED} ({exc})") from exc
    if is_revoked(session, payload):
        raise Unauthorized(f"{AUTH_FAILED} (the token has been revoked)")
    return _token_info(session, token, payload)


def revoke_token(session: Session, payload: tokens.TokenPayload) -> None:
    session.add(
        RevocationEvent(
            audit_id=payload.audit_id,
            issued_before=payload.issued_at,
            expires_at=payload.expires_at,
        )
    )


def revoke_user_tokens(session: Session, user_id: str, now: datetime | None = None) -> None:
    session.add(RevocationEvent(user_id=user_id, issued_before=now or datetime.now(UTC)))


def prune_revocations(session: Session, ttl: int, now: datetime | None = None) -> None:
    """Drop events no token they could match can outlive."""
    now = now or datetime.now(UTC)
    horizon = now - timedelta(seconds=ttl)
    session.query(RevocationEvent).filter(
        or_(
            RevocationEvent.expires_at < now,
            (RevocationEvent.expires_at.is_(None)) & (RevocationEvent.issued_before < horizon),
        )
    ).delete(synchronize_session=False)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def token_body(info: TokenInfo, catalog: list[dict] | None) -> dict:
    user_domain = info.user_domain
    body: dict = {
        "methods": list(info.payload.methods),
        "user": {
            "id": info.user.id,
            "name": info.user.name,
            "domain": {"id": user_domain.id, "name": user_domain.name},
            "password_expires_at": None,
        },
        "audit_ids": list(info.payload.audit_ids),
        "expires_at": iso(info.payload.expires_at),
        "issued_at": iso(info.payload.issued_at),
    }
    if info.project is not None and info.project_domain is not None:
        body["project"] = {
            "id": info.project.id,
            "name": info.project.name,
            "domain": {"id": info.project_domain.id, "name": info.project_domain.name},
        }
        body["is_domain"] = False
    if info.domain is not None:
        body["domain"] = {"id": info.domain.id, "name": info.domain.name}
    if info.roles:
        body["roles"] = [{"id": r.id, "name": r.name} for r in info.roles]
    if info.payload.app_cred_id:
        body["application_credential"] = {"id": info.payload.app_cred_id, "restricted": True}
    if catalog is not None:
        body["catalog"] = catalog
    return {"token": body}


def system_context(session: Session, request_id: str = "req-system") -> RequestContext:
    """The bootstrap admin acting in the admin project, for dockyard's own setup work."""
    user = session.scalar(
        select(User).where(User.name == "admin", User.domain_id == DEFAULT_DOMAIN_ID)
    )
    project = session.scalar(
        select(Project).where(Project.name == "admin", Project.domain_id == DEFAULT_DOMAIN_ID)
    )
    if user is None or project is None:
        raise RuntimeError("identity is not bootstrapped: no admin user or project")
    roles = roles_on(session, user.id, "project", project.id)
    now = datetime.now(UTC)
    return RequestContext(
        request_id=request_id,
        user_id=user.id,
        user_name=user.name,
        user_domain_id=user.domain_id,
        roles=frozenset(r.name for r in roles),
        expires_at=now + timedelta(hours=1),
        issued_at=now,
        audit_ids=(),
        methods=("system",),
        project_id=project.id,
        project_name=project.name,
        project_domain_id=project.domain_id,
    )


def get_or_404(session: Session, model: type, ident: str, what: str):
    obj = session.get(model, ident)
    if obj is None:
        raise NotFound(f"Could not find {what}: {ident}.")
    return obj
