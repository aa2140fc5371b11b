"""OS::Nova::Server, KeyPair and ServerGroup with the real `openstack stack ...` client, and the
story's steps 7 and 8 in one template: a Docker-host server built by `dockyard image build
docker-host` (debootstrap) and containers on its dockerd, reached at tcp://<its IP>:2375."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.support.cloud import BIN, Cloud
from tests.support.compute import cleanup, http_get, httpd_archive, make_cloud
from tests.support.docker import docker_client

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c, run_id = make_cloud(tmp_path_factory.mktemp("heat-nova"))
    c.start()
    yield c
    c.stop()
    cleanup(run_id)


@pytest.fixture(scope="module")
def httpd(cloud, tmp_path_factory):
    archive = httpd_archive(tmp_path_factory.mktemp("httpd"))
    image = cloud.cli_json("image", "create", "--container-format", "docker", "--disk-format",
                           "raw", "--public", "--file", str(archive), "httpd")  # fmt: skip
    yield image["id"]
    subprocess.run(["docker", "rmi", f"dockyard/image-{image['id']}:latest"], capture_output=True)


@pytest.fixture(scope="module")
def docker_host(cloud):
    """`dockyard image build docker-host` for real (debootstrap of docker.io, about a minute)
    with the Docker-host flavor it makes. DOCKYARD_TEST_DOCKER_HOST_ROOTFS (a debootstrap tree
    made earlier) skips the debootstrap step during development."""
    tag = f"dockyard-test/docker-host-{uuid.uuid4().hex[:6]}:latest"
    args = [str(BIN / "dockyard"), "image", "build", "docker-host", "--tag", tag]
    if os.environ.get("DOCKYARD_TEST_DOCKER_HOST_ROOTFS"):
        args += ["--rootfs", os.environ["DOCKYARD_TEST_DOCKER_HOST_ROOTFS"]]
    r = subprocess.run(args, env=cloud.server_env(), capture_output=True, text=True, timeout=900)
    image_id = None
    try:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        image_id = cloud.cli_json("image", "show", "docker-host")["id"]
        # the build also made the Docker-host flavor (admin-only extra spec)
        assert "flavor docker-host made" in r.stdout
        flavor = cloud.cli_json("flavor", "show", "docker-host")
        assert flavor["properties"] == {"dockyard:host_profile": "docker-host"}
        yield image_id
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
        if image_id:
            subprocess.run(
                ["docker", "rmi", "-f", f"dockyard/image-{image_id}:latest"], capture_output=True
            )


def ok(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert r.returncode == 0, r.stderr
    return r


def demo(cloud: Cloud, *args: str) -> subprocess.CompletedProcess:
    return cloud.cli(*args, cloud="dockyard")


def demo_json(cloud: Cloud, *args: str):
    return cloud.cli_json(*args, cloud="dockyard")


def write(tmp: Path, name: str, doc: dict) -> str:
    path = tmp / name
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def output(cloud: Cloud, stack: str, key: str):
    return demo_json(cloud, "stack", "output", "show", stack, key)["output_value"]


def remote(endpoint: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "-H", endpoint, *args], capture_output=True, text=True, timeout=60
    )


def test_server_keypair_and_group_through_compute(cloud, httpd, tmp_path):
    doc = {
        "heat_template_version": "2018-08-31",
        "parameters": {"flavor": {"type": "string", "default": "m1.tiny",
                                  "constraints": [{"custom_constraint": "nova.flavor"}]}},
        "resources": {
            "key": {"type": "OS::Nova::KeyPair",
                    "properties": {"name": "heat-key", "save_private_key": True}},
            "group": {"type": "OS::Nova::ServerGroup",
                      "properties": {"policies": ["soft-anti-affinity"]}},
            "web": {"type": "OS::Nova::Server", "properties": {
                "image": "httpd", "flavor": {"get_param": "flavor"},
                "key_name": {"get_resource": "key"},
                "networks": [{"network": "private"}],
                "scheduler_hints": {"group": {"get_resource": "group"}},
                "metadata": {"role": "web"}}},
        },
        "outputs": {
            "ip": {"value": {"get_attr": ["web", "first_address"]}},
            "nets": {"value": {"get_attr": ["web", "networks", "private"]}},
            "server": {"value": {"get_resource": "web"}},
            "private_key": {"value": {"get_attr": ["key", "private_key"]}},
            "public_key": {"value": {"get_attr": ["key", "public_key"]}},
        },
    }  # fmt: skip
    tpl = write(tmp_path, "nova.yml", doc)
    r = demo(cloud, "stack", "create", "-t", tpl, "novastack", "--wait")
    assert r.returncode == 0, r.stderr + cloud.tail()
    sid = output(cloud, "novastack", "server")
    ip = output(cloud, "novastack", "ip")
    assert output(cloud, "novastack", "nets") == [ip]
    assert "BEGIN RSA PRIVATE KEY" in output(cloud, "novastack", "private_key")
    # compute's own view: the server, its key pair, its group
    server = demo_json(cloud, "server", "show", sid)
    assert server["status"] == "ACTIVE" and server["key_name"] == "heat-key"
    assert server["properties"] == {"role": "web"}
    assert server["name"] == "novastack-web"
    keys = {k["Name"]: k for k in demo_json(cloud, "keypair", "list")}
    assert "heat-key" in keys
    groups = demo_json(cloud, "server", "group", "list", "--long")
    assert [g["Members"] for g in groups if g["Policy"] == "soft-anti-affinity"] == [[sid]]
    # it is a real server: it answers on its fixed IP and holds the key
    assert "hello from dockyard" in http_get(ip)
    container = docker_client().containers.get(f"dockyard-{sid}")
    keyfile = container.exec_run(["cat", "/root/.ssh/authorized_keys"]).output.decode()
    assert output(cloud, "novastack", "public_key").split()[1] in keyfile
    resources = {x["resource_name"]: x for x in demo_json(cloud, "stack", "resource", "list",
                                                          "novastack")}  # fmt: skip
    assert resources["web"]["resource_type"] == "OS::Nova::Server"
    assert resources["web"]["physical_resource_id"] == sid

    # stack suspend/resume suspend and resume the server (twice: the second is a no-op)
    for _ in range(2):
        ok(demo(cloud, "stack", "suspend", "novastack", "--wait"))
        assert demo_json(cloud, "server", "show", sid)["status"] == "SUSPENDED"
    ok(demo(cloud, "stack", "resume", "novastack", "--wait"))
    assert demo_json(cloud, "server", "show", sid)["status"] == "ACTIVE"
    assert demo_json(cloud, "stack", "show", "novastack")["stack_status"] == "RESUME_COMPLETE"

    # metadata changes in place; a new flavor resizes the same server live (RESIZE, the
    # default policy); with flavor_update_policy REPLACE a new flavor makes a new server
    doc["resources"]["web"]["properties"]["metadata"] = {"role": "front"}
    write(tmp_path, "nova.yml", doc)
    ok(demo(cloud, "stack", "update", "-t", tpl, "novastack", "--wait"))
    assert output(cloud, "novastack", "server") == sid
    assert demo_json(cloud, "server", "show", sid)["properties"] == {"role": "front"}
    ok(demo(cloud, "stack", "update", "-t", tpl, "--parameter", "flavor=m1.small", "novastack",
            "--wait"))  # fmt: skip
    assert output(cloud, "novastack", "server") == sid
    server = demo_json(cloud, "server", "show", sid)
    assert server["status"] == "ACTIVE" and server["flavor"]["name"] == "m1.small"
    container = docker_client().containers.get(f"dockyard-{sid}")
    assert container.attrs["HostConfig"]["Memory"] == 2048 * 2**20
    doc["resources"]["web"]["properties"]["flavor_update_policy"] = "REPLACE"
    write(tmp_path, "nova.yml", doc)
    ok(demo(cloud, "stack", "update", "-t", tpl, "--parameter", "flavor=m1.tiny", "novastack",
            "--wait"))  # fmt: skip
    new_sid = output(cloud, "novastack", "server")
    assert new_sid != sid
    assert demo_json(cloud, "server", "show", new_sid)["flavor"]["name"] == "m1.tiny"
    assert demo(cloud, "server", "show", sid).returncode != 0  # the old one is gone

    ok(demo(cloud, "stack", "delete", "novastack", "--yes", "--wait"))
    assert demo(cloud, "server", "show", new_sid).returncode != 0
    assert "heat-key" not in {k["Name"] for k in demo_json(cloud, "keypair", "list")}
    assert not [g for g in demo_json(cloud, "server", "group", "list")
                if g["Policy"] == "soft-anti-affinity"]  # fmt: skip
    with pytest.raises(Exception):  # noqa: B017 - docker's NotFound
        docker_client().containers.get(f"dockyard-{new_sid}")


def test_bad_flavor_image_or_keypair(cloud, httpd, tmp_path):
    def server(**props) -> str:
        base = {"image": "httpd", "flavor": "m1.tiny", "networks": [{"network": "private"}]}
        return write(tmp_path, "bad.yml", {"heat_template_version": "2018-08-31", "resources": {
            "s": {"type": "OS::Nova::Server", "properties": {**base, **props}}}})  # fmt: skip

    before = demo_json(cloud, "server", "list")
    r = demo(cloud, "stack", "create", "-t", server(flavor="m9.huge"), "bad1")
    assert r.returncode != 0 and "flavor" in r.stderr and "m9.huge" in r.stderr, r.stderr
    r = demo(cloud, "stack", "create", "-t", server(image="no-such-image"), "bad2")
    assert r.returncode != 0 and "no-such-image" in r.stderr, r.stderr
    assert demo(cloud, "stack", "show", "bad1").returncode != 0  # refused: no stack at all
    # a missing key pair is only known at create: the stack fails, nothing is left
    r = demo(cloud, "stack", "create", "-t", server(key_name="nokey"), "bad3", "--wait")
    show = demo_json(cloud, "stack", "show", "bad3")
    assert show["stack_status"] == "CREATE_FAILED"
    assert "Invalid key_name provided: nokey" in show["stack_status_reason"]
    assert demo_json(cloud, "server", "list") == before
    ok(demo(cloud, "stack", "delete", "bad3", "--yes", "--wait"))


def test_keypair_of_the_same_name_is_left_alone(cloud, tmp_path):
    """A stack's OS::Nova::KeyPair never takes over (nor deletes) the user's own key pair."""
    mine = demo_json(cloud, "keypair", "create", "--private-key", str(tmp_path / "k"), "mykey")
    tpl = write(tmp_path, "kp.yml", {"heat_template_version": "2018-08-31", "resources": {
        "k": {"type": "OS::Nova::KeyPair", "properties": {"name": "mykey"}}}})  # fmt: skip
    demo(cloud, "stack", "create", "-t", tpl, "kpstack", "--wait")
    show = demo_json(cloud, "stack", "show", "kpstack")
    assert show["stack_status"] == "CREATE_FAILED"
    assert "Key pair 'mykey' already exists" in show["stack_status_reason"]
    ok(demo(cloud, "stack", "delete", "kpstack", "--yes", "--wait"))
    kept = demo_json(cloud, "keypair", "show", "mykey")
    assert kept["fingerprint"] == mine["fingerprint"]
    ok(demo(cloud, "keypair", "delete", "mykey"))


def test_story_step7_and_8_on_a_docker_host_server(cloud, httpd, docker_host, tmp_path):
    """One template: a Docker-host server, a db container (password from a hidden parameter,
    data in a named volume) and a web container linked to it, both on the server's dockerd
    at tcp://<server IP>:2375, built with str_replace/get_attr."""
    endpoint = {
        "str_replace": {
            "template": "tcp://HOST:2375",
            "params": {"HOST": {"get_attr": ["host", "first_address"]}},
        }
    }
    doc = {
        "heat_template_version": "2016-10-14",
        "parameters": {"db_pass": {"type": "string", "hidden": True},
                       "image": {"type": "string"}},
        "resources": {
            "host": {"type": "OS::Nova::Server", "properties": {
                "image": "docker-host", "flavor": "docker-host",
                "networks": [{"network": "private"}]}},
            "db": {"type": "DockerInc::Docker::Container", "properties": {
                "name": "db", "image": {"get_param": "image"}, "docker_endpoint": endpoint,
                "env": [{"list_join": ["=", ["DB_PASSWORD", {"get_param": "db_pass"}]]}],
                "volumes": {"dbdata": "/data"},
                "cmd": ["sh", "-c", 'echo "$DB_PASSWORD" > /data/pw; '
                        "while true; do nc -l -p 3306 < /data/pw; done"]}},
            "web": {"type": "DockerInc::Docker::Container", "properties": {
                "image": {"get_param": "image"}, "docker_endpoint": endpoint,
                "links": {"db": "mysql"}, "cmd": ["sleep", "3600"]},
                "depends_on": "db"},
        },
        "outputs": {"endpoint": {"value": endpoint},
                    "web": {"value": {"get_resource": "web"}}},
    }  # fmt: skip
    tpl = write(tmp_path, "step7.yml", doc)
    r = demo(cloud, "stack", "create", "-t", tpl, "--parameter", "db_pass=s3cret",
             "--parameter", f"image={httpd}", "dockerhost", "--wait")  # fmt: skip
    assert r.returncode == 0, r.stderr + cloud.tail()
    show = demo_json(cloud, "stack", "show", "dockerhost")
    assert show["stack_status"] == "CREATE_COMPLETE" and show["parameters"]["db_pass"] == "******"
    ep = output(cloud, "dockerhost", "endpoint")
    servers = {s["Name"]: s for s in demo_json(cloud, "server", "list")}
    host_ip = servers["dockerhost-host"]["Networks"]["private"][0]
    assert ep == f"tcp://{host_ip}:2375"
    # `docker -H tcp://<ip>:2375 ps` on the server lists both containers
    ps = ok(remote(ep, "ps", "--format", '{{.Label "dockyard.resource"}}')).stdout.split()
    assert sorted(ps) == ["db", "web"]
    assert not docker_client().containers.list(
        filters={"label": f"dockyard.stack_id={show['id']}"}
    )  # nothing on the cloud's own engine
    # web reaches db through the link alias; the data is in db's named volume
    web = output(cloud, "dockerhost", "web")
    deadline = time.monotonic() + 30
    while True:
        got = remote(ep, "exec", web, "sh", "-c", "nc mysql 3306 </dev/null").stdout.strip()
        if got == "s3cret" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got == "s3cret"
    vols = ok(remote(ep, "volume", "ls", "-q", "--filter", f"label=dockyard.stack_id={show['id']}"))
    [volume] = vols.stdout.split()
    data = ok(remote(ep, "run", "--rm", "-v", f"{volume}:/d", httpd_ref(httpd), "cat", "/d/pw"))
    assert data.stdout.strip() == "s3cret"

    # another project cannot aim at this server's engine: refused before any connection
    other = write(tmp_path, "other.yml", {"heat_template_version": "2016-10-14", "resources": {
        "c": {"type": "DockerInc::Docker::Container",
              "properties": {"image": httpd, "docker_endpoint": ep}}}})  # fmt: skip
    r = cloud.cli("stack", "create", "-t", other, "intruder")  # as admin, project admin
    assert r.returncode != 0 and "not the Docker endpoint of a server of your project" in r.stderr

    ok(demo(cloud, "stack", "delete", "dockerhost", "--yes", "--wait"))
    assert "dockerhost-host" not in {s["Name"] for s in demo_json(cloud, "server", "list")}
    assert remote(ep, "ps").returncode != 0  # the Docker host is gone with its containers


