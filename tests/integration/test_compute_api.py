"""Compute API over HTTP against a real dockyard and a real dockerd, on SQLite and PostgreSQL.

Everything is checked against Docker's own view (docker inspect) as well as the API.
"""

from __future__ import annotations

import base64
import concurrent.futures
import os
import signal
import time
import uuid

import httpx
import pytest

from tests.conftest import BACKENDS, make_database_url
from tests.support.cloud import Cloud, free_port
from tests.support.compute import (
    MV,
    UPLOADED,
    cleanup,
    container_of,
    containers_of_run,
    http_get,
    httpd_archive,
    make_cloud,
    running_cloud,
    upload_image,
    wait_for,
    wait_gone,
)
from tests.support.docker import TEST_LABEL, docker_client

C = "/compute/v2.1"
PUBKEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvr2bN3hAzj8c9Dq6n8v0p7uBJ8ZK0r3vD1mQw8k6Xa test@host"
)


@pytest.fixture(params=BACKENDS, scope="module")
def cloud(request, tmp_path_factory, pg_databases):
    """A running dockyard (module-wide) whose Docker objects carry this run's label."""
    docker_client()
    url = make_database_url(request.param, pg_databases)
    with running_cloud(tmp_path_factory.mktemp(f"compute-{request.param}"), url) as c:
        yield c


@pytest.fixture(scope="module")
def admin(cloud):
    with cloud.client(cloud.token("admin")) as h:
        yield h


@pytest.fixture(scope="module")
def demo(cloud):
    with cloud.client(cloud.token("demo")) as h:
        yield h


@pytest.fixture(scope="module")
def image(cloud, admin, tmp_path_factory):
    archive = httpd_archive(tmp_path_factory.mktemp("img"))
    return upload_image(admin, "httpd", archive, visibility="public")


def boot(http, image, name=None, flavor="1", networks="auto", **extra) -> str:
    body = {
        "server": {
            "name": name or f"s-{uuid.uuid4().hex[:6]}",
            "imageRef": image,
            "flavorRef": flavor,
            "networks": networks,
            **extra,
        }
    }
    r = http.post(C + "/servers", json=body, headers=MV)
    assert r.status_code == 202, r.text
    assert r.headers["Location"].endswith(r.json()["server"]["id"])
    return r.json()["server"]["id"]


def action(http, sid, body, status=202):
    r = http.post(C + f"/servers/{sid}/action", json=body, headers=MV)
    assert r.status_code == status, r.text
    return r


def delete(http, sid):
    assert http.delete(C + f"/servers/{sid}").status_code == 204
    wait_gone(http, sid)


# ---- discovery and microversions -----------------------------------------------------------


def test_version_documents_and_microversion_negotiation(cloud, demo):
    r = httpx.get(cloud.url + "/compute/v2.1")  # the SDK sends no token
    assert r.status_code == 200
    v = r.json()["version"]
    assert (v["id"], v["version"], v["min_version"]) == ("v2.1", "2.96", "2.1")
    root = httpx.get(cloud.url + "/compute/").json()["versions"]
    assert [x["id"] for x in root] == ["v2.0", "v2.1"]
    r = demo.get(C + "/flavors/detail", headers={"X-OpenStack-Nova-API-Version": "2.60"})
    assert r.headers["OpenStack-API-Version"] == "compute 2.60"
    assert "extra_specs" not in r.json()["flavors"][0]
    r = demo.get(C + "/flavors/detail", headers={"OpenStack-API-Version": "compute 2.200"})
    assert r.status_code == 406 and "maximum is 2.96" in r.text
    assert httpx.get(cloud.url + C + "/servers").status_code == 401


def test_flavors_defaults_lookup_and_admin_only_changes(demo, admin):
    flavors = demo.get(C + "/flavors/detail?is_public=None", headers=MV).json()["flavors"]
    by_name = {f["name"]: f for f in flavors}
    assert {n: (f["ram"], f["vcpus"]) for n, f in by_name.items()} == {
        "m1.tiny": (512, 1),
        "m1.small": (2048, 1),
        "m1.medium": (4096, 2),
        "m1.large": (8192, 4),
        "m1.xlarge": (16384, 8),
    }
    assert demo.get(C + "/flavors/m1.small").status_code == 404  # names are looked up by list
    assert demo.get(C + "/flavors/2").json()["flavor"]["name"] == "m1.small"
    body = {"flavor": {"name": "t.host", "ram": 64, "vcpus": 1, "disk": 0, "id": "t-host"}}
    assert demo.post(C + "/flavors", json=body).status_code == 403
    assert admin.post(C + "/flavors", json=body).status_code == 200
    spec = {"extra_specs": {"dockyard:host_profile": "docker-host"}}
    assert demo.post(C + "/flavors/t-host/os-extra_specs", json=spec).status_code == 403
    bad = {"extra_specs": {"dockyard:host_profile": "privileged"}}
    assert admin.post(C + "/flavors/t-host/os-extra_specs", json=bad).status_code == 400
    r = admin.post(C + "/flavors/t-host/os-extra_specs", json=spec)
    assert r.json()["extra_specs"] == {"dockyard:host_profile": "docker-host"}
    assert admin.post(C + "/flavors", json=body).status_code == 409
    assert admin.delete(C + "/flavors/t-host").status_code == 202
    assert demo.get(C + "/flavors/t-host").status_code == 404


