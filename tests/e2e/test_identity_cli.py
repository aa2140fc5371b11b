"""Identity with the real python-openstackclient from PyPI."""

from __future__ import annotations

import uuid


def test_token_issue_and_catalog(cloud):
    token = cloud.cli_json("token", "issue", cloud="dockyard")
    assert token["id"] and token["project_id"] and token["user_id"]
    catalog = cloud.cli_json("catalog", "list", cloud="dockyard")
    by_type = {c["Type"]: c for c in catalog}
    assert "identity" in by_type
    endpoints = {e["interface"]: e["url"] for e in by_type["identity"]["Endpoints"]}
    assert endpoints == {i: f"{cloud.url}/identity/v3" for i in ("public", "internal", "admin")}


def test_admin_manages_projects_users_and_roles(cloud):
    project, user = f"cli-p-{uuid.uuid4().hex[:6]}", f"cli-u-{uuid.uuid4().hex[:6]}"
    created = cloud.cli_json("project", "create", project, "--description", "from the CLI")
    assert created["name"] == project
    assert project in [p["Name"] for p in cloud.cli_json("project", "list")]
    assert cloud.cli_json("project", "show", project)["description"] == "from the CLI"
    cloud.cli_json("user", "create", "--password", "pw-123", user)
    assert user in [u["Name"] for u in cloud.cli_json("user", "list")]
    r = cloud.cli("role", "add", "--project", project, "--user", user, "member")
    assert r.returncode == 0, r.stderr
    rows = cloud.cli_json("role", "assignment", "list", "--user", user, "--names")
    assert [(a["Role"], a["Project"]) for a in rows] == [("member", f"{project}@Default")]
    r = cloud.cli("role", "remove", "--project", project, "--user", user, "member")
    assert r.returncode == 0, r.stderr
    assert cloud.cli_json("role", "assignment", "list", "--user", user) == []
    assert cloud.cli("user", "delete", user).returncode == 0
    assert cloud.cli("project", "delete", project).returncode == 0
    assert project not in [p["Name"] for p in cloud.cli_json("project", "list")]


def test_member_cannot_create_projects(cloud):
    r = cloud.cli("project", "create", "should-not-exist", cloud="dockyard")
    assert r.returncode != 0
    assert "403" in r.stderr
    names = [p["Name"] for p in cloud.cli_json("project", "list")]
    assert "should-not-exist" not in names


def test_revoked_token_stops_working(cloud):
    token = cloud.cli_json("token", "issue", cloud="dockyard")["id"]
    with cloud.client(token) as c:
        assert c.get("/identity/v3/auth/projects").status_code == 200
        r = cloud.cli("token", "revoke", token)
        assert r.returncode == 0, r.stderr
        assert c.get("/identity/v3/auth/projects").status_code == 401


def test_wrong_password_fails(cloud):
    r = cloud.cli("--os-password", "wrong", "token", "issue", cloud="dockyard")
    assert r.returncode != 0
    assert "401" in r.stderr or "authentication" in r.stderr.lower()
