"""Orchestration with the real `openstack stack ...` and legacy `heat` commands, real containers."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.support.cloud import BIN, Cloud, new_cloud
from tests.support.docker import TEST_LABEL, build_busybox_image, docker_client

pytestmark = [pytest.mark.e2e, pytest.mark.docker]
IMAGE = "dockyard-heat-busybox"
SOCKET = "unix:///var/run/docker.sock"


@pytest.fixture(scope="module")
def docker():
    client = docker_client()
    build_busybox_image(IMAGE, "sleep 3600")
    yield client
    for c in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}.heat=1"}):
        c.remove(force=True)
    for v in client.volumes.list(filters={"label": f"{TEST_LABEL}.heat=1"}):
        v.remove(force=True)


def _cloud(home: Path, **env) -> Cloud:
    return new_cloud(
        home,
        docker=True,
        labels={f"{TEST_LABEL}.heat": "1"},
        env={"DOCKYARD_HEAT_ALLOWED_ENDPOINTS": SOCKET, **env},
    )


def _sh(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True)


@pytest.fixture(scope="module")
def engine2():
    """A second Docker engine in a network namespace of this test (stand-in for a Docker-host
    server, story step 7), reached over a veth pair at tcp://<its address>:2375. Being in its
    own namespace it has its own docker0 and iptables: it cannot touch the host's. Removed
    (engine, namespace, data) after the module."""
    if shutil.which("dockerd") is None:
        pytest.fail("dockerd is needed for the TCP engine of these tests (apt install docker.io)")
    tag = uuid.uuid4().hex[:6]
    ns, host_if, ns_if = f"dyheat-{tag}", f"dyh{tag}", f"dyn{tag}"
    octet = int(tag[:2], 16) % 200 + 20
    host_ip, ns_ip = f"10.254.{octet}.1", f"10.254.{octet}.2"
    root = Path(tempfile.mkdtemp(prefix="dockyard-engine2-", dir="/tmp"))
    _sh("ip", "netns", "add", ns)
    proc = None
    try:
        _sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _sh("ip", "link", "set", ns_if, "netns", ns)
        _sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        _sh("ip", "link", "set", host_if, "up")
        _sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        _sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        _sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        url = f"tcp://{ns_ip}:2375"
        proc = subprocess.Popen(
            # nsenter, not `ip netns exec`: that one remounts /sys and hides the cgroups
            ["nsenter", f"--net=/var/run/netns/{ns}", "dockerd", "--data-root", str(root / "data"),
             "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"),
             "-H", url, "--bip", "172.31.254.1/24"],
            stdout=open(root / "log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while subprocess.run(["docker", "-H", url, "version"], capture_output=True).returncode:
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(
                    f"the test's dockerd did not start: {(root / 'log').read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield url
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        subprocess.run(["ip", "link", "delete", host_if], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def heat(tmp_path_factory, docker, engine2):
    c = _cloud(tmp_path_factory.mktemp("heat-e2e"))
    c.extra_env["DOCKYARD_HEAT_ALLOWED_ENDPOINTS"] = f"{SOCKET},{engine2}"
    c.start()
    yield c
    c.stop()
    c.cleanup()


def legacy_heat(cloud: Cloud, *args: str) -> subprocess.CompletedProcess:
    """The legacy `heat` shell (no --os-cloud support): credentials from OS_* variables."""
    env = cloud.client_env()
    env.update(
        OS_AUTH_URL=cloud.auth_url,
        OS_USERNAME="admin",
        OS_PASSWORD=cloud.auth_password("admin"),
        OS_PROJECT_NAME="admin",
        OS_USER_DOMAIN_NAME="Default",
        OS_PROJECT_DOMAIN_NAME="Default",
        OS_IDENTITY_API_VERSION="3",
    )
    env.pop("OS_CLIENT_CONFIG_FILE", None)
    return subprocess.run(
        [str(BIN / "heat"), *args], env=env, capture_output=True, text=True, timeout=120
    )


def dcli(cloud: Cloud, *args: str) -> subprocess.CompletedProcess:
    """As the demo user (a project member with a network), like a tenant would."""
    return cloud.cli(*args, cloud="dockyard")


def djson(cloud: Cloud, *args: str):
    return cloud.cli_json(*args, cloud="dockyard")


def write(tmp: Path, name: str, doc: dict) -> str:
    path = tmp / name
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def stack_containers(docker, stack_id: str) -> list[dict]:
    """Summaries (Id, Names, State, Labels) of the stack's containers: one list call, no
    per-container inspect that a concurrent removal could turn into a 404."""
    return docker.api.containers(all=True, filters={"label": f"dockyard.stack_id={stack_id}"})


def test_story_step6_and_legacy_heat_shell(heat, docker, tmp_path):
    tpl = write(tmp_path, "docker_temp.yml", {
        "heat_template_version": "2013-05-23",
        "description": "Heat template to deploy Docker containers to an existing host",
        "resources": {"nginx-01": {"type": "DockerInc::Docker::Container",
                                   "properties": {"image": IMAGE, "docker_endpoint": SOCKET}}},
    })  # fmt: skip
    r = heat.cli("stack", "create", "-t", tpl, "nginxheat1", "--wait")
    assert r.returncode == 0, r.stderr + heat.tail()
    rows = {s["Stack Name"]: s for s in heat.cli_json("stack", "list")}
    assert rows["nginxheat1"]["Stack Status"] == "CREATE_COMPLETE"
    sid = rows["nginxheat1"]["ID"]
    [container] = stack_containers(docker, sid)
    assert container["State"] == "running"
    assert container["Labels"]["dockyard.resource"] == "nginx-01"
    assert container["Labels"]["dockyard.project_id"]
    res = heat.cli_json("stack", "resource", "list", "nginxheat1")
    assert res[0]["physical_resource_id"] == container["Id"]
    events = heat.cli("stack", "event", "list", "nginxheat1")
    assert "CREATE_COMPLETE" in events.stdout
    validate = heat.cli("orchestration", "template", "validate", "-t", tpl)
    assert validate.returncode == 0 and "Description" in validate.stdout
    # the legacy heat shell as the story uses it
    r = legacy_heat(heat, "resource-type-list")
    assert r.returncode == 0 and "DockerInc::Docker::Container" in r.stdout, r.stderr
    r = legacy_heat(heat, "stack-create", "-f", tpl, "legacyheat")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = legacy_heat(heat, "stack-list")
        if "legacyheat" in r.stdout and "CREATE_COMPLETE" in r.stdout.split("legacyheat")[1][:80]:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(r.stdout)
    for name in ("nginxheat1", "legacyheat"):
        assert heat.cli("stack", "delete", name, "--yes", "--wait").returncode == 0
    assert stack_containers(docker, sid) == []


def test_story_step8_links_env_volume_update_and_delete(heat, docker, tmp_path):
    db_name = f"heat-db-{uuid.uuid4().hex[:6]}"
    doc = {
        "heat_template_version": "2015-10-15",
        "parameters": {"db_pass": {"type": "string", "hidden": True}},
        "resources": {
            "db": {"type": "DockerInc::Docker::Container", "properties": {
                "name": db_name, "image": IMAGE,
                "env": [{"list_join": ["=", ["DB_PASSWORD", {"get_param": "db_pass"}]]}],
                "volumes": {"dbdata": "/data"},
                "cmd": ["sh", "-c", 'echo "$DB_PASSWORD" > /data/pw; '
                        "while true; do nc -l -p 3306 < /data/pw; done"]}},
            "web": {"type": "DockerInc::Docker::Container", "depends_on": "db",
                    "properties": {"image": IMAGE, "links": {db_name: "mysql"},
                                   "env": ["MODE=one"]}},
        },
        "outputs": {"db_ip": {"value": {"get_attr": ["db", "network_ip"]}},
                    "web_id": {"value": {"get_resource": "web"}}},
    }  # fmt: skip
    tpl = write(tmp_path, "lamp.yml", doc)
    r = dcli(heat, "stack", "create", "-t", tpl, "--parameter", "db_pass=s3cret", "lamp", "--wait")
    assert r.returncode == 0, r.stderr + heat.tail()
    show = djson(heat, "stack", "show", "lamp")
    assert show["parameters"]["db_pass"] == "******"
    sid = show["id"]
    web_id = djson(heat, "stack", "output", "show", "lamp", "web_id")["output_value"]
    db_ip = djson(heat, "stack", "output", "show", "lamp", "db_ip")["output_value"]
    # on the project's network, at the fixed IP of a port networking allocated
    ports = djson(heat, "port", "list", "--long")
    assert any(db_ip in json.dumps(p["Fixed IP Addresses"]) for p in ports), ports
    nets = docker.containers.get(web_id).attrs["NetworkSettings"]["Networks"]
    assert list(nets) and all(n.startswith("dockyard-net-") for n in nets)
    # the web container reaches the db through the link alias and gets the password
    out = subprocess.run(["docker", "exec", web_id, "sh", "-c", "nc mysql 3306 </dev/null"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.stdout.strip() == "s3cret", out
    # ...which the db wrote into its named volume
    vols = docker.volumes.list(filters={"label": f"dockyard.stack_id={sid}"})
    assert len(vols) == 1
    data = Path(vols[0].attrs["Mountpoint"]) / "pw"
    assert data.read_text().strip() == "s3cret"
    template = dcli(heat, "stack", "template", "show", "lamp")
    assert "DockerInc::Docker::Container" in template.stdout
    # changing web's env replaces its container
    doc["resources"]["web"]["properties"]["env"] = ["MODE=two"]
    write(tmp_path, "lamp.yml", doc)
    r = dcli(heat, "stack", "update", "-t", tpl, "--existing", "lamp", "--wait")
    assert r.returncode == 0, r.stderr + heat.tail()
    new_id = djson(heat, "stack", "output", "show", "lamp", "web_id")["output_value"]
    assert new_id != web_id
    assert "MODE=two" in docker.containers.get(new_id).attrs["Config"]["Env"]
    assert web_id not in [c["Id"] for c in stack_containers(docker, sid)]
    # delete --wait removes every container and volume the stack made
    r = dcli(heat, "stack", "delete", "lamp", "--yes", "--wait")
    assert r.returncode == 0, r.stderr
    assert stack_containers(docker, sid) == []
    assert docker.volumes.list(filters={"label": f"dockyard.stack_id={sid}"}) == []


def test_failures_missing_image_rollback_and_refused_endpoint(heat, docker, tmp_path):
    bad = {"heat_template_version": "2015-10-15", "resources": {
        "ok": {"type": "DockerInc::Docker::Container", "properties": {"image": IMAGE}},
        "c": {"type": "DockerInc::Docker::Container", "depends_on": "ok",
              "properties": {"image": "dockyard-no-such-image:1"}}}}  # fmt: skip
    tpl = write(tmp_path, "bad.yml", bad)
    r = dcli(heat, "stack", "create", "-t", tpl, "noimage", "--wait")
    assert r.returncode != 0
    show = djson(heat, "stack", "show", "noimage")
    assert show["stack_status"] == "CREATE_FAILED"
    assert show["stack_status_reason"].startswith("Resource CREATE failed: ResourceInError: ")
    assert "dockyard-no-such-image" in show["stack_status_reason"]
    r = dcli(heat, "stack", "create", "-t", tpl, "--enable-rollback", "rolled", "--wait")
    show = djson(heat, "stack", "show", "rolled")
    assert show["stack_status"] == "ROLLBACK_COMPLETE", show
    assert stack_containers(docker, show["id"]) == []
    for name in ("noimage", "rolled"):
        dcli(heat, "stack", "delete", name, "--yes", "--wait")
    # a docker_endpoint nobody allowed is refused before any connection is attempted
    seen: list = []
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", 2375))
        port = 2375
    except OSError:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
    listener.listen(5)
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                seen.append(listener.accept())
            except TimeoutError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        evil = write(tmp_path, "evil.yml", {"heat_template_version": "2015-10-15", "resources": {
            "member": {"type": "DockerInc::Docker::Container", "properties": {
                "image": IMAGE, "docker_endpoint": f"tcp://127.0.0.1:{port}"}}}})  # fmt: skip
        r = heat.cli("stack", "create", "-t", evil, "evil", cloud="dockyard")
        assert r.returncode != 0
        assert "docker_endpoint" in r.stderr and "not the Docker endpoint" in r.stderr
        time.sleep(0.5)
        assert seen == []
        # host paths and privileged need admin
        priv = write(tmp_path, "priv.yml", {"heat_template_version": "2015-10-15", "resources": {
            "c": {"type": "DockerInc::Docker::Container",
                  "properties": {"image": IMAGE, "volumes": {"/etc": "/host-etc"}}}}})  # fmt: skip
        r = heat.cli("stack", "create", "-t", priv, "priv", cloud="dockyard")
        assert r.returncode != 0 and "admin" in r.stderr
    finally:
        stop.set()
        t.join()
        listener.close()
    cyc = write(tmp_path, "cyc.yml", {"heat_template_version": "2015-10-15", "resources": {
        "a": {"type": "OS::Heat::None", "depends_on": "b"},
        "b": {"type": "OS::Heat::None", "depends_on": "a"}}})  # fmt: skip
    r = heat.cli("stack", "create", "-t", cyc, "cyc")
    assert r.returncode != 0 and "a -> b -> a" in r.stderr


def test_kill_during_create_then_restart_finishes(tmp_path, docker):
    cloud = _cloud(tmp_path / "home", DOCKYARD_TASK_LEASE_SECONDS="3")
    cloud.start()
    try:
        doc = {"heat_template_version": "2015-10-15", "resources": {
            f"c{i}": {"type": "DockerInc::Docker::Container", "properties": {"image": IMAGE}}
            for i in range(10)}}  # fmt: skip
        tpl = write(tmp_path, "ten.yml", doc)
        created = djson(cloud, "stack", "create", "-t", tpl, "ten")
        sid = created["id"]
        deadline = time.monotonic() + 20
        while not stack_containers(docker, sid) and time.monotonic() < deadline:
            time.sleep(0.05)
        cloud.proc.send_signal(signal.SIGKILL)
        cloud.proc.wait()
        cloud.proc = None
        cloud.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = djson(cloud, "stack", "show", "ten")["stack_status"]
            if not status.endswith("IN_PROGRESS"):
                break
            time.sleep(1)
        assert status in ("CREATE_COMPLETE", "CREATE_FAILED"), status
        rows = djson(cloud, "stack", "resource", "list", "ten")
        ids = {r["physical_resource_id"] for r in rows}
        for c in stack_containers(docker, sid):
            assert c["Id"] in ids, f"container {c['Names']} has no resource row"
        if status == "CREATE_COMPLETE":
            assert len(stack_containers(docker, sid)) == 10
        assert dcli(cloud, "stack", "delete", "ten", "--yes", "--wait").returncode == 0
        assert stack_containers(docker, sid) == []
    finally:
        cloud.stop()
        cloud.cleanup()


def test_image_from_the_image_service_is_delivered(heat, docker, tmp_path):
    archive = tmp_path / "busybox.tar"
    subprocess.run(["docker", "save", "-o", str(archive), IMAGE], check=True)
    image = djson(heat, "image", "create", "--container-format", "docker", "--disk-format",
                  "raw", "--file", str(archive), "heat-busybox")  # fmt: skip
    tpl = write(tmp_path, "glance.yml", {"heat_template_version": "2015-10-15", "resources": {
        "c": {"type": "DockerInc::Docker::Container",
              "properties": {"image": image["id"], "cmd": ["sleep", "600"]}}}})  # fmt: skip
    r = dcli(heat, "stack", "create", "-t", tpl, "fromglance", "--wait")
    assert r.returncode == 0, r.stderr + heat.tail()
    sid = djson(heat, "stack", "show", "fromglance")["id"]
    [c] = stack_containers(docker, sid)
    assert c["Image"] == f"dockyard/image-{image['id']}:latest" and c["State"] == "running"
    assert dcli(heat, "stack", "delete", "fromglance", "--yes", "--wait").returncode == 0
    dcli(heat, "image", "delete", image["id"])
    subprocess.run(["docker", "rmi", f"dockyard/image-{image['id']}:latest"], capture_output=True)


def test_dockyard_image_build_docker_host_uploads_with_progress(heat, docker, tmp_path):
    # the debootstrap step (about 90 s) is replaced by a busybox root filesystem here; the
    # import, the init script, the streamed upload with progress and the image are the same
    import io
    import tarfile

    from tests.support.docker import busybox_rootfs_tar

    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_tar())) as tar:
        tar.extractall(rootfs)
    tag = f"dockyard-test/docker-host-{uuid.uuid4().hex[:6]}:latest"
    r = subprocess.run(
        [str(BIN / "dockyard"), "image", "build", "docker-host", "--name", "dh-test",
         "--tag", tag, "--rootfs", str(rootfs)],
        env=heat.server_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert "[3/3]" in r.stdout and "100%" in r.stdout
        cfg = docker.api.inspect_image(tag)["Config"]
        assert (
            cfg["Cmd"] == ["/usr/local/bin/docker-host-init"] and "2375/tcp" in cfg["ExposedPorts"]
        )
        images = {i["Name"]: i for i in heat.cli_json("image", "list", "--long")}
        assert images["dh-test"]["Status"] == "active"
        assert images["dh-test"]["Visibility"] == "public"
    finally:
        heat.cli("image", "delete", "dh-test")
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def test_story_step7_containers_on_a_tcp_docker_host(heat, engine2, tmp_path):
    """Two containers whose docker_endpoint is built with str_replace from the host's address
    (what get_attr of a Docker-host server gives), the image coming from the image service
    (the host cannot pull); `docker -H tcp://... ps` on that host lists them."""
    archive = tmp_path / "busybox.tar"
    subprocess.run(["docker", "save", "-o", str(archive), IMAGE], check=True)
    image = djson(heat, "image", "create", "--container-format", "docker", "--disk-format",
                  "raw", "--file", str(archive), "heat-remote-busybox")  # fmt: skip
    host, port = engine2.removeprefix("tcp://").split(":")
    endpoint = {
        "str_replace": {
            "template": "tcp://HOST:PORT",
            "params": {"HOST": {"get_param": "host"}, "PORT": port},
        }
    }
    doc = {"heat_template_version": "2015-10-15",
           "parameters": {"host": {"type": "string"}},
           "resources": {n: {"type": "DockerInc::Docker::Container", "properties": {
               "image": image["id"], "cmd": ["sleep", "600"], "docker_endpoint": endpoint}}
               for n in ("one", "two")}}  # fmt: skip
    tpl = write(tmp_path, "remote.yml", doc)
    r = dcli(heat, "stack", "create", "-t", tpl, "--parameter", f"host={host}", "remote", "--wait")
    assert r.returncode == 0, r.stderr + heat.tail()
    sid = djson(heat, "stack", "show", "remote")["id"]
    ps = subprocess.run(
        ["docker", "-H", engine2, "ps", "--filter", f"label=dockyard.stack_id={sid}",
         "--format", "{{.Label \"dockyard.resource\"}} {{.Image}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")  # fmt: skip
    assert sorted(x for x in ps if x) == [
        f"one dockyard/image-{image['id']}:latest",
        f"two dockyard/image-{image['id']}:latest",
    ]
    assert stack_containers(docker_client(), sid) == []  # nothing on the local engine
    assert dcli(heat, "stack", "delete", "remote", "--yes", "--wait").returncode == 0
    left = subprocess.run(
        ["docker", "-H", engine2, "ps", "-aq", "--filter", f"label=dockyard.stack_id={sid}"],
        capture_output=True,
        text=True,
    )
    assert left.stdout.strip() == ""
    dcli(heat, "image", "delete", image["id"])


def test_network_removed_behind_our_back_is_made_again(heat, docker, tmp_path):
    """The containers of a stack share a network that is inspected once in a while, not per
    container: when it went missing meanwhile, the next create makes it again."""
    tpl = write(tmp_path, "one.yml", {"heat_template_version": "2015-10-15", "resources": {
        "c": {"type": "DockerInc::Docker::Container",
              "properties": {"image": IMAGE, "cmd": ["sleep", "600"]}}}})  # fmt: skip
    ok = dcli(heat, "stack", "create", "-t", tpl, "net-one", "--wait")
    assert ok.returncode == 0, ok.stderr + heat.tail()
    sid = djson(heat, "stack", "show", "net-one")["id"]
    [c] = stack_containers(docker, sid)
    [net] = list(c["NetworkSettings"]["Networks"])
    assert dcli(heat, "stack", "delete", "net-one", "--yes", "--wait").returncode == 0
    if not docker.networks.get(net).attrs["Containers"]:
        docker.networks.get(net).remove()  # behind dockyard's back
    ok = dcli(heat, "stack", "create", "-t", tpl, "net-two", "--wait")
    assert ok.returncode == 0, ok.stderr + heat.tail()
    sid = djson(heat, "stack", "show", "net-two")["id"]
    [c] = stack_containers(docker, sid)
    assert list(c["NetworkSettings"]["Networks"]) == [net] and c["State"] == "running"
    assert dcli(heat, "stack", "delete", "net-two", "--yes", "--wait").returncode == 0