def test_keypairs(demo):
    r = demo.post(
        C + "/os-keypairs",
        json={"keypair": {"name": "gen"}},
        headers={"OpenStack-API-Version": "compute 2.10"},
    )
    assert r.status_code == 201
    kp = r.json()["keypair"]
    assert kp["private_key"].startswith("-----BEGIN") and kp["public_key"].startswith("ssh-rsa")
    r = demo.post(C + "/os-keypairs", json={"keypair": {"name": "gen2"}}, headers=MV)
    assert r.status_code == 400 and "public_key" in r.text  # no server-side keys from 2.92
    r = demo.post(
        C + "/os-keypairs", json={"keypair": {"name": "imp", "public_key": PUBKEY}}, headers=MV
    )
    assert r.status_code == 201 and r.json()["keypair"]["type"] == "ssh"
    assert len(r.json()["keypair"]["fingerprint"].split(":")) == 16
    assert "private_key" not in r.json()["keypair"]
    dup = demo.post(C + "/os-keypairs", json={"keypair": {"name": "imp", "public_key": PUBKEY}})
    assert dup.status_code == 409
    bad = {"keypair": {"name": "bad", "public_key": "ssh-rsa not-base64!"}}
    assert demo.post(C + "/os-keypairs", json=bad).status_code == 400
    listed = demo.get(C + "/os-keypairs", headers=MV).json()["keypairs"]
    assert {k["keypair"]["name"] for k in listed} >= {"gen", "imp"}
    assert demo.get(C + "/os-keypairs/imp").json()["keypair"]["public_key"] == PUBKEY
    assert demo.delete(C + "/os-keypairs/gen", headers=MV).status_code == 204
    assert demo.get(C + "/os-keypairs/gen").status_code == 404


# ---- refusals leave nothing behind ----------------------------------------------------------


def test_bad_flavor_image_network_are_400_and_create_nothing(cloud, demo, image):
    before = demo.get(C + "/servers", headers=MV).json()["servers"]
    cases = [
        ({"flavorRef": "nope", "imageRef": image, "networks": "auto"}, "Flavor nope"),
        ({"flavorRef": "1", "imageRef": str(uuid.uuid4()), "networks": "auto"}, "Image"),
        (
            {"flavorRef": "1", "imageRef": image, "networks": [{"uuid": str(uuid.uuid4())}]},
            "etwork",
        ),
        ({"flavorRef": "1", "imageRef": image}, "networks"),  # required from 2.37
        (
            {"flavorRef": "1", "imageRef": image, "networks": "none", "key_name": "nokey"},
            "key_name",
        ),
    ]
    for fields, fragment in cases:
        r = demo.post(C + "/servers", json={"server": {"name": "bad", **fields}}, headers=MV)
        assert r.status_code == 400, (fields, r.text)
        assert fragment in r.json()["badRequest"]["message"]
    assert demo.get(C + "/servers", headers=MV).json()["servers"] == before
    assert [c.name for c in containers_of_run(cloud.run_id) if "bad" in c.name] == []


# ---- the main path and every action, checked against docker inspect --------------------------