def httpd_ref(image_id: str) -> str:
    """The tag under which the image service delivered an image to a Docker engine."""
    return f"dockyard/image-{image_id}:latest"


def test_image_names_resolve_as_glance_lists_them(cloud, httpd, tmp_path):
    """Another project's community image of the same name does not hijack (nor break) a
    template's `image: httpd`; two of one's own images of one name need the id."""
    props = {"image": "httpd", "flavor": "m1.tiny", "networks": [{"network": "private"}]}
    tpl = write(tmp_path, "v.yml", {"heat_template_version": "2018-08-31", "resources": {
        "s": {"type": "OS::Nova::Server", "properties": props}}})  # fmt: skip

    # records without data (the client would read its stdin as the image data)
    def image(token: str, name: str, **extra) -> str:
        body = {"name": name, "container_format": "docker", "disk_format": "raw", **extra}
        with cloud.client(token) as http:
            r = http.post("/image/v2/images", json=body)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    spoof = image(cloud.token("admin"), "httpd", visibility="community")
    try:
        ok(demo(cloud, "orchestration", "template", "validate", "-t", tpl))
    finally:
        ok(cloud.cli("image", "delete", spoof))
    dups = [image(cloud.token("demo"), "dup") for _ in range(2)]
    try:
        dup = write(tmp_path, "d.yml", {"heat_template_version": "2018-08-31", "resources": {
            "s": {"type": "OS::Nova::Server", "properties": {
                "image": "dup", "flavor": "m1.tiny"}}}})  # fmt: skip
        r = demo(cloud, "orchestration", "template", "validate", "-t", dup)
        assert r.returncode != 0 and "Multiple images named dup" in r.stderr, r.stderr
    finally:
        for i in dups:
            ok(demo(cloud, "image", "delete", i))
