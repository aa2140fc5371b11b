"""Images with the real python-glanceclient and python-openstackclient from PyPI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.support.cloud import Cloud, new_cloud
from tests.support.images import SavedImage


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Iterator[SavedImage]:
    image = SavedImage(tmp_path_factory.mktemp("saved"))
    yield image
    image.remove()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory) -> Iterator[Cloud]:
    """One dockyard on SQLite for this module: the clients do not care which database sits
    behind the API, and tests/integration/test_image_api.py runs the API on both."""
    c = new_cloud(tmp_path_factory.mktemp("dockyard-e2e-image"))
    c.start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def third(cloud) -> tuple[str, str, str]:
    """A project made for this module and a member user in it: (project, user, password)."""
    name = f"img-e2e-{uuid.uuid4().hex[:6]}"
    ident = "/identity/v3"
    with cloud.client(cloud.token("admin")) as admin:
        pid = admin.post(ident + "/projects", json={"project": {"name": name}}).json()
        pid = pid["project"]["id"]
        user = {"user": {"name": name, "password": "pw-" + name}}
        uid = admin.post(ident + "/users", json=user).json()["user"]["id"]
        roles = {x["name"]: x["id"] for x in admin.get(ident + "/roles").json()["roles"]}
        r = admin.put(ident + f"/projects/{pid}/users/{uid}/roles/{roles['member']}")
        assert r.status_code == 204, r.text
    return name, name, "pw-" + name


def as_third(cloud: Cloud, third, *args: str):
    project, user, password = third
    auth = ["--os-username", user, "--os-password", password, "--os-project-name", project]
    return cloud.cli(*auth, *args, cloud="dockyard")


def glance_table(text: str) -> dict[str, str]:
    """The Property/Value table glance prints."""
    rows: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if len(parts) != 2 or parts[0] == "Property":
            continue
        if parts[0]:
            key = parts[0]
            rows[key] = parts[1]
        elif key:  # a long value wrapped onto the next row
            rows[key] += parts[1]
    return rows


def blobs(cloud: Cloud) -> set[str]:
    root = cloud.home / "blobs"
    return {p.name for p in root.iterdir() if p.is_file()}


def test_docker_save_piped_into_glance_image_create(cloud, saved, tmp_path):
    name = f"nginx-{uuid.uuid4().hex[:6]}"
    save = subprocess.Popen(["docker", "save", saved.tag], stdout=subprocess.PIPE)
    r = cloud.cli(
        "image-create",
        "--visibility",
        "public",
        "--container-format",
        "docker",
        "--disk-format",
        "raw",
        "--name",
        name,
        tool="glance",
        stdin=save.stdout,
    )
    save.stdout.close()
    assert save.wait() == 0
    assert r.returncode == 0, r.stderr
    shown = glance_table(r.stdout)
    assert shown["status"] == "active" and shown["visibility"] == "public"
    assert shown["container_format"] == "docker" and shown["docker_repo_tags"] == saved.tag
    r = cloud.cli("image-list", tool="glance")
    assert r.returncode == 0, r.stderr
    assert shown["id"] in r.stdout and name in r.stdout
    # the bytes that arrived are the bytes that come back, and the hashes describe them
    out = tmp_path / "back.tar"
    r = cloud.cli("image-download", "--file", str(out), shown["id"], tool="glance")
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert int(shown["size"]) == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    # public: the demo project sees it too
    listed = cloud.cli_json("image", "list", cloud="dockyard")
    assert shown["id"] in [i["ID"] for i in listed]


def test_openstack_image_lifecycle(cloud, saved, tmp_path):
    name = f"web-{uuid.uuid4().hex[:6]}"
    made = cloud.cli_json(
        "image",
        "create",
        "--container-format",
        "docker",
        "--disk-format",
        "raw",
        "--file",
        str(saved.path),
        name,
        cloud="dockyard",
    )
    assert made["status"] == "active"
    assert made["size"] == len(saved.data)
    assert made["checksum"] == hashlib.md5(saved.data).hexdigest()
    assert made["properties"]["os_hash_value"] == hashlib.sha512(saved.data).hexdigest()
    assert made["id"] in blobs(cloud)
    rows = cloud.cli_json("image", "list", cloud="dockyard")
    assert {"ID": made["id"], "Name": name, "Status": "active"} in rows
    r = cloud.cli(
        "image", "set", "--property", "app=web", "--min-ram", "64", name, cloud="dockyard"
    )
    assert r.returncode == 0, r.stderr
    shown = cloud.cli_json("image", "show", name, cloud="dockyard")
    assert shown["properties"]["app"] == "web" and shown["min_ram"] == 64
    out = tmp_path / "saved.tar"
    r = cloud.cli("image", "save", "--file", str(out), name, cloud="dockyard")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == saved.data
    assert cloud.cli("image", "delete", name, cloud="dockyard").returncode == 0
    assert cloud.cli("image", "show", made["id"], cloud="dockyard").returncode != 0
    assert made["id"] not in blobs(cloud)


def test_openstack_image_create_with_import(cloud, saved):
    # glance-direct: the client stages the data, then asks for the import
    made = cloud.cli_json(
        "image",
        "create",
        "--import",
        "--container-format",
        "docker",
        "--disk-format",
        "raw",
        "--file",
        str(saved.path),
        f"imp-{uuid.uuid4().hex[:6]}",
        cloud="dockyard",
    )
    with cloud.client(cloud.token("demo")) as c:
        shown = c.get(f"/image/v2/images/{made['id']}").json()
    assert shown["status"] == "active" and shown["size"] == len(saved.data)
    assert shown["checksum"] == hashlib.md5(saved.data).hexdigest()


def test_bad_archives_are_refused_by_both_clients(cloud, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a docker image\n" * 100)
    name = f"bad-{uuid.uuid4().hex[:6]}"
    r = cloud.cli(
        "image",
        "create",
        "--container-format",
        "docker",
        "--disk-format",
        "raw",
        "--file",
        str(text),
        name,
        cloud="dockyard",
    )
    assert r.returncode != 0
    assert "not a docker save archive" in r.stderr and "400" in r.stderr
    # the SDK deletes the record it made when the upload fails; nothing active, no data kept
    rows = [i for i in cloud.cli_json("image", "list", cloud="dockyard") if i["Name"] == name]
    assert all(i["Status"] == "queued" for i in rows)
    assert not {i["ID"] for i in rows} & blobs(cloud)
    escape = tmp_path / "escape.tar"
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps([{"Config": "c.json", "RepoTags": [], "Layers": ["../x"]}]))
    (tmp_path / "c.json").write_text("{}")
    subprocess.run(
        ["tar", "-cf", str(escape), "-C", str(tmp_path), "manifest.json", "c.json"], check=True
    )
    r = cloud.cli(
        "image-create",
        "--container-format",
        "docker",
        "--disk-format",
        "raw",
        "--name",
        name + "-g",
        "--file",
        str(escape),
        tool="glance",
        cloud="dockyard",
    )
    assert r.returncode != 0
    assert "outside the archive" in r.stderr
    assert not (cloud.home / "x").exists() and not (cloud.home / "blobs" / "x").exists()
    assert list((cloud.home / "blobs" / ".tmp").iterdir()) == []


def test_projects_see_only_what_they_may(cloud, saved, third):
    # set up over HTTP (quick); look with the CLI as each project
    def create(token: str, visibility: str) -> str:
        with cloud.client(token) as c:
            r = c.post(
                "/image/v2/images",
                json={
                    "name": f"iso-{uuid.uuid4().hex[:6]}",
                    "container_format": "docker",
                    "disk_format": "raw",
                    "visibility": visibility,
                },
            )
            assert r.status_code == 201, r.text
            iid = r.json()["id"]
            r = c.put(f"/image/v2/images/{iid}/file", content=saved.data)
            assert r.status_code == 204, r.text
            return iid

    admin_token, demo_token = cloud.token("admin"), cloud.token("demo")
    demo_private, demo_shared = create(demo_token, "private"), create(demo_token, "shared")
    admin_private, admin_public = create(admin_token, "private"), create(admin_token, "public")

    demo_ids = [i["ID"] for i in cloud.cli_json("image", "list", cloud="dockyard")]
    assert demo_private in demo_ids and admin_public in demo_ids
    assert admin_private not in demo_ids
    assert cloud.cli("image", "show", admin_private, cloud="dockyard").returncode != 0

    r = as_third(cloud, third, "image", "list", "-f", "json")
    assert r.returncode == 0, r.stderr
    third_ids = [i["ID"] for i in json.loads(r.stdout)]
    assert admin_public in third_ids
    assert demo_private not in third_ids and admin_private not in third_ids
    assert demo_shared not in third_ids
    for args in (
        ("image", "save", "--file", "/dev/null", demo_private),
        ("image", "delete", demo_private),
    ):
        r = as_third(cloud, third, *args)
        assert r.returncode != 0, args
    with cloud.client(demo_token) as c:
        assert c.get(f"/image/v2/images/{demo_private}").json()["status"] == "active"

    # sharing: demo adds the third project, which accepts
    with cloud.client(admin_token) as c:
        r = c.get("/identity/v3/projects", params={"name": third[0]})
        third_id = r.json()["projects"][0]["id"]
    r = cloud.cli("image", "add", "project", demo_shared, third_id, cloud="dockyard")
    assert r.returncode == 0, r.stderr
    r = as_third(cloud, third, "image", "set", "--accept", demo_shared)
    assert r.returncode == 0, r.stderr
    r = as_third(cloud, third, "image", "list", "-f", "json")
    assert demo_shared in [i["ID"] for i in json.loads(r.stdout)]


def test_quota_exceeded_keeps_nothing(tmp_path, saved):
    cloud = new_cloud(
        tmp_path / "home",
        env={"DOCKYARD_IMAGE_QUOTA_BYTES": str(len(saved.data) + len(saved.data) // 2)},
    )
    cloud.start()
    try:
        args = ("image", "create", "--container-format", "docker", "--disk-format", "raw")
        first = cloud.cli_json(*args, "--file", str(saved.path), "one", cloud="dockyard")
        assert first["status"] == "active"
        r = cloud.cli(*args, "--file", str(saved.path), "two", cloud="dockyard")
        assert r.returncode != 0
        assert "quota" in r.stderr.lower() and "413" in r.stderr
        with open(saved.path, "rb") as f:
            r = cloud.cli(
                "image-create",
                "--container-format",
                "docker",
                "--disk-format",
                "raw",
                "--name",
                "three",
                tool="glance",
                cloud="dockyard",
                stdin=f,
            )
        assert r.returncode != 0 and "quota" in r.stderr.lower()
        rows = {i["Name"]: i["Status"] for i in cloud.cli_json("image", "list", cloud="dockyard")}
        assert rows.pop("one") == "active"
        assert rows.pop("three") == "queued"  # glance leaves the record; openstack deletes it
        assert set(rows.values()) <= {"queued"}
        assert blobs(cloud) == {first["id"]}
        assert list((cloud.home / "blobs" / ".tmp").iterdir()) == []
    finally:
        cloud.stop()