def test_server_lifecycle(cloud, demo, admin, image):
    demo.post(C + "/os-keypairs", json={"keypair": {"name": "life", "public_key": PUBKEY}})
    user_data = base64.b64encode(b"#!/bin/sh\necho hi\n").decode()
    sid = boot(
        demo,
        image,
        name="web",
        flavor="2",
        key_name="life",
        metadata={"role": "web"},
        user_data=user_data,
    )
    server = wait_for(demo, sid, "ACTIVE")
    assert server["OS-EXT-STS:power_state"] == 1 and server["OS-EXT-STS:task_state"] is None
    assert server["flavor"]["original_name"] == "m1.small" and server["key_name"] == "life"
    ((net, addrs),) = server["addresses"].items()
    ip = addrs[0]["addr"]
    assert net == "private" and addrs[0]["OS-EXT-IPS:type"] == "fixed"
    assert "hello from dockyard" in http_get(ip)

    c = container_of(sid)
    labels = c.labels
    assert labels["dockyard.server_id"] == sid and labels[TEST_LABEL] == "1"
    assert labels["dockyard.project_id"] == server["tenant_id"]
    host = c.attrs["HostConfig"]
    assert host["Memory"] == 2048 * 1024 * 1024
    assert (host["CpuQuota"], host["CpuPeriod"]) == (100000, 100000)
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert c.exec_run("cat /root/.ssh/authorized_keys").output.decode().strip() == PUBKEY
    meta = c.exec_run("cat /var/lib/dockyard/openstack/latest/meta_data.json").output
    assert b'"role": "web"' in meta and sid.encode() in meta
    assert c.exec_run("cat /var/lib/dockyard/openstack/latest/user_data").output == (
        b"#!/bin/sh\necho hi\n"
    )

    # list filters and pagination
    assert [s["id"] for s in demo.get(C + "/servers?name=^we").json()["servers"]] == [sid]
    assert demo.get(C + "/servers?name=zzz").json()["servers"] == []
    assert demo.get(C + "/servers/detail?status=SHUTOFF").json()["servers"] == []
    assert [s["id"] for s in demo.get(C + f"/servers/detail?ip={ip}").json()["servers"]] == [sid]

    def docker_status():
        return container_of(sid).attrs["State"]["Status"]

    action(demo, sid, {"os-stop": None})
    wait_for(demo, sid, "SHUTOFF", **{"OS-EXT-STS:power_state": 4})
    assert docker_status() == "exited"
    r = action(demo, sid, {"os-stop": None}, status=409)
    assert "conflictingRequest" in r.json()
    action(demo, sid, {"os-start": None})
    wait_for(demo, sid, "ACTIVE", **{"OS-EXT-STS:task_state": None})
    assert docker_status() == "running"
    started = container_of(sid).attrs["State"]["StartedAt"]
    action(demo, sid, {"reboot": {"type": "HARD"}})
    wait_for(demo, sid, "ACTIVE", **{"OS-EXT-STS:task_state": None})
    assert container_of(sid).attrs["State"]["StartedAt"] != started
    action(demo, sid, {"pause": None})
    wait_for(demo, sid, "PAUSED", **{"OS-EXT-STS:power_state": 3})
    assert docker_status() == "paused"
    action(demo, sid, {"unpause": None})
    wait_for(demo, sid, "ACTIVE", **{"OS-EXT-STS:task_state": None})
    action(demo, sid, {"suspend": None})
    wait_for(demo, sid, "SUSPENDED")
    assert docker_status() == "paused"
    action(demo, sid, {"resume": None})
    wait_for(demo, sid, "ACTIVE", **{"OS-EXT-STS:task_state": None})
    assert docker_status() == "running"

    # console output honours length (a string, as novaclient sends it)
    c.exec_run("sh -c 'echo one > /proc/1/fd/1; echo two > /proc/1/fd/1'")
    out = action(demo, sid, {"os-getConsoleOutput": {"length": "1"}}, status=200).json()
    assert out["output"].splitlines()[-1:] == out["output"].splitlines()
    # lock: the owner cannot act, an admin still can
    action(demo, sid, {"lock": {"locked_reason": "maintenance"}})
    assert demo.get(C + f"/servers/{sid}", headers=MV).json()["server"]["locked_reason"] == (
        "maintenance"
    )
    assert action(demo, sid, {"os-stop": None}, status=409)
    assert demo.delete(C + f"/servers/{sid}").status_code == 409
    action(demo, sid, {"unlock": None})

    # resize live: the memory limit changes, the container is not restarted
    started = container_of(sid).attrs["State"]["StartedAt"]
    action(demo, sid, {"resize": {"flavorRef": "3"}})
    wait_for(demo, sid, "VERIFY_RESIZE")
    c = container_of(sid)
    assert c.attrs["HostConfig"]["Memory"] == 4096 * 1024 * 1024
    assert c.attrs["HostConfig"]["CpuQuota"] == 200000
    assert c.attrs["State"]["StartedAt"] == started and c.attrs["State"]["Running"]
    action(demo, sid, {"revertResize": None})
    wait_for(demo, sid, "ACTIVE", **{"OS-EXT-STS:task_state": None})
    assert container_of(sid).attrs["HostConfig"]["Memory"] == 2048 * 1024 * 1024
    action(demo, sid, {"resize": {"flavorRef": "1"}})
    wait_for(demo, sid, "VERIFY_RESIZE")
    action(demo, sid, {"confirmResize": None}, status=204)
    assert wait_for(demo, sid, "ACTIVE")["flavor"]["original_name"] == "m1.tiny"

    # snapshot: a durable operation making a new active docker image that boots
    r = action(demo, sid, {"createImage": {"name": "web-snap"}})
    snap = r.json()["image_id"]
    UPLOADED.append(snap)
    wait_for(demo, sid, "ACTIVE", **{"OS-EXT-STS:task_state": None})
    img = demo.get(f"/image/v2/images/{snap}").json()
    assert (img["status"], img["container_format"]) == ("active", "docker")
    sid2 = boot(demo, snap, name="from-snap", networks="none")
    wait_for(demo, sid2, "ACTIVE")
    assert container_of(sid2).exec_run("cat /var/www/index.html").output == (
        b"hello from dockyard\n"
    )

    # rebuild on the snapshot: same id, same IP, new container
    old_container = container_of(sid).id
    action(demo, sid, {"rebuild": {"imageRef": snap, "name": "web2"}})
    server = wait_for(demo, sid, "ACTIVE", **{"OS-EXT-STS:task_state": None})
    assert server["name"] == "web2" and server["image"]["id"] == snap
    assert server["addresses"]["private"][0]["addr"] == ip
    assert container_of(sid).id != old_container
    assert "hello from dockyard" in http_get(ip)

    # unsupported actions are clear 4xx, never 500
    for body in (
        {"os-getVNCConsole": {"type": "novnc"}},
        {"os-migrateLive": {}},
        {"rescue": None},
        {"shelve": None},
    ):
        r = action(demo, sid, body, status=400)
        assert "not supported" in r.json()["badRequest"]["message"]
    assert action(demo, sid, {"bogus": None}, status=400)

    # admin sees host attributes, the demo user does not
    assert (
        admin.get(C + f"/servers/{sid}", headers=MV).json()["server"]["OS-EXT-SRV-ATTR:host"]
        == "local"
    )
    assert (
        "OS-EXT-SRV-ATTR:host" not in demo.get(C + f"/servers/{sid}", headers=MV).json()["server"]
    )

    delete(demo, sid)
    delete(demo, sid2)
    assert container_of(sid) is None and container_of(sid2) is None
    assert demo.get(C + f"/servers/{sid}").status_code == 404


