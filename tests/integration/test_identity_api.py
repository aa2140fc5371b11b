"""Identity API v3 over HTTP against a real dockyard, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.cloud import DEMO_PASSWORD

ID = "/identity/v3"


@pytest.fixture(scope="module")
def admin(cloud):
    with cloud.client(cloud.token("admin")) as c:
        yield c


@pytest.fixture(scope="module")
def demo(cloud):
    with cloud.client(cloud.token("demo")) as c:
        yield c


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_version_documents_need_no_token(cloud):
    r = httpx.get(cloud.url + "/identity")
    assert r.status_code == 300
    assert r.json()["versions"]["values"][0]["id"] == "v3.14"
    r = httpx.get(cloud.url + ID)
    assert r.status_code == 200
    assert r.json()["version"]["links"][0]["href"] == cloud.url + ID + "/"
    assert r.headers["x-openstack-request-id"].startswith("req-")


def test_password_token_has_what_clients_need(cloud):
    r = cloud.auth("admin")
    assert r.status_code == 201
    token = r.json()["token"]
    assert r.headers["X-Subject-Token"]
    assert token["user"]["name"] == "admin"
    assert token["project"]["name"] == "admin"
    assert {x["name"] for x in token["roles"]} == {"admin", "member", "reader"}
    assert token["expires_at"].endswith("Z")
    types = {s["type"]: s for s in token["catalog"]}
    assert "identity" in types
    eps = types["identity"]["endpoints"]
    assert {e["interface"] for e in eps} == {"public", "internal", "admin"}
    assert all(e["url"] == cloud.url + ID and e["region_id"] == "RegionOne" for e in eps)


def test_demo_is_member_not_admin(cloud):
    roles = {x["name"] for x in cloud.auth("demo").json()["token"]["roles"]}
    assert roles == {"member", "reader"}


def test_wrong_password_gives_401_and_no_token(cloud):
    r = cloud.auth("admin", password="wrong")
    assert r.status_code == 401
    assert "X-Subject-Token" not in r.headers
    assert r.json()["error"]["code"] == 401
    r = cloud.auth("nobody", password="x")
    assert r.status_code == 401


def test_missing_or_garbage_token_is_401(cloud):
    for headers in ({}, {"X-Auth-Token": "garbage"}, {"X-Auth-Token": "gAAAA" + "x" * 200}):
        r = httpx.get(cloud.url + ID + "/projects", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"]["title"] == "Unauthorized"


def test_revoked_token_is_401_on_next_use(cloud, admin):
    victim = cloud.token("demo")
    with cloud.client(victim) as c:
        assert c.get(ID + "/auth/projects").status_code == 200
        r = admin.delete(ID + "/auth/tokens", headers={"X-Subject-Token": victim})
        assert r.status_code == 204
        assert c.get(ID + "/auth/projects").status_code == 401
    r = admin.get(ID + "/auth/tokens", headers={"X-Subject-Token": victim})
    assert r.status_code == 404


def test_validate_and_check_token(cloud, admin, demo):
    subject = cloud.token("demo")
    r = admin.get(ID + "/auth/tokens", headers={"X-Subject-Token": subject})
    assert r.status_code == 200
    assert r.json()["token"]["user"]["name"] == "demo"
    assert admin.head(ID + "/auth/tokens", headers={"X-Subject-Token": subject}).status_code == 200
    other = cloud.token("admin")
    r = demo.get(ID + "/auth/tokens", headers={"X-Subject-Token": other})
    assert r.status_code == 403


def test_unscoped_domain_scoped_and_rescoped_tokens(cloud):
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"id": "default"}, "password": ""}
                },
            },
            "scope": {"domain": {"id": "default"}},
        }
    }
    body["auth"]["identity"]["password"]["user"]["password"] = cloud.auth_password("admin")
    r = httpx.post(cloud.url + ID + "/auth/tokens", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["token"]["domain"]["name"] == "Default"
    del body["auth"]["scope"]
    r = httpx.post(cloud.url + ID + "/auth/tokens", json=body)
    assert r.json()["token"]["project"]["name"] == "admin"  # the default project
    rescope = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": r.headers["X-Subject-Token"]}},
            "scope": {"project": {"name": "demo", "domain": {"name": "Default"}}},
        }
    }
    r2 = httpx.post(cloud.url + ID + "/auth/tokens", json=rescope)
    assert r2.status_code == 201
    assert r2.json()["token"]["project"]["name"] == "demo"
    assert r2.json()["token"]["expires_at"] <= r.json()["token"]["expires_at"]


def test_demo_cannot_scope_to_admin_project(cloud):
    r = cloud.auth("demo", project="admin")
    assert r.status_code == 401


def test_project_crud_and_member_refusals(cloud, admin, demo):
    name = unique("proj")
    r = admin.post(ID + "/projects", json={"project": {"name": name, "description": "d"}})
    assert r.status_code == 201, r.text
    pid = r.json()["project"]["id"]
    assert r.json()["project"]["domain_id"] == "default"
    assert admin.post(ID + "/projects", json={"project": {"name": name}}).status_code == 409
    listed = admin.get(ID + "/projects", params={"name": name}).json()["projects"]
    assert [p["id"] for p in listed] == [pid]
    r = admin.patch(ID + f"/projects/{pid}", json={"project": {"description": "new"}})
    assert r.json()["project"]["description"] == "new"
    r = demo.post(ID + "/projects", json={"project": {"name": unique("x")}})
    assert r.status_code == 403
    assert "identity:create_project" in r.json()["error"]["message"]
    assert demo.get(ID + "/projects").status_code == 403
    assert demo.get(ID + f"/projects/{pid}").status_code == 403
    assert admin.delete(ID + f"/projects/{pid}").status_code == 204
    assert admin.get(ID + f"/projects/{pid}").status_code == 404


@pytest.mark.parametrize(
    "path, body, fragment",
    [
        ("/projects", None, "not valid JSON"),
        ("/projects", {}, "'project'"),
        ("/projects", {"project": {}}, "project.name"),
        ("/projects", {"project": {"name": ""}}, "project.name"),
        ("/projects", {"project": {"name": "x", "enabled": "maybe"}}, "project.enabled"),
        ("/users", {"user": {"password": "x"}}, "user.name"),
        ("/users", {"usr": {"name": "x"}}, "'user'"),
        ("/roles", {"role": {"name": 5}}, "role.name"),
        ("/auth/tokens", {"auth": {}}, "identity"),
        ("/auth/tokens", {"auth": {"identity": {"methods": []}}}, "methods"),
        ("/auth/tokens", [1, 2], "dictionary"),
    ],
)
def test_bad_bodies_are_400_naming_the_problem_and_create_nothing(admin, path, body, fragment):
    before = {k: len(admin.get(ID + f"/{k}").json()[k]) for k in ("projects", "users", "roles")}
    if body is None:
        r = admin.post(
            ID + path,
            content=b'{"project": {"name": ',
            headers={"Content-Type": "application/json"},
        )
    else:
        r = admin.post(ID + path, json=body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]["message"]
    after = {k: len(admin.get(ID + f"/{k}").json()[k]) for k in ("projects", "users", "roles")}
    assert after == before


def test_oversized_body_is_413(admin):
    r = admin.post(
        ID + "/projects", json={"project": {"name": "x", "description": "y" * 2_000_000}}
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == 413


def test_user_lifecycle_grants_and_assignments(cloud, admin):
    pname, uname = unique("p"), unique("u")
    pid = admin.post(ID + "/projects", json={"project": {"name": pname}}).json()["project"]["id"]
    r = admin.post(ID + "/users", json={"user": {"name": uname, "password": "pw-1"}})
    assert r.status_code == 201
    user = r.json()["user"]
    assert "password" not in user and "password_hash" not in str(user)
    uid = user["id"]
    roles = {x["name"]: x["id"] for x in admin.get(ID + "/roles").json()["roles"]}
    assert cloud.auth(uname, password="pw-1", project=pname).status_code == 401  # no role yet
    grant = ID + f"/projects/{pid}/users/{uid}/roles/{roles['member']}"
    assert admin.head(grant).status_code == 404
    assert admin.put(grant).status_code == 204
    assert admin.head(grant).status_code == 204
    r = cloud.auth(uname, password="pw-1", project=pname)
    assert r.status_code == 201
    assert {x["name"] for x in r.json()["token"]["roles"]} == {"member", "reader"}
    ra = admin.get(
        ID + "/role_assignments",
        params={"user.id": uid, "scope.project.id": pid, "include_names": "True"},
    ).json()["role_assignments"]
    assert len(ra) == 1
    assert ra[0]["role"]["name"] == "member" and ra[0]["scope"]["project"]["name"] == pname
    eff = admin.get(ID + "/role_assignments", params={"user.id": uid, "effective": ""}).json()
    assert {a["role"]["id"] for a in eff["role_assignments"]} == {roles["member"], roles["reader"]}
    token = r.headers["X-Subject-Token"]
    assert admin.delete(grant).status_code == 204
    with cloud.client(token) as c:
        assert c.get(ID + "/auth/projects").status_code == 401  # role removal takes effect
    assert admin.delete(ID + f"/users/{uid}").status_code == 204
    assert cloud.auth(uname, password="pw-1", project="").status_code == 401
    admin.delete(ID + f"/projects/{pid}")


def test_user_changes_own_password_and_old_tokens_die(cloud, admin):
    uname = unique("u")
    uid = admin.post(ID + "/users", json={"user": {"name": uname, "password": "old-pw"}}).json()[
        "user"
    ]["id"]
    token = cloud.token(uname, password="old-pw", project="")
    with cloud.client(token) as c:
        bad = {"user": {"password": "new-pw", "original_password": "wrong"}}
        assert c.post(ID + f"/users/{uid}/password", json=bad).status_code == 401
        good = {"user": {"password": "new-pw", "original_password": "old-pw"}}
        assert c.post(ID + f"/users/{uid}/password", json=good).status_code == 204
        assert c.get(ID + f"/users/{uid}").status_code == 401
    assert cloud.auth(uname, password="old-pw", project="").status_code == 401
    assert cloud.auth(uname, password="new-pw", project="").status_code == 201
    other = admin.post(ID + "/users", json={"user": {"name": unique("u"), "password": "p"}})
    r = admin.post(
        ID + f"/users/{other.json()['user']['id']}/password",
        json={"user": {"password": "x", "original_password": "p"}},
    )
    assert r.status_code == 403  # even admins change only their own password this way
    admin.delete(ID + f"/users/{uid}")
    admin.delete(ID + f"/users/{other.json()['user']['id']}")


def test_application_credentials(cloud, demo):
    me = demo.get(ID + "/auth/tokens", headers={"X-Subject-Token": demo.headers["X-Auth-Token"]})
    uid = me.json()["token"]["user"]["id"]
    r = demo.post(
        ID + f"/users/{uid}/application_credentials",
        json={"application_credential": {"name": unique("ac"), "roles": [{"name": "reader"}]}},
    )
    assert r.status_code == 201, r.text
    ac = r.json()["application_credential"]
    body = {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": ac["id"], "secret": ac["secret"]},
            }
        }
    }
    r = httpx.post(cloud.url + ID + "/auth/tokens", json=body)
    assert r.status_code == 201
    assert {x["name"] for x in r.json()["token"]["roles"]} == {"reader"}
    body["auth"]["identity"]["application_credential"]["secret"] = "wrong"
    assert httpx.post(cloud.url + ID + "/auth/tokens", json=body).status_code == 401
    listed = demo.get(ID + f"/users/{uid}/application_credentials").json()
    assert "secret" not in str(listed)
    assert demo.delete(ID + f"/users/{uid}/application_credentials/{ac['id']}").status_code == 204


def test_demo_sees_only_its_own_things(cloud, demo):
    r = demo.get(ID + "/auth/projects")
    assert [p["name"] for p in r.json()["projects"]] == ["demo"]
    assert demo.get(ID + "/users").status_code == 403
    assert demo.get(ID + "/role_assignments").status_code == 403
    assert demo.get(ID + "/auth/catalog").json()["catalog"]


def test_password_never_reaches_the_log(cloud):
    cloud.auth("admin")
    cloud.auth("demo", password="a-wrong-password")
    log = cloud.log_path.read_text()
    assert DEMO_PASSWORD not in log and "a-wrong-password" not in log


def _me(client) -> dict:
    token = client.headers["X-Auth-Token"]
    return client.get(ID + "/auth/tokens", headers={"X-Subject-Token": token}).json()["token"]


@pytest.mark.parametrize(
    "kind, body, fragment",
    [
        ("project", {"project": {"name": ""}}, "project.name"),
        ("project", {"project": {"enabled": []}}, "project.enabled"),
        ("project", {"projekt": {}}, "'project'"),
        ("user", {"user": {"enabled": "often"}}, "user.enabled"),
        ("user", {"user": "x"}, "'user' must be a JSON object"),
        ("password", {"user": {"password": "x"}}, "user.original_password"),
        ("password", {}, "'user'"),
        ("app_cred", {"application_credential": {}}, "application_credential.name"),
        ("app_cred", {"application_credential": {"name": "a", "expires_at": "soon"}}, "expires_at"),
    ],
)
def test_bad_updates_are_400_and_change_nothing(admin, kind, body, fragment):
    me = _me(admin)
    project = admin.get(ID + f"/projects/{me['project']['id']}").json()["project"]
    user = admin.get(ID + f"/users/{me['user']['id']}").json()["user"]
    if kind == "project":
        r = admin.patch(ID + f"/projects/{project['id']}", json=body)
    elif kind == "user":
        r = admin.patch(ID + f"/users/{user['id']}", json=body)
    elif kind == "password":
        r = admin.post(ID + f"/users/{user['id']}/password", json=body)
    else:
        r = admin.post(ID + f"/users/{user['id']}/application_credentials", json=body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]["message"]
    assert admin.get(ID + f"/projects/{project['id']}").json()["project"] == project
    assert admin.get(ID + f"/users/{user['id']}").json()["user"] == user
    creds = admin.get(ID + f"/users/{user['id']}/application_credentials").json()
    assert creds["application_credentials"] == []
