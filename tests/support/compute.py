"""Compute test helpers: a cloud configured for fast, labelled, removable servers; images
uploaded from locally built busybox images; waiting for states; Docker's own view."""

from __future__ import annotations

import contextlib
import random
import subprocess
import time
import uuid
from pathlib import Path

import docker.errors
import httpx

from tests.support.cloud import Cloud, free_port
from tests.support.docker import TEST_LABEL, build_busybox_image, docker_client

RUN_LABEL = "dockyard.test.run"
MV = {"OpenStack-API-Version": "compute 2.96"}
HTTPD_TAG = "dockyard-test/httpd:latest"


def random_cidr() -> str:
    return f"10.{random.randint(100, 250)}.{random.randint(0, 250)}.0/24"


def compute_env(run_id: str, cidr: str | None = None) -> dict:
    """Settings that make a test cloud fast and its Docker objects findable."""
    return {
        "DOCKYARD_CONTAINER_LABELS": f"{TEST_LABEL}=1,{RUN_LABEL}={run_id}",
        "DOCKYARD_COMPUTE_STOP_TIMEOUT": "2",
        "DOCKYARD_RECONCILE_INTERVAL": "1",
        "DOCKYARD_ORPHAN_GRACE_SECONDS": "1",
        "DOCKYARD_TASK_LEASE_SECONDS": "3",
        "DOCKYARD_NETWORK_DEMO_CIDR": cidr or random_cidr(),
    }


def make_cloud(home: Path, database_url: str = "", cidr: str | None = None) -> tuple[Cloud, str]:
    run_id = uuid.uuid4().hex[:10]
    cloud = Cloud(
        home=home, port=free_port(), database_url=database_url, extra_env=compute_env(run_id, cidr)
    )
    return cloud, run_id


# ids of images these tests put into a cloud (their host copies are removed by cleanup)
UPLOADED: list[str] = []


def cleanup(run_id: str) -> None:
    """Remove every container, network and volume a test cloud of this run made, and the
    host copies (dockyard/image-<id>) of the images the tests uploaded."""
    client = docker_client()
    flt = {"label": f"{RUN_LABEL}={run_id}"}
    for c in client.containers.list(all=True, filters=flt):
        c.remove(force=True, v=True)
    for n in client.networks.list(filters=flt):
        for _ in range(10):  # Docker may still be releasing the endpoints of removed containers
            try:
                n.remove()
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError:  # retried, then left for the next cleanup
                time.sleep(0.3)
    for v in client.volumes.list(filters=flt):
        v.remove(force=True)
    while UPLOADED:
        ref = f"dockyard/image-{UPLOADED.pop()}:latest"
        with contextlib.suppress(docker.errors.APIError):  # gone, or used by a container
            client.images.remove(ref)


def httpd_archive(tmp: Path) -> Path:
    """`docker save` of a locally built busybox httpd image (serves 'hello from dockyard')."""
    build_busybox_image(HTTPD_TAG)
    path = tmp / "httpd.tar"
    subprocess.run(["docker", "save", HTTPD_TAG, "-o", str(path)], check=True)
    return path


def upload_image(http: httpx.Client, name: str, archive: Path, visibility: str = "") -> str:
    body = {"name": name, "container_format": "docker", "disk_format": "raw"}
    if visibility:
        body["visibility"] = visibility
    r = http.post("/image/v2/images", json=body)
    assert r.status_code == 201, r.text
    image_id = r.json()["id"]
    UPLOADED.append(image_id)
    r = http.put(
        f"/image/v2/images/{image_id}/file",
        content=archive.read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 204, r.text
    return image_id


def server_get(http: httpx.Client, sid: str) -> httpx.Response:
    return http.get(f"/compute/v2.1/servers/{sid}", headers=MV)


def wait_for(http: httpx.Client, sid: str, *statuses: str, timeout: float = 30, **fields) -> dict:
    """Poll the server until its status is one of `statuses` (and fields match)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        r = server_get(http, sid)
        if r.status_code == 404 and "DELETED" in statuses:
            return {}
        assert r.status_code == 200, r.text
        last = r.json()["server"]
        if last["status"] in statuses and all(last.get(k) == v for k, v in fields.items()):
            return last
        time.sleep(0.1)
    raise AssertionError(f"server {sid} never reached {statuses} {fields}: {last}")


def wait_gone(http: httpx.Client, sid: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server_get(http, sid).status_code == 404:
            return
        time.sleep(0.1)
    raise AssertionError(f"server {sid} was not deleted")


def container_of(server_id: str):
    """The server's container as Docker sees it, or None."""
    import docker.errors

    try:
        c = docker_client().containers.get(f"dockyard-{server_id}")
        c.reload()
        return c
    except docker.errors.NotFound:
        return None


def containers_of_run(run_id: str) -> list:
    return docker_client().containers.list(
        all=True, filters={"label": [f"{RUN_LABEL}={run_id}", "dockyard.server_id"]}
    )


def http_get(ip: str, timeout: float = 10) -> str:
    """GET / from a server's fixed IP, as a user on the host would (retries while it starts)."""
    deadline = time.monotonic() + timeout
    err: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return httpx.get(f"http://{ip}/", timeout=2).text
        except httpx.HTTPError as exc:
            err = exc
            time.sleep(0.2)
    raise AssertionError(f"http://{ip}/ did not answer: {err}")
