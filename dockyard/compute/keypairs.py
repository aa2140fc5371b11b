"""Key pairs: fingerprints, validation of public keys, server-side generation (mv < 2.92)."""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from dockyard.api.context import RequestContext
from dockyard.api.errors import BadRequest, NotFound
from dockyard.compute.models import KeyPair

SSH_TYPES = (
    "ssh-rsa",
    "ssh-ed25519",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def _blob(public_key: str) -> bytes:
    parts = public_key.strip().split()
    if len(parts) < 2 or parts[0] not in SSH_TYPES:
        raise BadRequest(
            "Keypair data is invalid: public_key must be an OpenSSH public key "
            "('ssh-ed25519 AAAA...', 'ssh-rsa AAAA...')."
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("Keypair data is invalid: the key is not valid base64.") from exc
    if not blob.startswith(len(parts[0]).to_bytes(4, "big") + parts[0].encode()):
        raise BadRequest("Keypair data is invalid: the key body does not match its type.")
    return blob


def fingerprint(public_key: str, key_type: str = "ssh") -> str:
    """MD5 colon-hex fingerprint as Nova shows it (x509: SHA1 of the certificate)."""
    if key_type == "x509":
        digest = hashlib.sha1(public_key.encode()).hexdigest()
    else:
        digest = hashlib.md5(_blob(public_key)).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def validate_name(name) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise BadRequest("Keypair name must be a string of 1 to 255 characters.")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_ .@")
    if any(ch not in allowed for ch in name):
        raise BadRequest(
            "Keypair name contains unsafe characters: use letters, digits, '-', '_', ' ', '.', '@'."
        )
    return name


def generate(key_type: str = "ssh") -> tuple[str, str]:
    """(private key PEM/OpenSSH, public key) made on the server."""
    if key_type == "ssh":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH
        if key_type != "ssh"
        else serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public + " Generated-by-Nova"


def lookup(session: Session, ctx: RequestContext, name: str) -> KeyPair:
    """The caller's key pair by name (key pairs belong to users), or NotFound. The interface
    other services (orchestration's nova.keypair constraint) may use."""
    kp = session.scalar(select(KeyPair).where(KeyPair.user_id == ctx.user_id, KeyPair.name == name))
    if kp is None:
        raise NotFound(f"Keypair {name} not found for user {ctx.user_id}.")
    return kp


def create(
    session: Session,
    settings,
    ctx: RequestContext,
    user_id: str,
    name: str,
    public_key: str,
    key_type: str = "ssh",
) -> KeyPair:
    """A key pair row for `user_id` within the key_pairs quota; 409 if the name is taken."""
    from dockyard.api.errors import Conflict
    from dockyard.compute import quotas

    name = validate_name(name)
    if key_type not in ("ssh", "x509"):
        raise BadRequest("Invalid input for field/attribute type: 'ssh' or 'x509'.")
    if not isinstance(public_key, str):
        raise BadRequest("Invalid input for field/attribute public_key: must be a string.")
    fp = fingerprint(public_key, key_type)
    quotas.enforce(session, settings, ctx.project_id or "", {"key_pairs": 1}, user_id=user_id)
    if session.scalar(select(KeyPair).where(KeyPair.user_id == user_id, KeyPair.name == name)):
        raise Conflict(f"Key pair '{name}' already exists.")
    kp = KeyPair(
        user_id=user_id,
        project_id=ctx.project_id or "",
        name=name,
        type=key_type,
        public_key=public_key,
        fingerprint=fp,
    )
    session.add(kp)
    session.flush()
    return kp


def delete(session: Session, user_id: str, name: str) -> None:
    kp = session.scalar(select(KeyPair).where(KeyPair.user_id == user_id, KeyPair.name == name))
    if kp is None:
        raise NotFound(f"Keypair {name} not found for user {user_id}.")
    session.delete(kp)
