"""The newcomer's path: a new cloud already holds a bootable `demo` image."""

from __future__ import annotations

import contextlib

import docker.errors
import pytest

from tests.support.cloud import new_cloud
from tests.support.compute import http_get
from tests.support.docker import docker_client

pytestmark = pytest.mark.e2e


@pytest.fixture
def newcomer_cloud(tmp_path):
    client = docker_client()
    cloud = new_cloud(tmp_path / "home", docker=True, fast=True, env={"DOCKYARD_DEMO_IMAGE": "1"})
    demo_ids: list[str] = []
    cloud.demo_ids = demo_ids
    try:
        yield cloud
    finally:
        cloud.stop()
        cloud.cleanup()
        for image_id in demo_ids:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(f"dockyard/image-{image_id}:latest")


def test_demo_image_boots_right_away_and_is_made_once(newcomer_cloud):
    cloud = newcomer_cloud.start()
    assert "Boot the demo image" in cloud.log_path.read_text()
    (demo,) = [i for i in cloud.cli_json("image", "list", cloud="dockyard") if i["Name"] == "demo"]
    cloud.demo_ids.append(demo["ID"])
    shown = cloud.cli_json("image", "show", "demo", cloud="dockyard")
    assert shown["status"] == "active" and shown["visibility"] == "public"
    assert shown["container_format"] == "docker"
    server = cloud.cli_json(
        "server",
        "create",
        "--image",
        "demo",
        "--flavor",
        "m1.tiny",
        "--network",
        "private",
        "web1",
        "--wait",
        cloud="dockyard",
    )
    assert server["status"] == "ACTIVE"
    ((ip,),) = server["addresses"].values()  # OSC shows {"private": ["10.x.y.z"]}
    assert "Welcome to dockyard!" in http_get(ip)
    r = cloud.cli("server", "delete", "web1", "--wait", cloud="dockyard")
    assert r.returncode == 0, r.stderr
    cloud.stop()
    cloud.start()  # a second start reuses the demo image
    demos = [i for i in cloud.cli_json("image", "list", cloud="dockyard") if i["Name"] == "demo"]
    assert [i["ID"] for i in demos] == [demo["ID"]]
