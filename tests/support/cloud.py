"""Start and stop real `dockyard up` processes for tests, and drive clients against them.

Every test cloud comes from one factory (benchmarks use it too):

    cloud = new_cloud(home)                                  # identity, image: no Docker objects
    cloud = new_cloud(home, url, docker=True)                # labelled, a demo range of its own
    cloud = new_cloud(home, url, docker=True, fast=True)     # + quick reconcile, stop and lease
    cloud = new_cloud(home, docker=True, labels={"dockyard.test.heat": "1"}, env={...})
    cloud.start() ... cloud.stop(); cloud.cleanup()          # cleanup: what it left in Docker

`tests/support/compute.py` and `network.py` keep what only their tests need (and their older
names `make_cloud`, `network_cloud`, `cleanup` as thin wrappers of the above).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from tests.support.docker import TEST_LABEL

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "admin-secret-pw"
DEMO_PASSWORD = "demo-secret-pw"
RUN_LABEL = "dockyard.test.run"  # its value: the run id of the cloud that made the object
# for tests that wait on reconciliation, stops or crash recovery (compute)
FAST_SETTINGS = {
    "DOCKYARD_COMPUTE_STOP_TIMEOUT": "2",
    "DOCKYARD_RECONCILE_INTERVAL": "1",
    "DOCKYARD_ORPHAN_GRACE_SECONDS": "1",
    "DOCKYARD_TASK_LEASE_SECONDS": "3",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_HANDED_OUT: set[str] = set()


def unique_cidr() -> str:
    """A /24 that overlaps no Docker network on this host and none handed out before by this
    process (nor the default 10.0.0.0/24), so concurrent test runs do not collide."""
    ids = subprocess.run(["docker", "network", "ls", "-q"], capture_output=True, text=True)
    used = subprocess.run(
        ["docker", "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"]
        + ids.stdout.split(),
        capture_output=True,
        text=True,
    ).stdout.split()
    taken = [ipaddress.ip_network(u) for u in used if "." in u]
    while True:
        cidr = f"10.{random.randint(200, 249)}.{random.randint(0, 255)}.0/24"
        net = ipaddress.ip_network(cidr)
        if cidr not in _HANDED_OUT and not any(net.overlaps(t) for t in taken):
            _HANDED_OUT.add(cidr)
            return cidr


@dataclass
class Cloud:
    home: Path
    port: int
    database_url: str = ""
    extra_env: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    run_id: str = ""  # new_cloud(docker=True): RUN_LABEL's value on its Docker objects

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return self.url + "/identity/v3"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def server_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "DOCKYARD_"))}
        env.update(
            DOCKYARD_HOME=str(self.home),
            DOCKYARD_ADMIN_PASSWORD=ADMIN_PASSWORD,
            DOCKYARD_DEMO_PASSWORD=DEMO_PASSWORD,
            DOCKYARD_LOG_LEVEL="DEBUG",
            DOCKYARD_DEMO_IMAGE="0",
        )
        if self.database_url:
            env["DOCKYARD_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        """How the server is started (subclasses may wrap it, e.g. in nsenter)."""
        return [str(BIN / "dockyard"), "up", "--port", str(self.port)]

    def start(self, timeout: float = 60) -> Cloud:
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child keeps it)
        self.proc = subprocess.Popen(
            self.command(),
            env=self.server_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockyard exited early:\n{self.tail()}")
            try:
                if httpx.get(self.url + "/healthcheck", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"dockyard did not become healthy:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def database(self):
        """dockyard.db.Database of this cloud (dispose() it when done)."""
        from dockyard.db import Database

        return Database(self.database_url or f"sqlite:///{self.home / 'dockyard.db'}")

    def instance(self) -> str | None:
        """The cloud's dockyard instance id (labels its Docker networks, names its firewall
        chains), or None when it has none yet; never makes one."""
        from dockyard.network.models import Setting

        db = self.database()
        try:
            with db.session() as s:
                found = s.get(Setting, "instance_id")
                return found.value if found is not None else None
        except Exception:  # noqa: BLE001 - never started: no database or no tables
            return None
        finally:
            db.dispose()

    def cleanup(self, instance: str | None = None) -> None:
        """Remove what the cloud left behind (call it after stop()): Docker containers,
        networks and volumes with its run label, the Docker networks of its instance (with
        any container still attached, such as one a test made), the instance's firewall
        chains. `instance` saves reading it from the cloud's database."""
        if self.run_id:
            remove_run_objects(self.run_id)
        instance = instance or self.instance()
        if instance:
            remove_instance(instance)

    # ---- HTTP helpers ---------------------------------------------------------------

    @staticmethod
    def auth_password(user: str) -> str:
        return ADMIN_PASSWORD if user == "admin" else DEMO_PASSWORD

    def auth(self, user: str = "admin", password: str | None = None, project: str | None = None):
        """POST /v3/auth/tokens with a password; returns the httpx response."""
        password = password or (ADMIN_PASSWORD if user == "admin" else DEMO_PASSWORD)
        body: dict = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": user, "domain": {"name": "Default"}, "password": password}
                    },
                }
            }
        }
        project = project if project is not None else ("admin" if user == "admin" else "demo")
        if project:
            body["auth"]["scope"] = {"project": {"name": project, "domain": {"name": "Default"}}}
        return httpx.post(self.auth_url + "/auth/tokens", json=body, timeout=30)

    def token(self, user: str = "admin", password: str | None = None, project: str | None = None):
        r = self.auth(user, password, project)
        assert r.status_code == 201, r.text
        return r.headers["X-Subject-Token"]

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"X-Auth-Token": token} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    # ---- real OpenStack clients -----------------------------------------------------

    def client_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.home / "clouds.yaml")
        env["HOME"] = str(self.home / "client-home")
        return env

    def os_env(self, cloud: str = "dockyard-admin") -> dict:
        """OS_* variables for a cloud of clouds.yaml, for clients without --os-cloud (glance)."""
        data = yaml.safe_load((self.home / "clouds.yaml").read_text())
        entry = data["clouds"][cloud]
        auth = entry["auth"]
        return {
            "OS_AUTH_URL": auth["auth_url"],
            "OS_USERNAME": auth["username"],
            "OS_PASSWORD": auth["password"],
            "OS_PROJECT_NAME": auth["project_name"],
            "OS_USER_DOMAIN_NAME": auth["user_domain_name"],
            "OS_PROJECT_DOMAIN_NAME": auth["project_domain_name"],
            "OS_REGION_NAME": entry.get("region_name", "RegionOne"),
            "OS_IDENTITY_API_VERSION": "3",
            "OS_INTERFACE": entry.get("interface", "public"),
        }

    def cli(self, *args: str, cloud: str = "dockyard-admin", tool: str = "openstack", **kw):
        """Run a real client command; returns CompletedProcess (text).

        `glance` has no --os-cloud, so it gets the cloud's credentials as OS_* variables.
        """
        env = self.client_env()
        if tool == "glance":
            env.update(self.os_env(cloud))
            cmd = [str(BIN / tool), *args]
        else:
            cmd = [str(BIN / tool), "--os-cloud", cloud, *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, **kw)

    def cli_json(self, *args: str, cloud: str = "dockyard-admin"):
        r = self.cli(*args, "-f", "json", cloud=cloud)
        assert r.returncode == 0, f"{args}: {r.stderr}\n{self.tail(20)}"
        return json.loads(r.stdout)