def test_files_are_read_only_binds_of_a_host_directory(cloud, demo, image):
    """On the local engine the server's files are a per-server host directory (0700, key
    0600), bind-mounted read-only; rebuild writes them again, a snapshot boots with its own,
    and the directory goes with the server (the reconciler removes those of gone servers)."""
    demo.post(C + "/os-keypairs", json={"keypair": {"name": "drive", "public_key": PUBKEY}})
    user_data = base64.b64encode(b"first\n").decode()
    sid = boot(demo, image, name="drive", key_name="drive", networks="none", user_data=user_data)
    wait_for(demo, sid, "ACTIVE")
    top = cloud.home.resolve() / "instances" / sid
    meta_dir = top / "var/lib/dockyard/openstack/latest"
    keys = top / "root/.ssh/authorized_keys"
    assert (top.parent.stat().st_mode & 0o777, top.stat().st_mode & 0o777) == (0o700, 0o700)
    assert meta_dir.stat().st_mode & 0o777 == 0o755
    assert (keys.stat().st_mode & 0o777, keys.stat().st_uid) == (0o600, 0)
    assert (meta_dir / "user_data").read_bytes() == b"first\n"

    def mounts(server_id):
        c = container_of(server_id)
        return c, {m["Destination"]: m for m in c.attrs["Mounts"]}

    c, m = mounts(sid)
    assert m["/var/lib/dockyard/openstack/latest"]["Source"] == str(meta_dir)
    assert m["/root/.ssh/authorized_keys"]["Source"] == str(keys)
    assert all(x["Type"] == "bind" and x["RW"] is False for x in m.values())
    assert c.exec_run("cat /root/.ssh/authorized_keys").output.decode().strip() == PUBKEY
    assert sid.encode() in c.exec_run("cat /var/lib/dockyard/openstack/latest/meta_data.json")[1]
    r = c.exec_run("sh -c 'echo x > /var/lib/dockyard/openstack/latest/user_data'")
    assert r.exit_code != 0 and (meta_dir / "user_data").read_bytes() == b"first\n"
    assert c.exec_run("sh -c 'echo x >> /root/.ssh/authorized_keys'").exit_code != 0

    # a snapshot holds no files (like a config drive); a server booted from it gets its own
    snap = action(demo, sid, {"createImage": {"name": "drive-snap"}}).json()["image_id"]
    UPLOADED.append(snap)
    wait_for(demo, sid, "ACTIVE", **{"OS-EXT-STS:task_state": None})
    sid2 = boot(demo, snap, name="drive2", networks="none")
    wait_for(demo, sid2, "ACTIVE")
    c2, m2 = mounts(sid2)
    assert set(m2) == {"/var/lib/dockyard/openstack/latest"}  # no key pair: no key bind
    meta2 = c2.exec_run("cat /var/lib/dockyard/openstack/latest/meta_data.json").output
    assert sid2.encode() in meta2 and sid.encode() not in meta2
    assert c2.exec_run("cat /var/lib/dockyard/openstack/latest/user_data").exit_code != 0
    assert c2.exec_run("cat /root/.ssh/authorized_keys").output.strip() == b""

    # rebuild: a new container, the files written again (new user_data, the key kept)
    old = c.id
    new_data = base64.b64encode(b"second\n").decode()
    action(demo, sid, {"rebuild": {"imageRef": image, "user_data": new_data}})
    wait_for(demo, sid, "ACTIVE", **{"OS-EXT-STS:task_state": None})
    c, m = mounts(sid)
    assert c.id != old and m["/var/lib/dockyard/openstack/latest"]["Source"] == str(meta_dir)
    assert c.exec_run("cat /var/lib/dockyard/openstack/latest/user_data").output == b"second\n"
    assert c.exec_run("cat /root/.ssh/authorized_keys").output.decode().strip() == PUBKEY

    delete(demo, sid)
    delete(demo, sid2)
    assert not top.exists() and not (top.parent / sid2).exists()
    demo.delete(C + "/os-keypairs/drive")
    demo.delete(f"/image/v2/images/{snap}")

    # a directory whose server is gone (a crash between the two) is swept away
    stray = top.parent / str(uuid.uuid4())
    stray.mkdir(mode=0o700)
    deadline = time.monotonic() + 15
    while stray.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not stray.exists()


