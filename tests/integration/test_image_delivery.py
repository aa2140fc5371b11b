"""Images onto a real Docker engine: streamed docker load, registry pulls, load-once under
concurrency, and the Python interface compute calls (boot_image, create_image_from_stream)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from dockyard.api.errors import BadRequest, NotFound
from dockyard.app import build_runtime
from dockyard.config import load_settings
from dockyard.docker.images import DeliveryError, ImageDelivery, ensure_image, local_ref
from dockyard.identity import service as identity
from dockyard.image.archive import inspect_archive
from dockyard.image.boot import BootImage, boot_image, create_image_from_stream
from tests.support.cloud import free_port
from tests.support.docker import TEST_LABEL, build_busybox_image, docker_client
from tests.support.images import (
    SavedImage,
    fake_docker_save,
    remove_delivered,
    remove_image_refs,
)

IMG = "/image/v2/images"
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def engine():
    return docker_client()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Iterator[SavedImage]:
    image = SavedImage(tmp_path_factory.mktemp("saved"))
    yield image
    image.remove()


@pytest.fixture
def delivered() -> Iterator[list[str]]:
    """Image ids whose host copies the test leaves behind; removed afterwards."""
    ids: list[str] = []
    yield ids
    remove_delivered(ids)


def boot_from_blob(path: Path, image_id: str | None = None) -> BootImage:
    found = inspect_archive(path)
    return BootImage(
        id=image_id or str(uuid.uuid4()),
        name="t",
        owner="p",
        container_format="docker",
        disk_format="raw",
        min_ram=0,
        min_disk=0,
        blob_path=path,
        registry_ref=None,
        properties={"docker_config_digest": found.config_digest},
    )


def events(engine, since: float, action: str) -> list[dict]:
    """Image events of one kind since a moment (fractional: earlier tests do not count)."""
    until = f"{time.time() + 1:.9f}"
    stream = engine.events(
        since=f"{since:.9f}", until=until, filters={"type": "image", "event": action}, decode=True
    )
    return list(stream)


def run_in(engine, ref: str, command: str) -> str:
    out = engine.containers.run(ref, command, remove=True, labels={TEST_LABEL: "1"})
    return out.decode()


def test_ensure_loads_streamed_tags_traceably_and_only_once(engine, saved, tmp_path, delivered):
    blob = tmp_path / "blob"
    shutil.copy(saved.path, blob)
    image = boot_from_blob(blob)
    delivered.append(image.id)
    remove_image_refs([saved.tag])  # the host no longer has it at all
    with pytest.raises(Exception):  # noqa: B017 - any "not found"
        engine.images.get(image.config_digest)
    start = time.time()
    ref = ensure_image(engine, image)
    assert ref == local_ref(image.id) == f"dockyard/image-{image.id}:latest"
    host_copy = engine.images.get(ref)
    assert host_copy.id == image.config_digest
    # the archive's own tag was not applied to the host: only the traceable one
    assert host_copy.tags == [ref]
    assert "hello from dockyard" in run_in(engine, ref, "cat /var/www/index.html")
    assert ensure_image(engine, image) == ref  # present: nothing to do
    # the engine is shared (other suites may load their own images): count this image's loads
    loads = [e for e in events(engine, start, "load") if e["id"] == image.config_digest]
    assert len(loads) == 1


def test_twenty_concurrent_ensures_load_once(engine, saved, tmp_path, delivered):
    blob = tmp_path / "blob"
    shutil.copy(saved.path, blob)
    image = boot_from_blob(blob)
    delivered.append(image.id)
    delivery = ImageDelivery(lock_dir=tmp_path / "locks")
    barrier = threading.Barrier(20)

    def boot(_: int) -> str:
        client = docker_client()
        barrier.wait()
        try:
            return delivery.ensure(client, image)
        finally:
            client.close()

    start = time.time()
    with ThreadPoolExecutor(20) as pool:
        refs = list(pool.map(boot, range(20)))
    assert set(refs) == {local_ref(image.id)}
    loads = [e for e in events(engine, start, "load") if e["id"] == image.config_digest]
    assert len(loads) == 1


def test_broken_blob_is_a_clear_error(engine, tmp_path):
    blob = tmp_path / "blob"
    blob.write_bytes(fake_docker_save(corrupt=True)[0])  # passes the checks, Docker refuses it
    image = boot_from_blob(blob)
    with pytest.raises(DeliveryError, match="docker load"):
        ensure_image(engine, image)
    missing = boot_from_blob(blob)
    blob.unlink()
    with pytest.raises(DeliveryError, match="missing"):
        ensure_image(engine, missing)


# ---- a registry-backed image, pulled from Debian's docker-registry on loopback -----------------


@pytest.fixture
def registry(tmp_path) -> Iterator[str]:
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("the docker-registry package is required (scripts/test.sh installs it)")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    proc = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("docker-registry did not start")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_registry_backed_image_is_pulled(engine, registry, delivered):
    local = f"dockyard-test/reg-{uuid.uuid4().hex[:8]}:1"
    remote = f"{registry}/dockyard-test/web:1"
    image_digest = build_busybox_image(local)
    engine.images.get(local).tag(remote)
    for line in engine.images.push(remote, stream=True, decode=True):
        assert "error" not in line, line
    remove_image_refs([local, remote])  # the host has nothing of it now
    image = BootImage(
        id=str(uuid.uuid4()),
        name="web",
        owner="p",
        container_format="docker",
        disk_format="raw",
        min_ram=0,
        min_disk=0,
        blob_path=None,
        registry_ref=remote,
        properties={"docker_image": remote},
    )
    delivered.append(image.id)
    start = time.time()
    try:
        ref = ensure_image(engine, image)
        assert engine.images.get(ref).id == image_digest
        pulls = events(engine, start, "pull")
        assert [e["id"] for e in pulls] == [remote]
        assert "hello" in run_in(engine, ref, "cat /var/www/index.html")
    finally:
        remove_image_refs([remote])


# ---- the interface for compute, against the cloud's own database and blob store ---------------


@pytest.fixture(scope="module")
def runtime(cloud):
    settings = load_settings(
        env={"DOCKYARD_HOME": str(cloud.home), "DOCKYARD_DATABASE_URL": cloud.database_url}
    )
    rt = build_runtime(settings)
    yield rt
    rt.db.dispose()


def context_for(runtime, token: str):
    with runtime.db.session() as s:
        return identity.validate(s, runtime.keys, token).context("req-test")


def test_compute_interface_end_to_end(cloud, runtime, engine, saved, delivered):
    demo_token, admin_token = cloud.token("demo"), cloud.token("admin")
    ctx = context_for(runtime, demo_token)
    chunks = (saved.data[i : i + 65536] for i in range(0, len(saved.data), 65536))
    image_id = create_image_from_stream(
        runtime, ctx, "snap", chunks, {"image_type": "snapshot", "instance_uuid": "abc"}
    )
    delivered.append(image_id)
    with cloud.client(demo_token) as demo:
        shown = demo.get(f"{IMG}/{image_id}").json()
    assert shown["status"] == "active" and shown["size"] == len(saved.data)
    assert shown["image_type"] == "snapshot" and shown["visibility"] == "private"
    assert shown["owner"] == ctx.project_id and shown["docker_repo_tags"] == saved.tag
    with runtime.db.session() as s:
        boot = boot_image(s, ctx, image_id)
    assert boot.blob_path == cloud.home / "blobs" / image_id
    assert boot.registry_ref is None and boot.container_format == "docker"
    assert boot.properties["image_type"] == "snapshot"
    ref = ensure_image(engine, boot)
    assert "hello from dockyard" in run_in(engine, ref, "cat /var/www/index.html")

    admin_ctx = context_for(runtime, admin_token)
    with cloud.client(admin_token) as admin:
        private = admin.post(IMG, json={"name": "p", "visibility": "private"}).json()
        queued = admin.post(
            IMG,
            json={
                "name": "q",
                "container_format": "docker",
                "disk_format": "raw",
                "visibility": "public",
            },
        ).json()
        bare = admin.post(
            IMG,
            json={
                "name": "b",
                "container_format": "bare",
                "disk_format": "raw",
                "visibility": "public",
            },
        ).json()
        assert admin.put(f"{IMG}/{bare['id']}/file", content=b"x", headers=OCTET).is_success
        reg = admin.post(
            IMG,
            json={
                "name": "r",
                "container_format": "docker",
                "disk_format": "raw",
                "visibility": "public",
                "docker_image": "127.0.0.1:5000/web:1",
            },
        ).json()
        assert admin.post(f"{IMG}/{image_id}/actions/deactivate").status_code == 204
    with runtime.db.session() as s:
        with pytest.raises(NotFound):
            boot_image(s, ctx, private["id"])  # another project's private image
        with pytest.raises(NotFound):
            boot_image(s, ctx, str(uuid.uuid4()))
        with pytest.raises(BadRequest, match="not active"):
            boot_image(s, ctx, queued["id"])
        with pytest.raises(BadRequest, match="container_format 'bare'"):
            boot_image(s, ctx, bare["id"])
        with pytest.raises(BadRequest, match="deactivated"):
            boot_image(s, ctx, image_id)
        remote = boot_image(s, ctx, reg["id"])
        assert (remote.blob_path, remote.registry_ref) == (None, "127.0.0.1:5000/web:1")
        with pytest.raises(BadRequest, match="not active"):
            boot_image(s, admin_ctx, private["id"])  # admin sees it; it has no data


def test_snapshot_of_bad_data_leaves_no_image(cloud, runtime):
    token = cloud.token("demo")
    ctx = context_for(runtime, token)
    with cloud.client(token) as demo:
        before = demo.get(IMG, params={"limit": 1000}).json()["images"]
        with pytest.raises(BadRequest, match="not a tar file"):
            create_image_from_stream(runtime, ctx, "bad", iter([b"junk"] * 10), {})
        after = demo.get(IMG, params={"limit": 1000}).json()["images"]
    assert len(after) == len(before)
    assert [p for p in (cloud.home / "blobs" / ".tmp").iterdir()] == []
