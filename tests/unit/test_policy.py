from datetime import UTC, datetime

import pytest

from dockyard.api.context import RequestContext
from dockyard.api.errors import Forbidden
from dockyard.api.policy import POLICY, check, enforce
from dockyard.identity.service import expand_roles


def ctx(roles: set[str], project: str | None = "p1", user: str = "u1") -> RequestContext:
    return RequestContext(
        request_id="req-1",
        user_id=user,
        user_name=user,
        user_domain_id="default",
        roles=frozenset(expand_roles(roles)),
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        audit_ids=("a",),
        methods=("password",),
        project_id=project,
    )


def test_implied_roles():
    assert expand_roles({"admin"}) == {"admin", "member", "reader"}
    assert expand_roles({"member"}) == {"member", "reader"}
    assert expand_roles({"reader"}) == {"reader"}


def test_admin_only_operations_refuse_members():
    member = ctx({"member"})
    for action in ("identity:create_project", "identity:list_users", "identity:create_grant"):
        assert not check(member, action)
        assert check(ctx({"admin"}), action)
        with pytest.raises(Forbidden, match=action):
            enforce(member, action)


def test_project_rules_follow_ownership():
    assert check(ctx({"member"}), "identity:get_project", {"id": "p1"})
    assert not check(ctx({"member"}), "identity:get_project", {"id": "p2"})
    assert check(ctx({"admin"}), "identity:get_project", {"id": "p2"})


def test_own_user_rules():
    assert check(ctx({"reader"}), "identity:get_user", {"user_id": "u1"})
    assert not check(ctx({"reader"}), "identity:get_user", {"user_id": "u2"})
    assert not check(ctx({"admin"}), "identity:change_password", {"user_id": "u2"})
    assert check(ctx({"reader"}), "identity:change_password", {"user_id": "u1"})


def test_every_rule_is_callable_and_unknown_actions_fail_loudly():
    for action, rule in POLICY.items():
        assert callable(rule), action
    with pytest.raises(KeyError):
        check(ctx({"admin"}), "identity:no_such_thing")