def test_pagination_links(demo, image):
    ids = [boot(demo, image, name=f"page-{i}", networks="none") for i in range(3)]
    r = demo.get(C + "/servers?limit=2&name=^page-").json()
    assert len(r["servers"]) == 2 and r["servers_links"][0]["rel"] == "next"
    nxt = r["servers_links"][0]["href"].split("/compute/v2.1", 1)[1]
    rest = demo.get(C + nxt).json()["servers"]
    assert {s["id"] for s in r["servers"] + rest} == set(ids)
    assert demo.get(C + "/servers?marker=nope").status_code == 400
    for sid in ids:
        wait_for(demo, sid, "ACTIVE")
        delete(demo, sid)


# ---- quotas ---------------------------------------------------------------------------------


def test_concurrent_creates_never_exceed_the_quota(cloud, demo, admin, image):
    project = cloud.auth("demo").json()["token"]["project"]["id"]
    services = admin.get(C + "/os-services").json()["services"]
    svc = next(s for s in services if s["host"] == "local")
    # with the only host disabled nothing boots: every server ends ERROR, no container is made
    r = admin.put(
        C + f"/os-services/{svc['id']}",
        headers=MV,
        json={"status": "disabled", "disabled_reason": "quota test"},
    )
    assert r.status_code == 200, r.text
    r = admin.put(
        C + f"/os-quota-sets/{project}",
        json={"quota_set": {"instances": 40, "cores": -1, "ram": -1}},
    )
    assert r.status_code == 200 and r.json()["quota_set"]["instances"] == 40
    body = {"server": {"name": "q", "imageRef": image, "flavorRef": "1", "networks": "none"}}
    try:

        def create(_):
            return demo.post(C + "/servers", json=body, headers=MV).status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=25) as pool:
            codes = list(pool.map(create, range(50)))
        assert codes.count(202) == 40 and codes.count(403) == 10, codes
        listed = demo.get(C + "/servers/detail?name=^q$", headers=MV).json()["servers"]
        assert len(listed) == 40
        one = wait_for(demo, listed[0]["id"], "ERROR")
        assert one["fault"]["message"].startswith("No valid host was found.")
        assert "local: disabled (quota test)" in one["fault"]["message"]
        r = demo.post(C + "/servers", json=body, headers=MV)
        assert r.status_code == 403 and "instances" in r.json()["forbidden"]["message"]
        limits = demo.get(C + "/limits", headers=MV).json()["limits"]["absolute"]
        assert (limits["maxTotalInstances"], limits["totalInstancesUsed"]) == (40, 40)
        detail = demo.get(C + f"/os-quota-sets/{project}/detail").json()["quota_set"]
        assert detail["instances"] == {"limit": 40, "in_use": 40, "reserved": 0}
        for s in listed:
            assert demo.delete(C + f"/servers/{s['id']}").status_code == 204
        for s in listed:
            wait_gone(demo, s["id"])
        assert [
            c
            for c in containers_of_run(cloud.run_id)
            if c.name.startswith("dockyard-")
            and c.labels.get("dockyard.server_id") in {s["id"] for s in listed}
        ] == []
    finally:
        admin.put(C + f"/os-services/{svc['id']}", headers=MV, json={"status": "enabled"})
        admin.delete(C + f"/os-quota-sets/{project}")


