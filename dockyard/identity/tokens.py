"""Stateless tokens: a compact JSON payload, encrypted and signed with Fernet."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.fernet import InvalidToken

from dockyard.identity.keys import KeyRing


class TokenInvalid(Exception):
    pass


@dataclass(frozen=True)
class TokenPayload:
    user_id: str
    methods: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    audit_ids: tuple[str, ...]
    project_id: str | None = None
    domain_id: str | None = None
    app_cred_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def audit_id(self) -> str:
        return self.audit_ids[0]


def new_audit_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def _ts(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC)


def encode(keys: KeyRing, payload: TokenPayload) -> str:
    body = {
        "u": payload.user_id,
        "m": list(payload.methods),
        "i": _ts(payload.issued_at),
        "e": _ts(payload.expires_at),
        "a": list(payload.audit_ids),
    }
    if payload.project_id:
        body["p"] = payload.project_id
    if payload.domain_id:
        body["d"] = payload.domain_id
    if payload.app_cred_id:
        body["c"] = payload.app_cred_id
    raw = json.dumps(body, separators=(",", ":")).encode()
    return keys.fernet().encrypt(raw).decode().rstrip("=")


def decode(keys: KeyRing, token: str, now: datetime | None = None) -> TokenPayload:
    """The payload of a genuine, unexpired token; TokenInvalid otherwise."""
    if not token or len(token) > 1024:
        raise TokenInvalid("malformed token")
    padded = token + "=" * (-len(token) % 4)
    try:
        body = json.loads(keys.fernet().decrypt(padded.encode()))
        payload = TokenPayload(
            user_id=body["u"],
            methods=tuple(body["m"]),
            issued_at=_dt(body["i"]),
            expires_at=_dt(body["e"]),
            audit_ids=tuple(body["a"]),
            project_id=body.get("p"),
            domain_id=body.get("d"),
            app_cred_id=body.get("c"),
        )
    except (InvalidToken, ValueError, KeyError, TypeError) as exc:
        raise TokenInvalid("the token could not be verified") from exc
    if payload.expires_at <= (now or datetime.now(UTC)):
        raise TokenInvalid("the token has expired")
    return payload


def issue(
    keys: KeyRing,
    *,
    user_id: str,
    methods: tuple[str, ...],
    ttl: int,
    project_id: str | None = None,
    domain_id: str | None = None,
    parent: TokenPayload | None = None,
    app_cred_id: str | None = None,
    now: datetime | None = None,
) -> tuple[str, TokenPayload]:
    now = now or datetime.now(UTC)
    expires = now + timedelta(seconds=ttl)
    audit_ids: tuple[str, ...] = (new_audit_id(),)
    if parent is not None:
        expires = min(expires, parent.expires_at)
        audit_ids = (audit_ids[0], parent.audit_ids[-1])
    payload = TokenPayload(
        user_id=user_id,
        methods=methods,
        issued_at=now,
        expires_at=expires,
        audit_ids=audit_ids,
        project_id=project_id,
        domain_id=domain_id,
        app_cred_id=app_cred_id,
    )
    return encode(keys, payload), payload
