"""Compute test helpers: images uploaded from locally built busybox images; waiting for
states; Docker's own view. Clouds come from tests.support.cloud.new_cloud(docker=True,
fast=True); `make_cloud` and `cleanup(run_id)` below are the older spelling of it."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import httpx

from tests.support.cloud import RUN_LABEL, Cloud, new_cloud, remove_run_objects
from tests.support.docker import build_busybox_image, docker_client

MV = {"OpenStack-API-Version": "compute 2.96"}
HTTPD_TAG = "dockyard-test/httpd:latest"


def make_cloud(home: Path, database_url: str = "", cidr: str | None = None) -> tuple[Cloud, str]:
    """A compute test cloud and its run id: new_cloud(home, database_url, docker=True,
    fast=True, cidr=cidr)."""
    cloud = new_cloud(home, database_url, docker=True, fast=True, cidr=cidr)
    return cloud, cloud.run_id


@contextlib.contextmanager
def running_cloud(home: Path, database_url: str = "", **env: str) -> Iterator[Cloud]:
    """A started compute test cloud (extra settings in `env`), stopped and cleaned after."""
    c, run_id = make_cloud(home, database_url)
    c.extra_env.update(env)
    c.start()
    try:
        yield c
    finally:
        c.stop()
        cleanup(run_id)


# ids of images these tests put into a cloud (their host copies are removed by cleanup)
UPLOADED: list[str] = []


def cleanup(run_id: str) -> None:
    """Remove every container, network and volume a test cloud of this run made, and the
    host copies (dockyard/image-<id>) of the images the tests uploaded."""
    remove_run_objects(run_id)
    remove_uploaded_images()


def remove_uploaded_images() -> None:
    """The host copies (dockyard/image-<id>) of the images upload_image put into clouds."""
    client = docker_client()
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