def test_quota_of_one_server_refuses_the_second(cloud, demo, admin, image):
    project = cloud.auth("demo").json()["token"]["project"]["id"]
    admin.put(C + f"/os-quota-sets/{project}", json={"quota_set": {"ram": 600}})
    try:
        r = demo.post(
            C + "/servers",
            headers=MV,
            json={
                "server": {"name": "big", "imageRef": image, "flavorRef": "2", "networks": "none"}
            },
        )
        assert r.status_code == 403 and "ram" in r.text
        assert demo.get(C + "/servers?name=^big$").json()["servers"] == []
    finally:
        admin.delete(C + f"/os-quota-sets/{project}")


# ---- project isolation ----------------------------------------------------------------------


def test_project_isolation(cloud, demo, admin, image):
    ident = "/identity/v3"
    name = f"proj-{uuid.uuid4().hex[:6]}"
    pid = admin.post(ident + "/projects", json={"project": {"name": name}}).json()["project"]["id"]
    uid = admin.post(
        ident + "/users",
        json={"user": {"name": name, "password": "pw-" + name, "default_project_id": pid}},
    ).json()["user"]["id"]
    roles = {r["name"]: r["id"] for r in admin.get(ident + "/roles").json()["roles"]}
    assert (
        admin.put(ident + f"/projects/{pid}/users/{uid}/roles/{roles['member']}").status_code == 204
    )
    other = cloud.client(cloud.token(name, "pw-" + name, name))
    mine = boot(demo, image, name="iso-a", networks="none")
    theirs = boot(other, image, name="iso-b", networks="none")
    wait_for(demo, mine, "ACTIVE")
    wait_for(other, theirs, "ACTIVE")
    assert [s["id"] for s in other.get(C + "/servers").json()["servers"]] == [theirs]
    assert other.get(C + f"/servers/{mine}").status_code == 404
    assert other.post(C + f"/servers/{mine}/action", json={"os-stop": None}).status_code == 404
    assert other.delete(C + f"/servers/{mine}").status_code == 404
    assert other.get(C + "/servers?all_tenants=1").status_code == 403
    every = {s["id"] for s in admin.get(C + "/servers?all_tenants=1").json()["servers"]}
    assert {mine, theirs} <= every
    assert mine not in {s["id"] for s in admin.get(C + "/servers").json()["servers"]}
    delete(demo, mine)
    delete(other, theirs)
    other.close()


# ---- reconciler -----------------------------------------------------------------------------