# ---- the factory and the clean-up ------------------------------------------------------------


def new_cloud(
    home: Path,
    database_url: str = "",
    *,
    docker: bool = False,
    labels: dict[str, str] | None = None,
    cidr: str | None = None,
    fast: bool = False,
    env: dict[str, str] | None = None,
    cls: type[Cloud] = Cloud,
    **fields,
) -> Cloud:
    """A dockyard for a test or a benchmark on a free port, not started.

    docker: it makes Docker objects. They carry `dockyard.test=1` (the session's last sweep
        finds the images) and `dockyard.test.run=<cloud.run_id>` plus `labels`, so
        `cloud.cleanup()` finds them; its demo network gets `cidr`, by default a /24 that no
        Docker network of this host uses (unique_cidr()). `labels` or `cidr` imply it.
    fast: FAST_SETTINGS (quick reconcile, stop, orphan grace and task lease).
    env: further DOCKYARD_* settings, applied last.
    cls, fields: a Cloud subclass and its own fields (say NetnsCloud, netns=engine).
    """
    extra: dict[str, str] = {}
    run_id = ""
    if docker or labels or cidr:
        run_id = uuid.uuid4().hex[:10]
        all_labels = {TEST_LABEL: "1", RUN_LABEL: run_id, **(labels or {})}
        extra["DOCKYARD_CONTAINER_LABELS"] = ",".join(f"{k}={v}" for k, v in all_labels.items())
        extra["DOCKYARD_NETWORK_DEMO_CIDR"] = cidr or unique_cidr()
    if fast:
        extra.update(FAST_SETTINGS)
    extra.update(env or {})
    return cls(
        home=home,
        port=free_port(),
        database_url=database_url,
        extra_env=extra,
        run_id=run_id,
        **fields,
    )


def _docker():
    from tests.support.docker import docker_client

    return docker_client()


def _remove_network(network) -> None:
    import docker.errors

    for _ in range(10):  # Docker may still be releasing the endpoints of removed containers
        try:
            network.remove()
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:  # retried, then left for the session's sweep
            time.sleep(0.3)


def remove_run_objects(run_id: str) -> None:
    """Remove every container, network and volume labelled with this run id."""
    client = _docker()
    flt = {"label": f"{RUN_LABEL}={run_id}"}
    for c in client.containers.list(all=True, filters=flt):
        c.remove(force=True, v=True)
    for n in client.networks.list(filters=flt):
        _remove_network(n)
    for v in client.volumes.list(filters=flt):
        v.remove(force=True)


def remove_instance(instance: str) -> None:
    """Remove the Docker networks of a dockyard instance, every container still attached to
    them, and the instance's firewall chains."""
    import docker.errors

    from dockyard.network.common import chain_prefix
    from dockyard.network.firewall import IptablesApplier

    client = _docker()
    for n in client.networks.list(filters={"label": f"dockyard.instance={instance}"}):
        with contextlib.suppress(docker.errors.NotFound):
            n.reload()
            for cid in n.attrs.get("Containers") or {}:
                with contextlib.suppress(docker.errors.NotFound):
                    client.containers.get(cid).remove(force=True)
        _remove_network(n)
    IptablesApplier().remove(chain_prefix(instance))
