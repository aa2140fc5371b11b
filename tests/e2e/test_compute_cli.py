"""The story's Part 1 with the real clients (openstack, nova, glance from PyPI) against a
real dockyard and a real dockerd: an image built locally and `docker save`d, booted with
`nova boot` and `openstack server create --wait`, reachable from the host on its fixed IP.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import uuid

import httpx
import pytest

from tests.support.cloud import BIN
from tests.support.compute import (
    HTTPD_TAG,
    UPLOADED,
    cleanup,
    container_of,
    containers_of_run,
    http_get,
    httpd_archive,
    make_cloud,
)
from tests.support.docker import docker_client

# The walkthrough's `private` network is 10.0.0.0/24. On a machine where another engine
# network already holds that range, point DOCKYARD_TEST_DEMO_CIDR at a free one.
DEMO_CIDR = os.environ.get("DOCKYARD_TEST_DEMO_CIDR", "10.0.0.0/24")
PREFIX = str(ipaddress.ip_network(DEMO_CIDR).network_address).rsplit(".", 1)[0] + "."


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """One dockyard on SQLite: the clients do not care about the database, and
    tests/integration/test_compute_api.py runs the same API on both backends."""
    docker_client()
    c, run_id = make_cloud(tmp_path_factory.mktemp("compute-e2e"), cidr=DEMO_CIDR)
    c.run_id = run_id
    c.start()
    try:
        yield c
    finally:
        c.stop()
        cleanup(run_id)


def openrc_env(cloud, user: str = "demo", project: str | None = None, password: str = ""):
    """The environment `source openrc-<user>` gives (novaclient has no --os-cloud)."""
    env = cloud.client_env()
    for line in (
        (cloud.home / f"openrc-{'admin' if user == 'admin' else 'demo'}").read_text().splitlines()
    ):
        if line.startswith("export "):
            key, value = line[len("export ") :].split("=", 1)
            env[key] = value.strip("'")
    if user not in ("admin", "demo"):
        env.update(OS_USERNAME=user, OS_PASSWORD=password, OS_PROJECT_NAME=project or user)
    return env


def nova(cloud, *args: str, user: str = "demo") -> subprocess.CompletedProcess:
    r = subprocess.run(
        [str(BIN / "nova"), *args],
        env=openrc_env(cloud, user),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return r


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, f"{r.args}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def rows(table: str) -> list[list[str]]:
    """The data rows of a prettytable."""
    out = []
    for line in table.splitlines():
        if line.startswith("|"):
            out.append([c.strip() for c in line.strip("|").split("|")])
    return out[1:]


@pytest.fixture(scope="module")
def nginx(cloud, tmp_path_factory):
    """Step 1: `docker save nginx | glance image-create --visibility public ...`."""
    archive = httpd_archive(tmp_path_factory.mktemp("img"))
    with open(archive, "rb") as f:
        r = cloud.cli(
            "image-create",
            "--visibility",
            "public",
            "--container-format",
            "docker",
            "--disk-format",
            "raw",
            "--name",
            "nginx",
            tool="glance",
            stdin=f,
        )
    ok(r)
    listed = cloud.cli_json("image", "list", cloud="dockyard")
    assert {"nginx"} <= {i["Name"] for i in listed if i["Status"] == "active"}
    UPLOADED.extend(i["ID"] for i in listed if i["Name"] == "nginx")  # removed by cleanup
    return "nginx"


def test_walkthrough_part_1(cloud, nginx):
    # step 2, both ways
    out = ok(nova(cloud, "boot", "--flavor", "m1.small", "--image", nginx, "nginxtest"))
    assert "nginxtest" in out
    made = cloud.cli_json(
        "server",
        "create",
        "--flavor",
        "m1.small",
        "--image",
        nginx,
        "--network",
        "private",
        "nginxtest2",
        "--wait",
        cloud="dockyard",
    )
    assert made["status"] == "ACTIVE"

    # step 4: nova list / openstack server list show ACTIVE, Running, private=10.0.0.x
    import time

    deadline = time.monotonic() + 30
    while True:
        table = rows(ok(nova(cloud, "list")))
        by_name = {r[1]: r for r in table}
        if by_name.get("nginxtest", [""] * 3)[2] == "ACTIVE" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for name in ("nginxtest", "nginxtest2"):
        _id, _name, status, task, power, networks = by_name[name]
        assert (status, task, power) == ("ACTIVE", "-", "Running"), by_name[name]
        assert networks.startswith("private=" + PREFIX), networks
    listed = {s["Name"]: s for s in cloud.cli_json("server", "list", cloud="dockyard")}
    for name in ("nginxtest", "nginxtest2"):
        s = listed[name]
        assert (s["Status"], s["Image"], s["Flavor"]) == ("ACTIVE", nginx, "m1.small")
        (ip,) = s["Networks"]["private"]
        assert ip.startswith(PREFIX)
        # step 5: the service answers on that address from the host
        assert "hello from dockyard" in http_get(ip)
        # step 3: docker ps shows the container, with the flavor's memory limit
        c = container_of(s["ID"])
        assert c.status == "running" and c.attrs["HostConfig"]["Memory"] == 2048 * 2**20
        assert c.attrs["Config"]["Image"].startswith("dockyard/image-")
    names = subprocess.run(
        ["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True
    ).stdout.split()
    assert f"dockyard-{listed['nginxtest']['ID']}" in names


def test_actions_with_openstack_cli(cloud, nginx):
    sid = listed_id(cloud, "nginxtest2")
    http = cloud.client(cloud.token("demo"))

    def state():  # the API's view (polled over HTTP: fast) and Docker's own view
        shown = http.get(f"/compute/v2.1/servers/{sid}").json()["server"]
        if shown["OS-EXT-STS:task_state"] is not None:
            return None
        return shown["status"], container_of(sid).attrs["State"]["Status"]

    def run(*args):
        ok(cloud.cli("server", *args, cloud="dockyard"))

    def settle(expected):
        import time

        deadline = time.monotonic() + 20
        while state() != expected and time.monotonic() < deadline:
            time.sleep(0.3)
        assert state() == expected

    run("stop", "nginxtest2")
    settle(("SHUTOFF", "exited"))
    r = cloud.cli("server", "stop", "nginxtest2", cloud="dockyard")
    assert r.returncode != 0 and "409" in r.stderr  # Nova's answer: conflictingRequest
    run("start", "nginxtest2")
    settle(("ACTIVE", "running"))
    started = container_of(sid).attrs["State"]["StartedAt"]
    run("reboot", "nginxtest2")
    settle(("ACTIVE", "running"))
    assert container_of(sid).attrs["State"]["StartedAt"] != started
    run("reboot", "--hard", "nginxtest2")
    settle(("ACTIVE", "running"))
    run("pause", "nginxtest2")
    settle(("PAUSED", "paused"))
    run("unpause", "nginxtest2")
    settle(("ACTIVE", "running"))
    container_of(sid).exec_run("sh -c 'echo line-a > /proc/1/fd/1; echo line-b > /proc/1/fd/1'")
    out = ok(cloud.cli("console", "log", "show", "--lines", "1", "nginxtest2", cloud="dockyard"))
    assert out.strip().splitlines() == ["line-b"]
    out = ok(nova(cloud, "console-log", "--length", "2", "nginxtest2"))
    assert out.strip().splitlines()[-2:] == ["line-a", "line-b"]
    r = cloud.cli("server", "migrate", "nginxtest2", cloud="dockyard")
    assert r.returncode != 0 and "not supported" in r.stderr
    http.close()


def test_snapshot_with_the_cli(cloud, nginx):
    """`openstack server image create --wait`: the snapshot runs as a durable operation and
    the client waits for the image to become active."""
    shown = cloud.cli_json(
        "server", "image", "create", "--name", "snap-cli", "--wait", "nginxtest2", cloud="dockyard"
    )
    UPLOADED.append(shown["id"])
    image = cloud.cli_json("image", "show", "snap-cli", cloud="dockyard")
    assert (image["status"], image["container_format"]) == ("active", "docker")
    assert image["properties"]["image_type"] == "snapshot"
    http = cloud.client(cloud.token("demo"))
    sid = listed_id(cloud, "nginxtest2")
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        server = http.get(f"/compute/v2.1/servers/{sid}").json()["server"]
        if server["OS-EXT-STS:task_state"] is None:
            break
        time.sleep(0.2)
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    http.close()
    ok(cloud.cli("image", "delete", "snap-cli", cloud="dockyard"))


def listed_id(cloud, name: str) -> str:
    return cloud.cli_json("server", "show", name, cloud="dockyard")["id"]


def test_project_isolation_with_the_cli(cloud, nginx):
    name = f"other-{uuid.uuid4().hex[:6]}"
    ident = "/identity/v3"
    with cloud.client(cloud.token("admin")) as admin:
        pid = admin.post(ident + "/projects", json={"project": {"name": name}}).json()
        pid = pid["project"]["id"]
        user = {"user": {"name": name, "password": "pw-" + name}}
        uid = admin.post(ident + "/users", json=user).json()["user"]["id"]
        roles = {x["name"]: x["id"] for x in admin.get(ident + "/roles").json()["roles"]}
        admin.put(ident + f"/projects/{pid}/users/{uid}/roles/{roles['member']}")
    auth = ["--os-username", name, "--os-password", "pw-" + name, "--os-project-name", name]
    assert cloud.cli_json("server", "list", *auth, cloud="dockyard") == []
    r = cloud.cli("server", "show", "nginxtest2", *auth, cloud="dockyard")
    assert r.returncode != 0 and "No Server found" in r.stderr
    r = cloud.cli("server", "delete", listed_id(cloud, "nginxtest2"), *auth, cloud="dockyard")
    assert r.returncode != 0
    every = {s["Name"] for s in cloud.cli_json("server", "list", "--all-projects")}
    assert {"nginxtest", "nginxtest2"} <= every
    assert cloud.cli_json("server", "list") == []  # admin's own project has none


def test_quota_refusal_leaves_nothing_behind(cloud, nginx):
    ok(cloud.cli("quota", "set", "--instances", "2", "demo"))
    try:
        before = {c.id for c in containers_of_run(cloud.run_id)}
        r = cloud.cli(
            "server",
            "create",
            "--flavor",
            "m1.tiny",
            "--image",
            nginx,
            "--network",
            "private",
            "over",
            cloud="dockyard",
        )
        assert r.returncode != 0 and "Quota exceeded for instances" in r.stderr
        assert "over" not in {s["Name"] for s in cloud.cli_json("server", "list", cloud="dockyard")}
        assert {c.id for c in containers_of_run(cloud.run_id)} == before
        limits = {
            x["Name"]: x["Value"]
            for x in cloud.cli_json("limits", "show", "--absolute", cloud="dockyard")
        }
        assert (limits["max_total_instances"], limits["instances_used"]) == (2, 2)
    finally:
        ok(cloud.cli("quota", "set", "--instances", "10", "demo"))


def test_delete_with_wait(cloud, nginx):
    ids = [listed_id(cloud, n) for n in ("nginxtest", "nginxtest2")]
    ok(cloud.cli("server", "delete", "--wait", "nginxtest2", cloud="dockyard"))
    ok(nova(cloud, "delete", "nginxtest"))
    import time

    deadline = time.monotonic() + 20
    while cloud.cli_json("server", "list", cloud="dockyard") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert cloud.cli_json("server", "list", cloud="dockyard") == []
    for sid in ids:
        assert container_of(sid) is None
    assert httpx.get(cloud.url + "/compute/v2.1").status_code == 200
    assert HTTPD_TAG  # the locally built image stays for other tests