def test_reconciler_follows_docker(cloud, demo, image):
    sid = boot(demo, image, name="rec", networks="none")
    wait_for(demo, sid, "ACTIVE")
    container_of(sid).kill()  # behind dockyard's back
    wait_for(demo, sid, "SHUTOFF", timeout=10, **{"OS-EXT-STS:power_state": 4})
    container_of(sid).start()
    wait_for(demo, sid, "ACTIVE", timeout=10, **{"OS-EXT-STS:power_state": 1})
    container_of(sid).remove(force=True)
    server = wait_for(demo, sid, "ERROR", timeout=10)
    assert "removed outside dockyard" in server["fault"]["message"]
    delete(demo, sid)

    # a stray container with this deployment's labels but no server is removed
    deployment = None
    for c in docker_client().containers.list(all=True, filters={"label": "dockyard.deployment"}):
        if c.labels.get("dockyard.test.run") == cloud.run_id:
            deployment = c.labels["dockyard.deployment"]
    if deployment is None:  # every server was deleted: make one to learn the deployment id
        keep = boot(demo, image, name="keep", networks="none")
        wait_for(demo, keep, "ACTIVE")
        deployment = container_of(keep).labels["dockyard.deployment"]
        delete(demo, keep)
    stray = docker_client().containers.run(
        "dockyard-test/httpd:latest",
        detach=True,
        name=f"dockyard-{uuid.uuid4()}",
        labels={
            TEST_LABEL: "1",
            "dockyard.test.run": cloud.run_id,
            "dockyard.server_id": str(uuid.uuid4()),
            "dockyard.deployment": deployment,
        },
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and container_of(stray.name[len("dockyard-") :]):
        time.sleep(0.2)
    assert container_of(stray.name[len("dockyard-") :]) is None


# ---- crash safety ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_during_boot_leaves_one_container(backend, tmp_path, pg_databases):
    url = make_database_url(backend, pg_databases)
    c, run_id = make_cloud(tmp_path / "home", url)
    c.start()
    try:
        with c.client(c.token("demo")) as demo:
            image = upload_image(demo, "httpd", httpd_archive(tmp_path))
            sid = boot(demo, image, name="crash", networks="none")
            deadline = time.monotonic() + 20
            while container_of(sid) is None and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(c.proc.pid, signal.SIGKILL)  # mid-operation
            c.proc.wait()
            c.proc = None
        c.start()
        with c.client(c.token("demo")) as demo:
            server = wait_for(demo, sid, "ACTIVE", "ERROR", timeout=30)
            assert server["status"] == "ACTIVE", server
            mine = [
                x for x in containers_of_run(run_id) if x.labels.get("dockyard.server_id") == sid
            ]
            assert len(mine) == 1 and mine[0].status == "running"
            delete(demo, sid)
    finally:
        c.stop()
        cleanup(run_id)


def test_docker_host_profile_flavor(demo, admin, image):
    """The admin-only extra spec gives the container the flags a nested dockerd needs."""
    body = {"flavor": {"name": "t.dind", "ram": 256, "vcpus": 1, "disk": 0, "id": "t-dind"}}
    assert admin.post(C + "/flavors", json=body).status_code == 200
    spec = {"extra_specs": {"dockyard:host_profile": "docker-host"}}
    assert admin.post(C + "/flavors/t-dind/os-extra_specs", json=spec).status_code == 200
    try:
        sid = boot(demo, image, name="dind", flavor="t-dind", networks="none")
        wait_for(demo, sid, "ACTIVE")
        host = container_of(sid).attrs["HostConfig"]
        assert host["CapAdd"] == ["ALL"] and host["CapDrop"] == ["SYS_RESOURCE"]
        assert {"seccomp=unconfined", "apparmor=unconfined"} <= set(host["SecurityOpt"])
        assert host["MaskedPaths"] == [] and host["ReadonlyPaths"] == []  # systempaths=unconfined
        assert host["DeviceCgroupRules"] == ["a *:* rwm"] and "/run" in host["Tmpfs"]
        assert any(b.endswith(":/var/lib/docker:rw") for b in host["Binds"])
        assert not host["Privileged"]
        volume = f"dockyard-{sid}-docker"
        assert docker_client().volumes.get(volume).attrs["Labels"][TEST_LABEL] == "1"
        delete(demo, sid)
        assert volume not in {v.name for v in docker_client().volumes.list()}
    finally:
        admin.delete(C + "/flavors/t-dind")


def test_microversion_2_1_create_and_shapes(demo, image):
    """novaclient at 2.1 sends no `networks`: the server gets the project's network, and the
    response has the 2.1 shapes (flavor as id+links, no 2.x-only fields)."""
    v21 = {"X-OpenStack-Nova-API-Version": "2.1"}
    body = {"server": {"name": "old", "imageRef": image, "flavorRef": "m1.tiny"}}  # by name
    r = demo.post(C + "/servers", json=body, headers=v21)
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    wait_for(demo, sid, "ACTIVE")
    server = demo.get(C + f"/servers/{sid}", headers=v21).json()["server"]
    assert server["flavor"]["id"] == "1" and "original_name" not in server["flavor"]
    assert "locked" not in server and "description" not in server
    assert list(server["addresses"]) == ["private"]
    before = demo.get(C + "/servers/detail", headers=MV).json()["servers"][0]["updated"]
    delete(demo, sid)
    gone = demo.get(C + f"/servers/detail?changes-since={before}", headers=MV).json()
    assert [s["status"] for s in gone["servers"] if s["id"] == sid] == ["DELETED"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/servers"),
        ("POST", "/flavors"),
        ("POST", "/os-keypairs"),
        ("POST", "/os-server-groups"),
        ("PUT", "/os-quota-sets/x"),
        ("POST", "/servers/00000000-0000-0000-0000-000000000000/action"),
        ("PUT", "/os-services/1"),
    ],
)
def test_garbage_bodies_are_4xx_never_500(admin, method, path):
    bodies = [
        None,
        "text",
        [],
        {},
        {"server": []},
        {"server": {"name": 5, "flavorRef": {}, "imageRef": [], "networks": 7}},
        {"server": {"name": "x", "flavorRef": "1", "imageRef": "x", "min_count": "many"}},
        {"flavor": {"name": "f", "ram": "lots", "vcpus": 1, "rxtx_factor": "x"}},
        {"flavor": {"name": "f", "ram": 1, "vcpus": 1, "os-flavor-access:is_public": "maybe"}},
        {"keypair": {"name": "k" * 300}},
        {"keypair": {"name": "k", "public_key": 5}},
        {"server_group": {"name": "g", "policies": "affinity"}},
        {"quota_set": {"instances": "x"}},
        {"quota_set": {"bogus": 1}},
        {"reboot": {"type": "SIDEWAYS"}},
        {"status": 5},
    ]
    for body in bodies:
        r = admin.request(method, C + path, json=body, headers=MV)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text)


