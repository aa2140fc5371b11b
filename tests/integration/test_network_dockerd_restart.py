"""Security groups stay in force across a dockerd restart (tested with traffic).

Restarting the host's dockerd would disturb everything else using it, so this test runs a
Docker engine of its own in a network namespace of its own (own iptables, own bridges,
own data root) and a dockyard inside the same namespace; the test reaches dockyard over a
veth pair. Then it restarts *that* dockerd and checks the rules with real traffic.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cloud import Cloud, new_cloud
from tests.support.docker import TEST_LABEL, busybox_rootfs_tar, docker_client
from tests.support.network import context_for, database_of, eventually

IMAGE = "dockyard-net-busybox:test"
N = "/networking/v2.0"


def _run(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, **kw)


class NetnsDocker:
    """A dockerd in its own network namespace, reachable over a veth pair."""

    def __init__(self) -> None:
        tag = f"{random.randint(0, 0xFFFF):04x}"
        self.ns = f"dytest-{tag}"
        self.veth = f"dyv{tag}"
        octet = random.randint(1, 250)
        self.host_ip = f"169.254.{octet}.1"
        self.ns_ip = f"169.254.{octet}.2"
        self.root = Path(tempfile.mkdtemp(prefix="dyd-"))
        self.sock = self.root / "docker.sock"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def nsenter(self) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.ns}"]

    def setup(self) -> None:
        for tool in ("nsenter", "ip", "dockerd"):
            if shutil.which(tool) is None:
                pytest.fail(f"{tool} is required (util-linux, iproute2, docker.io)")
        _run("ip", "netns", "add", self.ns)
        _run(*self.nsenter(), "ip", "link", "set", "lo", "up")
        _run("ip", "link", "add", f"{self.veth}a", "type", "veth", "peer", "name", f"{self.veth}b")
        _run("ip", "link", "set", f"{self.veth}b", "netns", self.ns)
        _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", f"{self.veth}a")
        _run("ip", "link", "set", f"{self.veth}a", "up")
        _run(*self.nsenter(), "ip", "addr", "add", f"{self.ns_ip}/30", "dev", f"{self.veth}b")
        _run(*self.nsenter(), "ip", "link", "set", f"{self.veth}b", "up")

    def start(self) -> None:
        log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            [
                *self.nsenter(),
                "dockerd",
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.root / "docker.pid"),
                "-H",
                self.url,
                "--bridge=none",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        import docker

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                docker.DockerClient(base_url=self.url, timeout=5).ping()
                return
            except Exception:  # noqa: BLE001 - not up yet
                if self.proc.poll() is not None:
                    break
                time.sleep(0.3)
        raise RuntimeError((self.root / "dockerd.log").read_text()[-3000:])

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.url, timeout=60)

    def teardown(self) -> None:
        try:
            client = self.client() if self.proc is not None else None
            if client is not None:
                for c in client.containers.list(all=True):
                    c.remove(force=True)
        finally:
            self.stop()
            _run("ip", "netns", "del", self.ns, check=False)
            _run("ip", "link", "del", f"{self.veth}a", check=False)
            _run("umount", "-R", str(self.root / "data"), check=False)
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class NetnsCloud(Cloud):
    """A dockyard running inside the namespace (so its iptables are that namespace's)."""

    netns: NetnsDocker | None = None

    @property
    def url(self) -> str:
        return f"http://{self.netns.ns_ip}:{self.port}"

    def command(self) -> list[str]:
        return [*self.netns.nsenter(), *super().command()]

    def server_env(self) -> dict:
        return {**super().server_env(), "DOCKYARD_HOST": "0.0.0.0", "DOCKYARD_PUBLIC_URL": self.url}


def tcp_ok(container, ip: str) -> bool:
    r = container.exec_run(["sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 {ip} 80"])
    return b"hello from dockyard" in r.output


def ping_ok(container, ip: str) -> bool:
    return container.exec_run(["ping", "-c", "1", "-W", "1", ip]).exit_code == 0


def test_rules_in_force_after_dockerd_restart(tmp_path):
    docker_client()  # a Docker installation is needed at all
    if os.geteuid() != 0:
        pytest.fail("root is needed (network namespaces, iptables)")
    engine = NetnsDocker()
    cloud = None
    try:
        engine.setup()
        engine.start()
        subprocess.run(
            [
                "docker",
                "-H",
                engine.url,
                "import",
                "--change",
                'CMD ["/bin/sh", "-c", "httpd -f -p 80 -h /var/www"]',
                "--change",
                "ENV PATH=/bin",
                "-",
                IMAGE,
            ],
            input=busybox_rootfs_tar(),
            check=True,
            capture_output=True,
        )
        cloud = new_cloud(
            tmp_path / "home",
            docker=True,
            env={"DOCKYARD_DOCKER_URL": engine.url},
            cls=NetnsCloud,
            netns=engine,
        )
        cloud.start()
        demo = cloud.client(cloud.token("demo"))
        r = demo.post(f"{N}/security-groups", json={"security_group": {"name": "web"}})
        web = r.json()["security_group"]["id"]
        icmp = {"security_group_id": web, "direction": "ingress", "protocol": "icmp"}
        r = demo.post(f"{N}/security-group-rules", json={"security_group_rule": icmp})
        assert r.status_code == 201, r.text

        from dockyard.docker.networks import endpoint_config, ensure_network
        from dockyard.network.ports import allocate_port

        db = database_of(cloud)
        try:
            with db.session() as s:
                b_s = allocate_port(
                    s, context_for(cloud), device_id="dr-s", security_groups=["web"]
                )
                b_c = allocate_port(s, context_for(cloud), device_id="dr-c")
        finally:
            db.dispose()
        client = engine.client()
        made = {}
        for name, b in (("s", b_s), ("c", b_c)):
            ensure_network(client, b)
            made[name] = client.containers.run(
                IMAGE,
                detach=True,
                name=f"dockyard-drtest-{name}",
                labels={TEST_LABEL: "1"},
                restart_policy={"Name": "always"},
                **endpoint_config(b),
            )
        c, s_ip = made["c"], b_s.ip_address
        assert eventually(lambda: ping_ok(c, s_ip), 5)  # the ICMP rule admits ping ...
        assert not tcp_ok(c, s_ip)  # ... and nothing admits TCP 80

        engine.stop()
        engine.start()
        client = engine.client()

        def running() -> bool:
            return all(client.containers.get(x.id).attrs["State"]["Running"] for x in made.values())

        assert eventually(running, 30, interval=0.5)
        c = client.containers.get(made["c"].id)
        assert eventually(lambda: ping_ok(c, s_ip), 10), cloud.tail(20)
        assert not tcp_ok(c, s_ip)
        # and a change made after the restart still takes effect
        tcp = {**icmp, "protocol": "tcp", "port_range_min": 80, "port_range_max": 80}
        r = demo.post(f"{N}/security-group-rules", json={"security_group_rule": tcp})
        assert r.status_code == 201
        assert eventually(lambda: tcp_ok(c, s_ip), 3.5)
    finally:
        if cloud is not None:
            cloud.stop()
        engine.teardown()
