"""Start and stop real `dockyard up` processes for tests, and drive clients against them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "admin-secret-pw"
DEMO_PASSWORD = "demo-secret-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cloud:
    home: Path
    port: int
    database_url: str = ""
    extra_env: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None

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