def test_second_host_and_anti_affinity(cloud, demo, admin, image):
    """`hostctl add` registers another engine (here: the same socket under another name);
    the scheduler spreads an anti-affinity group over both and then names why it is full."""
    import subprocess
    import sys

    name = f"second-{uuid.uuid4().hex[:4]}"
    cmd = [sys.executable, "-m", "dockyard.compute.hostctl"]
    env = cloud.server_env()
    r = subprocess.run(
        [*cmd, "add", name, "unix:///var/run/docker.sock"], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [*cmd, "add", name, "unix:///var/run/docker.sock"], env=env, capture_output=True, text=True
    )
    assert r.returncode == 1 and "exists already" in r.stderr
    hyp = admin.get(C + "/os-hypervisors/detail", headers=MV).json()["hypervisors"]
    assert {h["hypervisor_hostname"] for h in hyp} >= {"local", name}
    group = demo.post(
        C + "/os-server-groups",
        headers=MV,
        json={"server_group": {"name": "spread", "policy": "anti-affinity"}},
    )
    gid = group.json()["server_group"]["id"]
    try:
        ids = []
        for i in range(3):
            r = demo.post(
                C + "/servers",
                headers=MV,
                json={
                    "server": {
                        "name": f"aa-{i}",
                        "imageRef": image,
                        "flavorRef": "1",
                        "networks": "none",
                    },
                    "os:scheduler_hints": {"group": gid},
                },
            )
            assert r.status_code == 202, r.text
            ids.append(r.json()["server"]["id"])
            wait_for(demo, ids[-1], "ACTIVE", "ERROR")
        shown = [admin.get(C + f"/servers/{i}", headers=MV).json()["server"] for i in ids]
        assert [s["status"] for s in shown] == ["ACTIVE", "ACTIVE", "ERROR"]
        assert {s["OS-EXT-SRV-ATTR:host"] for s in shown[:2]} == {"local", name}
        fault = shown[2]["fault"]["message"]
        assert fault.startswith("No valid host was found.")
        assert fault.count("ServerGroupAntiAffinityFilter") == 2
        members = demo.get(C + f"/os-server-groups/{gid}", headers=MV).json()
        assert set(members["server_group"]["members"]) == set(ids)
        for sid in ids:
            delete(demo, sid)
    finally:
        subprocess.run(
            [*cmd, "disable", name, "--reason", "test over"],
            env=env,
            check=True,
            capture_output=True,
        )
        demo.delete(C + f"/os-server-groups/{gid}")


def test_security_group_by_id_shows_its_name(demo, image):
    """OSC puts the group's id in the `name` key; the server shows the name, as Nova does."""
    groups = demo.get("/networking/v2.0/security-groups?name=default").json()["security_groups"]
    (group,) = groups
    sid = boot(demo, image, name="sg", security_groups=[{"name": group["id"]}])
    server = wait_for(demo, sid, "ACTIVE")
    assert server["security_groups"] == [{"name": "default"}]
    bad = {
        "server": {
            "name": "sg2",
            "imageRef": image,
            "flavorRef": "1",
            "networks": "auto",
            "security_groups": [{"name": "no-such-group"}],
        }
    }
    r = demo.post(C + "/servers", json=bad, headers=MV)
    assert r.status_code == 400 and "no-such-group" in r.text
    delete(demo, sid)


def test_two_processes_share_postgresql_without_double_work(tmp_path, pg_databases):
    """Two dockyards on one PostgreSQL database: operations are claimed by both (SKIP
    LOCKED), and every server still gets exactly one container."""
    import psycopg

    url = make_database_url("postgresql", pg_databases)
    a, run_id = make_cloud(tmp_path / "home", url)
    a.start()
    b = Cloud(home=a.home, port=free_port(), database_url=url, extra_env=dict(a.extra_env))
    b.start()
    try:
        with a.client(a.token("demo")) as demo_a, b.client(b.token("demo")) as demo_b:
            image = upload_image(demo_a, "httpd", httpd_archive(tmp_path))
            ids = []
            for i in range(10):
                http = demo_a if i % 2 else demo_b
                ids.append(boot(http, image, name=f"pair-{i}", networks="none"))
            for sid in ids:
                wait_for(demo_a, sid, "ACTIVE", timeout=60)
            by_server: dict[str, int] = {}
            for c in containers_of_run(run_id):
                sid = c.labels["dockyard.server_id"]
                by_server[sid] = by_server.get(sid, 0) + 1
            assert by_server == dict.fromkeys(ids, 1)
            with psycopg.connect(url) as conn:
                owners = conn.execute(
                    "SELECT DISTINCT split_part(owner, ':', 2) FROM tasks_operations "
                    "WHERE kind = 'compute.create'"
                ).fetchall()
            assert len(owners) == 2, owners  # both processes did some of the work
            for sid in ids:
                assert demo_b.delete(C + f"/servers/{sid}").status_code == 204
            for sid in ids:
                wait_gone(demo_a, sid)
    finally:
        b.stop()
        a.stop()
        cleanup(run_id)
