"""Security groups really filter: two containers attached through the compute interface,
real TCP and ICMP traffic, rule changes in force within 2 s, rules restored after a dockyard
restart and after the kernel lost them (what a dockerd restart or a reboot does)."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from tests.support.cloud import free_port, new_cloud, unique_cidr
from tests.support.docker import TEST_LABEL, build_busybox_image, docker_client
from tests.support.network import context_for, database_of, eventually, instance_of

IMAGE = "dockyard-net-busybox:test"
OPEN_WITHIN = 2.0  # the promise; polling adds the cost of one probe on top
PROBE_SLACK = 1.5


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    client = docker_client()
    build_busybox_image(IMAGE)
    cloud = new_cloud(tmp_path_factory.mktemp("dockyard-fw"), docker=True)
    cloud.start()
    instance = instance_of(cloud)
    state = {"cloud": cloud, "client": client, "instance": instance, "containers": {}}
    try:
        yield state
    finally:
        cloud.stop()
        cloud.cleanup(instance)


def _run_container(client, binding, name: str):
    from dockyard.docker.networks import endpoint_config, ensure_network

    ensure_network(client, binding)
    c = client.containers.create(
        IMAGE,
        name=f"dockyard-fwtest-{name}-{binding.port_id[:8]}",
        labels={TEST_LABEL: "1"},
        **endpoint_config(binding, aliases=[name]),
    )
    c.start()
    c.reload()
    net = c.attrs["NetworkSettings"]["Networks"][binding.docker_network]
    assert net["IPAddress"] == binding.ip_address
    assert net["MacAddress"] == binding.mac_address
    return c


def tcp_ok(client_container, ip: str, port: int = 80) -> bool:
    r = client_container.exec_run(
        ["sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 {ip} {port}"]
    )
    return b"hello from dockyard" in r.output


def ping_ok(client_container, ip: str) -> bool:
    return client_container.exec_run(["ping", "-c", "1", "-W", "1", ip]).exit_code == 0


@pytest.fixture(scope="module")
def servers(env):
    """S in group `web` (no ingress rule), D and C in `default`, all on the demo network."""
    from dockyard.network.ports import allocate_port

    cloud = env["cloud"]
    demo = cloud.client(cloud.token("demo"))
    r = demo.post("/networking/v2.0/security-groups", json={"security_group": {"name": "web"}})
    assert r.status_code == 201, r.text
    ctx = context_for(cloud, "demo")
    db = database_of(cloud)
    try:
        with db.session() as s:
            b_s = allocate_port(s, ctx, device_id="fw-s", security_groups=["web"])
            b_d = allocate_port(s, ctx, device_id="fw-d")
            b_c = allocate_port(s, ctx, device_id="fw-c")
    finally:
        db.dispose()
    assert b_s.network_name == "private"
    containers = {
        "s": _run_container(env["client"], b_s, "s"),
        "d": _run_container(env["client"], b_d, "d"),
        "c": _run_container(env["client"], b_c, "c"),
    }
    env["containers"] = containers
    return {"s": b_s, "d": b_d, "c": b_c, **{k + "_ct": v for k, v in containers.items()}}


def _rule_ids(cloud, group: str) -> list[str]:
    rules = cloud.cli_json("security group rule list", group, cloud="dockyard")
    return [r["ID"] for r in rules]


def test_default_group_allows_same_group_and_blocks_others(env, servers):
    c = servers["c_ct"]
    assert eventually(lambda: tcp_ok(c, servers["d"].ip_address), OPEN_WITHIN + PROBE_SLACK)
    assert not tcp_ok(c, servers["s"].ip_address)
    assert not ping_ok(c, servers["s"].ip_address)

    # the Docker host itself is never filtered (the operator's `curl 10.0.0.5`)
    def host_reaches_s() -> bool:
        try:
            r = httpx.get(f"http://{servers['s'].ip_address}/", timeout=2)
        except httpx.HTTPError:
            return False
        return "hello from dockyard" in r.text

    assert eventually(host_reaches_s, 5)

    # containers on one network resolve each other by name (Docker's embedded DNS)
    def resolves() -> bool:
        return servers["d"].ip_address in c.exec_run(["nslookup", "d"]).output.decode()

    assert eventually(resolves, 5)


def test_rule_create_opens_and_delete_closes(env, servers):
    cloud, c, s_ip = env["cloud"], servers["c_ct"], servers["s"].ip_address
    before = set(_rule_ids(cloud, "web"))
    r = cloud.cli(
        "security group rule create",
        "--protocol",
        "tcp",
        "--dst-port",
        "80",
        "web",
        cloud="dockyard",
    )
    assert r.returncode == 0, r.stderr
    started = time.monotonic()
    assert eventually(lambda: tcp_ok(c, s_ip), OPEN_WITHIN + PROBE_SLACK), cloud.tail(20)
    opened_after = time.monotonic() - started
    (rule_id,) = set(_rule_ids(cloud, "web")) - before
    r = cloud.cli("security group rule delete", rule_id, cloud="dockyard")
    assert r.returncode == 0, r.stderr
    assert eventually(lambda: not tcp_ok(c, s_ip), OPEN_WITHIN + PROBE_SLACK)
    print(f"rule in force after {opened_after:.2f}s")


def test_icmp_rule_allows_ping(env, servers):
    cloud, c, s_ip = env["cloud"], servers["c_ct"], servers["s"].ip_address
    assert not ping_ok(c, s_ip)
    r = cloud.cli("security group rule create", "--protocol", "icmp", "web", cloud="dockyard")
    assert r.returncode == 0, r.stderr
    assert eventually(lambda: ping_ok(c, s_ip), OPEN_WITHIN + PROBE_SLACK)
    assert not tcp_ok(c, s_ip)  # ICMP only: port 80 stays closed


def _prefix(env) -> str:
    from dockyard.network.common import chain_prefix

    return chain_prefix(env["instance"])


def test_rules_come_back_when_the_kernel_loses_them(env, servers):
    """A dockerd restart or a reboot can drop iptables state; the loop puts it back."""
    prefix, c, s_ip = _prefix(env), servers["c_ct"], servers["s"].ip_address
    subprocess.run(["iptables", "-D", "DOCKER-USER", "-j", f"{prefix}-FWD"], check=True)
    subprocess.run(["iptables", "-F", f"{prefix}-FWD"], check=True)
    assert eventually(lambda: not tcp_ok(c, s_ip), 5.0)
    saved = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True)
    assert f"-A DOCKER-USER -j {prefix}-FWD" in saved.stdout


def test_rules_restored_after_dockyard_restart(env, servers):
    from dockyard.network.firewall import IptablesApplier

    cloud, prefix = env["cloud"], _prefix(env)
    c, s_ip = servers["c_ct"], servers["s"].ip_address
    cloud.stop()
    # with dockyard down the rules stay in force ...
    assert not tcp_ok(c, s_ip)
    # ... and even when the kernel forgets them meanwhile, a restart reconciles from the DB
    IptablesApplier().remove(prefix)
    assert eventually(lambda: tcp_ok(c, s_ip), 3.0)  # proves the chains did the blocking
    cloud.port = free_port()  # the old one may have been taken meanwhile by another server
    cloud.start()
    assert eventually(lambda: not tcp_ok(c, s_ip), 5.0)
    assert ping_ok(c, s_ip)  # the ICMP rule from the database is in force again
    assert tcp_ok(c, servers["d"].ip_address)


def test_changing_a_ports_groups(env, servers):
    from dockyard.network.ports import apply_security_groups

    cloud, c, s_ip = env["cloud"], servers["c_ct"], servers["s"].ip_address
    assert not tcp_ok(c, s_ip)
    db = database_of(cloud)
    try:
        with db.session() as s:
            b = apply_security_groups(s, context_for(cloud), servers["s"].port_id, ["default"])
        assert len(b.security_group_ids) == 1
        assert eventually(lambda: tcp_ok(c, s_ip), OPEN_WITHIN + PROBE_SLACK)
        with db.session() as s:
            apply_security_groups(s, context_for(cloud), servers["s"].port_id, ["web"])
        assert eventually(lambda: not tcp_ok(c, s_ip), OPEN_WITHIN + PROBE_SLACK)
    finally:
        db.dispose()


def test_connect_a_second_network_and_disconnect(env, servers):
    from dockyard.docker.networks import connect, disconnect
    from dockyard.network.ports import allocate_port, release_ports

    cloud, client, c = env["cloud"], env["client"], servers["c_ct"]
    demo = cloud.client(cloud.token("demo"))
    net = demo.post("/networking/v2.0/networks", json={"network": {"name": "blue"}}).json()
    net = net["network"]
    r = demo.post(
        "/networking/v2.0/subnets",
        json={"subnet": {"network_id": net["id"], "cidr": unique_cidr()}},
    )
    assert r.status_code == 201, r.text
    db = database_of(cloud)
    try:
        with db.session() as s:
            b = allocate_port(s, context_for(cloud), device_id="fw-c-blue", network_id=net["id"])
        connect(client, c.id, b, aliases=["c"])
        connect(client, c.id, b, aliases=["c"])  # idempotent
        c.reload()
        attached = c.attrs["NetworkSettings"]["Networks"][b.docker_network]
        assert (attached["IPAddress"], attached["MacAddress"]) == (b.ip_address, b.mac_address)
        disconnect(client, c.id, b)
        disconnect(client, c.id, b)  # not attached is fine
        c.reload()
        assert b.docker_network not in c.attrs["NetworkSettings"]["Networks"]
        with db.session() as s:
            release_ports(s, "fw-c-blue")
    finally:
        db.dispose()
    assert demo.delete(f"/networking/v2.0/networks/{net['id']}").status_code == 204


def test_released_port_loses_its_rules_and_its_traffic(env, servers):
    """Deleting a port removes its rules; a container still using its old address (or one
    attached behind dockyard's back) then passes nothing on dockyard's network."""
    from dockyard.network.ports import ports_for_device, release_ports

    cloud, prefix = env["cloud"], _prefix(env)
    c, d_ip = servers["c_ct"], servers["d"].ip_address
    port_chain = f"{prefix}-I{servers['d'].port_id[:12]}"

    def chains() -> str:
        return subprocess.run(
            ["iptables-save", "-t", "filter"], capture_output=True, text=True
        ).stdout

    assert port_chain in chains()
    assert tcp_ok(c, d_ip)  # same group
    db = database_of(cloud)
    try:
        with db.session() as s:
            release_ports(s, "fw-d")
        with db.session() as s:
            assert ports_for_device(s, "fw-d") == []
    finally:
        db.dispose()
    assert eventually(lambda: port_chain not in chains(), OPEN_WITHIN + PROBE_SLACK)
    assert eventually(lambda: not tcp_ok(c, d_ip), OPEN_WITHIN + PROBE_SLACK)
    env["containers"]["d"].remove(force=True)
