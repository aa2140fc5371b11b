import base64
from datetime import UTC, datetime, timedelta

import pytest

from dockyard.identity import tokens
from dockyard.identity.keys import KeyRing, ensure_keys, rotate_keys


@pytest.fixture
def keys(tmp_path):
    ensure_keys(tmp_path / "keys")
    return KeyRing(tmp_path / "keys")


def test_round_trip_keeps_every_field(keys):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    token, payload = tokens.issue(
        keys, user_id="u1", methods=("password",), ttl=3600, project_id="p1", now=now
    )
    back = tokens.decode(keys, token, now=now + timedelta(minutes=5))
    assert back.user_id == "u1"
    assert back.project_id == "p1"
    assert back.domain_id is None
    assert back.methods == ("password",)
    assert back.expires_at == now + timedelta(hours=1)
    assert back.audit_ids == payload.audit_ids
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b'"u1"' not in raw and b'"p1"' not in raw  # encrypted, not just signed


def test_expired_token_is_refused(keys):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    token, _ = tokens.issue(keys, user_id="u", methods=("password",), ttl=60, now=now)
    with pytest.raises(tokens.TokenInvalid, match="expired"):
        tokens.decode(keys, token, now=now + timedelta(seconds=61))


def test_tampered_token_is_refused(keys):
    token, _ = tokens.issue(keys, user_id="u", methods=("password",), ttl=60)
    flipped = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    with pytest.raises(tokens.TokenInvalid):
        tokens.decode(keys, flipped)
    with pytest.raises(tokens.TokenInvalid):
        tokens.decode(keys, "not-a-token")


def test_token_from_other_key_repository_is_refused(keys, tmp_path):
    ensure_keys(tmp_path / "other")
    token, _ = tokens.issue(KeyRing(tmp_path / "other"), user_id="u", methods=("x",), ttl=60)
    with pytest.raises(tokens.TokenInvalid):
        tokens.decode(keys, token)


def test_rotation_keeps_old_tokens_valid_until_the_key_is_pruned(tmp_path):
    key_dir = tmp_path / "keys"
    ensure_keys(key_dir)
    ring = KeyRing(key_dir)
    old, _ = tokens.issue(ring, user_id="u", methods=("password",), ttl=600)
    assert rotate_keys(key_dir, max_active=3) == 2
    assert tokens.decode(ring, old).user_id == "u"
    rotate_keys(key_dir, max_active=3)  # primary 3; key 1, which signed `old`, is pruned
    new, _ = tokens.issue(ring, user_id="v", methods=("password",), ttl=600)
    rotate_keys(key_dir, max_active=3)
    assert sorted(p.name for p in key_dir.iterdir()) == ["0", "3", "4"]
    with pytest.raises(tokens.TokenInvalid):
        tokens.decode(ring, old)
    assert tokens.decode(ring, new).user_id == "v"


def test_rescoped_token_keeps_audit_chain_and_expiry(keys):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    _, parent = tokens.issue(keys, user_id="u", methods=("password",), ttl=100, now=now)
    _, child = tokens.issue(
        keys, user_id="u", methods=("token",), ttl=3600, parent=parent, project_id="p", now=now
    )
    assert child.expires_at == parent.expires_at
    assert child.audit_ids[1] == parent.audit_ids[0]
