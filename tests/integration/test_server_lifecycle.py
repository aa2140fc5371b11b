"""`dockyard up` itself: bootstrap, client files, restarts, signals, expiry, key rotation."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import yaml

from tests.support.cloud import BIN

ID = "/identity/v3"


def test_restart_keeps_tokens_and_revocations(fresh_cloud):
    cloud = fresh_cloud.start()
    keep = cloud.token("admin")
    revoked = cloud.token("demo")
    with cloud.client(keep) as c:
        assert (
            c.delete(ID + "/auth/tokens", headers={"X-Subject-Token": revoked}).status_code == 204
        )
    assert cloud.stop() == 0
    cloud.start()
    with cloud.client(keep) as c:
        assert c.get(ID + "/projects").status_code == 200
    with cloud.client(revoked) as c:
        assert c.get(ID + "/auth/projects").status_code == 401


def test_expired_token_is_401(fresh_cloud):
    fresh_cloud.extra_env["DOCKYARD_TOKEN_TTL"] = "2"
    cloud = fresh_cloud.start()
    token = cloud.token("admin")
    with cloud.client(token) as c:
        assert c.get(ID + "/projects").status_code == 200
        time.sleep(2.2)
        r = c.get(ID + "/projects")
    assert r.status_code == 401
    assert "expired" in r.json()["error"]["message"]


def test_rotated_keys_keep_existing_tokens_without_restart(fresh_cloud):
    cloud = fresh_cloud.start()
    token = cloud.token("admin")
    env = cloud.server_env()
    out = subprocess.run(
        [str(BIN / "dockyard"), "rotate-keys"], env=env, capture_output=True, text=True, check=True
    )
    assert "primary key is now 2" in out.stdout
    with cloud.client(token) as c:
        assert c.get(ID + "/projects").status_code == 200
    fresh = cloud.token("admin")
    with cloud.client(fresh) as c:
        assert c.get(ID + "/projects").status_code == 200


def test_first_start_bootstraps_and_second_start_reuses(tmp_path, fresh_cloud):
    home = fresh_cloud.home
    env = {k: v for k, v in fresh_cloud.server_env().items() if "PASSWORD" not in k}
    port = str(fresh_cloud.port)
    proc = subprocess.Popen(
        [str(BIN / "dockyard"), "up", "--port", port],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = []
        while True:
            line = proc.stdout.readline()
            assert line, "dockyard up printed no instructions"
            lines.append(line)
            if line.strip().startswith("demo:"):
                break
        text = "".join(lines)
        assert f"export OS_CLIENT_CONFIG_FILE={home}/clouds.yaml" in text
        assert "openstack --os-cloud dockyard" in text
        admin_pw = next(
            ln.split(":", 1)[1].strip() for ln in lines if ln.strip().startswith("admin:")
        )
        clouds = yaml.safe_load((home / "clouds.yaml").read_text())["clouds"]
        assert clouds["dockyard-admin"]["auth"]["password"] == admin_pw
        assert clouds["dockyard"]["auth"]["auth_url"] == f"http://127.0.0.1:{port}/identity/v3"
        assert oct(os.stat(home / "clouds.yaml").st_mode & 0o777) == "0o600"
        assert "OS_PASSWORD" in (home / "openrc-demo").read_text()
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthcheck").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        # second start: same home, nothing regenerated, passwords not shown again
        proc = subprocess.Popen(
            [str(BIN / "dockyard"), "up", "--port", port],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        first = proc.stdout.readline()
        assert first.startswith("dockyard is serving")
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthcheck").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": "admin", "domain": {"id": "default"}, "password": admin_pw}
                    },
                }
            }
        }
        r = httpx.post(f"http://127.0.0.1:{port}/identity/v3/auth/tokens", json=body)
        assert r.status_code == 201
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=20)[0]
        assert proc.returncode == 0
        assert "Generated passwords" not in rest
        assert yaml.safe_load((home / "clouds.yaml").read_text())["clouds"] == clouds
    finally:
        if proc.poll() is None:
            proc.kill()


def test_dockyard_host_commands(fresh_cloud):
    def host(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(BIN / "dockyard"), "host", *args],
            env=fresh_cloud.server_env(),
            capture_output=True,
            text=True,
        )

    if not fresh_cloud.database_url:  # SQLite: no database file before the first start
        r = host("list")
        assert r.returncode == 1 and "run `dockyard up` first" in r.stderr
    fresh_cloud.start()
    for _ in range(50):
        r = host("list")
        if "local" in r.stdout:
            break
        time.sleep(0.2)
    assert r.returncode == 0 and "local" in r.stdout, r.stdout + r.stderr
    r = host("add", "spare", "tcp://127.0.0.1:1", "--no-check")
    assert r.returncode == 0, r.stderr
    assert "spare" in host("list").stdout
    assert host("disable", "spare", "--reason", "maintenance").returncode == 0
