"""createImage (server snapshots) as a durable operation, against a real dockyard and dockerd.

The API answers 202 at once with the new image's id; the image is queued, then saving, then
active; the server's task_state goes image_snapshot -> image_pending_upload ->
image_uploading -> None; a failed snapshot leaves no image; a dockyard killed mid-snapshot
finishes it after a restart.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest

from tests.conftest import BACKENDS, make_database_url
from tests.support.compute import (
    MV,
    UPLOADED,
    cleanup,
    container_of,
    httpd_archive,
    make_cloud,
    running_cloud,
    upload_image,
    wait_for,
    wait_gone,
)
from tests.support.docker import docker_client

C = "/compute/v2.1"
TASKS = ["image_snapshot", "image_pending_upload", "image_uploading", None]
IMAGE_STATES = ["queued", "saving", "active"]


def boot(http, image: str, name: str) -> str:
    body = {"server": {"name": name, "imageRef": image, "flavorRef": "1", "networks": "none"}}
    r = http.post(C + "/servers", json=body, headers=MV)
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    wait_for(http, sid, "ACTIVE")
    return sid


def fill(sid: str, megabytes: int) -> None:
    """Write data into the container, so the snapshot has something to carry (and takes a
    moment, long enough to watch its states)."""
    c = container_of(sid)
    out = c.exec_run(f"dd if=/dev/zero of=/var/ballast bs=1048576 count={megabytes}")
    assert out.exit_code == 0, out.output
    size = c.exec_run("wc -c /var/ballast").output.split()[0]
    assert size == str(megabytes * 1024 * 1024).encode()


def snapshot(http, sid: str, name: str, mv: dict = MV) -> str:
    r = http.post(C + f"/servers/{sid}/action", json={"createImage": {"name": name}}, headers=mv)
    assert r.status_code == 202, r.text
    image_id = r.json()["image_id"] if mv is MV else r.headers["Location"].rsplit("/", 1)[-1]
    UPLOADED.append(image_id)
    return image_id


def watch(http, sid: str, image_id: str, timeout: float = 120) -> tuple[list, list]:
    """The server task_states and image statuses seen (in order, without repeats) until the
    snapshot is over."""
    tasks: list = []
    statuses: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = http.get(C + f"/servers/{sid}", headers=MV).json()["server"]["OS-EXT-STS:task_state"]
        r = http.get(f"/image/v2/images/{image_id}")
        status = r.json()["status"] if r.status_code == 200 else "gone"
        if not tasks or tasks[-1] != task:
            tasks.append(task)
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        if task is None and status in ("active", "gone", "killed"):
            return tasks, statuses
        time.sleep(0.02)
    raise AssertionError(f"the snapshot did not end: tasks {tasks}, image {statuses}")


def in_order(seen: list, order: list) -> bool:
    positions = [order.index(x) for x in seen]
    return positions == sorted(positions)


def snapshot_tags(image_id: str) -> list:
    return [
        t for i in docker_client().images.list(name=f"dockyard-snapshot-{image_id}") for t in i.tags
    ]


@pytest.fixture(params=BACKENDS, scope="module")
def cloud(request, tmp_path_factory, pg_databases):
    url = make_database_url(request.param, pg_databases)
    # a small image store per project: the admin's base image fits, a big snapshot does not
    quota = {"DOCKYARD_IMAGE_QUOTA_BYTES": str(200 * 1024 * 1024)}
    with running_cloud(tmp_path_factory.mktemp(f"snap-{request.param}"), url, **quota) as c:
        yield c


@pytest.fixture(scope="module")
def admin(cloud):
    with cloud.client(cloud.token("admin")) as h:
        yield h


@pytest.fixture(scope="module")
def demo(cloud):
    with cloud.client(cloud.token("demo")) as h:
        yield h


@pytest.fixture(scope="module")
def image(admin, tmp_path_factory):
    archive = httpd_archive(tmp_path_factory.mktemp("img"))
    return upload_image(admin, "httpd", archive, visibility="public")


def test_snapshot_runs_as_an_operation_and_boots(cloud, demo, image):
    sid = boot(demo, image, f"snap-{uuid.uuid4().hex[:6]}")
    fill(sid, 96)
    image_id = snapshot(demo, sid, "web-snap")
    # answered before the upload: the image exists (queued or already saving), the server is
    # busy with it
    shown = demo.get(f"/image/v2/images/{image_id}").json()
    assert shown["status"] in ("queued", "saving") and shown["image_type"] == "snapshot"
    assert shown["instance_uuid"] == sid and shown["base_image_ref"] == image
    server = demo.get(C + f"/servers/{sid}", headers=MV).json()["server"]
    assert server["status"] == "ACTIVE"
    assert server["OS-EXT-STS:task_state"] in TASKS[:3]
    # another action waits for the snapshot: 409 as in Nova
    r = demo.post(C + f"/servers/{sid}/action", json={"os-stop": None}, headers=MV)
    assert r.status_code == 409, r.text

    tasks, statuses = watch(demo, sid, image_id)
    assert in_order(tasks, TASKS) and tasks[-1] is None, tasks
    assert in_order(statuses, IMAGE_STATES) and statuses[-1] == "active", statuses
    assert "saving" in statuses, statuses  # 96 MB take a moment to upload
    assert "image_uploading" in tasks or "image_pending_upload" in tasks, tasks
    img = demo.get(f"/image/v2/images/{image_id}").json()
    assert img["container_format"] == "docker" and img["size"] > 96 * 1024 * 1024
    assert snapshot_tags(image_id) == []  # the committed copy on the host is gone

    # the snapshot boots, with the data and the image's own content
    sid2 = boot(demo, image_id, "from-snap")
    c = container_of(sid2)
    assert c.exec_run("cat /var/www/index.html").output == b"hello from dockyard\n"
    assert c.exec_run("wc -c /var/ballast").output.split()[0] == str(96 * 1024 * 1024).encode()
    for x in (sid, sid2):
        assert demo.delete(C + f"/servers/{x}").status_code == 204
    for x in (sid, sid2):
        wait_gone(demo, x)
    assert demo.delete(f"/image/v2/images/{image_id}").status_code == 204  # quota headroom


def test_location_header_before_2_45(demo, image):
    sid = boot(demo, image, "snap-old")
    image_id = snapshot(demo, sid, "old-snap", mv={"OpenStack-API-Version": "compute 2.44"})
    tasks, statuses = watch(demo, sid, image_id)
    assert statuses[-1] == "active" and tasks[-1] is None
    assert demo.delete(C + f"/servers/{sid}").status_code == 204
    wait_gone(demo, sid)
    assert demo.delete(f"/image/v2/images/{image_id}").status_code == 204


def test_failed_snapshot_leaves_no_image(cloud, demo, image):
    """A snapshot bigger than the project's image store fails: the image is deleted, nothing
    is left on the host or in the blob store, and the server is usable again."""
    sid = boot(demo, image, "snap-big")
    fill(sid, 240)  # > DOCKYARD_IMAGE_QUOTA_BYTES
    image_id = snapshot(demo, sid, "too-big")
    tasks, statuses = watch(demo, sid, image_id)
    assert statuses[-1] == "gone" and tasks[-1] is None, (tasks, statuses)
    assert demo.get(f"/image/v2/images/{image_id}").status_code == 404
    listed = demo.get("/image/v2/images").json()["images"]
    assert image_id not in [i["id"] for i in listed]
    assert snapshot_tags(image_id) == []
    blobs = cloud.home / "blobs"
    assert not [p for p in blobs.rglob("*") if image_id in p.name]
    server = wait_for(demo, sid, "ACTIVE", **{"OS-EXT-STS:task_state": None})
    assert server["OS-EXT-STS:power_state"] == 1
    # and the server takes actions again
    r = demo.post(C + f"/servers/{sid}/action", json={"os-stop": None}, headers=MV)
    assert r.status_code == 202, r.text
    wait_for(demo, sid, "SHUTOFF")
    assert demo.delete(C + f"/servers/{sid}").status_code == 204
    wait_gone(demo, sid)


def test_deleting_the_server_drops_a_pending_snapshot(demo, image):
    """A delete right after createImage: the snapshot gives way (no image is left behind
    unless it had finished) and the server goes."""
    sid = boot(demo, image, "snap-del")
    fill(sid, 64)
    image_id = snapshot(demo, sid, "doomed")
    assert demo.delete(C + f"/servers/{sid}").status_code == 204
    wait_gone(demo, sid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = demo.get(f"/image/v2/images/{image_id}")
        if r.status_code == 404 or r.json()["status"] == "active":
            break
        time.sleep(0.1)
    assert r.status_code == 404 or r.json()["status"] == "active", r.text
    assert snapshot_tags(image_id) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_mid_snapshot_finishes_after_restart(backend, tmp_path, pg_databases):
    url = make_database_url(backend, pg_databases)
    c, run_id = make_cloud(tmp_path / "home", url)
    c.start()
    try:
        with c.client(c.token("demo")) as demo:
            image = upload_image(demo, "httpd", httpd_archive(tmp_path))
            sid = boot(demo, image, "crash-snap")
            fill(sid, 160)
            image_id = snapshot(demo, sid, "survivor")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # kill it while it commits or uploads
                task = demo.get(C + f"/servers/{sid}", headers=MV).json()["server"][
                    "OS-EXT-STS:task_state"
                ]
                if task in ("image_pending_upload", "image_uploading") or task is None:
                    break
                time.sleep(0.01)
            assert task is not None, "the snapshot ended before it could be interrupted"
            os.kill(c.proc.pid, signal.SIGKILL)
            c.proc.wait()
            c.proc = None
        c.start()
        with c.client(c.token("demo")) as demo:
            tasks, statuses = watch(demo, sid, image_id, timeout=90)
            assert statuses[-1] == "active" and tasks[-1] is None, (tasks, statuses)
            assert snapshot_tags(image_id) == []
            sid2 = boot(demo, image_id, "after-crash")
            size = container_of(sid2).exec_run("wc -c /var/ballast").output.split()[0]
            assert size == str(160 * 1024 * 1024).encode()
            for x in (sid, sid2):
                assert demo.delete(C + f"/servers/{x}").status_code == 204
            for x in (sid, sid2):
                wait_gone(demo, x)
    finally:
        c.stop()
        cleanup(run_id)
