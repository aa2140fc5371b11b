"""Image API v2 over HTTP against a real dockyard, on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlparse

import httpx
import pytest

from dockyard.db import Database
from dockyard.db.base import utcnow
from dockyard.image.models import Image
from tests.conftest import BACKENDS, make_database_url
from tests.support.cloud import Cloud, new_cloud
from tests.support.images import bad_archives, fake_docker_save, new_project_member

IMG = "/image/v2/images"
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def admin(cloud):
    with cloud.client(cloud.token("admin")) as c:
        yield c


@pytest.fixture(scope="module")
def demo(cloud):
    with cloud.client(cloud.token("demo")) as c:
        yield c


@pytest.fixture(scope="module")
def other(cloud, admin):
    """A member of a third project, made for this module."""
    pid, token = new_project_member(cloud, admin)
    with cloud.client(token) as c:
        c.project_id = pid
        yield c


def create(client: httpx.Client, expect: int = 201, **body) -> dict:
    body.setdefault("name", f"img-{uuid.uuid4().hex[:6]}")
    body.setdefault("container_format", "docker")
    body.setdefault("disk_format", "raw")
    r = client.post(IMG, json=body)
    assert r.status_code == expect, r.text
    return r.json() if expect == 201 else {"error": r.text}


def upload(client: httpx.Client, image_id: str, data, expect: int = 204, **kw) -> httpx.Response:
    r = client.put(f"{IMG}/{image_id}/file", content=data, headers=OCTET, **kw)
    assert r.status_code == expect, r.text
    return r


def patch(client: httpx.Client, image_id: str, ops: list, expect: int = 200) -> httpx.Response:
    r = client.patch(f"{IMG}/{image_id}", json=ops, headers=PATCH)
    assert r.status_code == expect, r.text
    return r


def blobs(cloud: Cloud) -> set[str]:
    root = cloud.home / "blobs"
    return {p.name for p in root.iterdir() if p.is_file()} if root.exists() else set()


def temp_files(cloud: Cloud) -> list[str]:
    tmp = cloud.home / "blobs" / ".tmp"
    return [p.name for p in tmp.iterdir()] if tmp.exists() else []


def listed(client: httpx.Client, **params) -> list[str]:
    r = client.get(IMG, params=params)
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["images"]]


# ---- discovery -------------------------------------------------------------------------------


def test_version_documents_and_schemas(cloud, demo):
    r = httpx.get(cloud.url + "/image/")
    assert r.status_code == 300
    versions = r.json()["versions"]
    assert versions[0]["status"] == "CURRENT"
    assert versions[0]["links"][0]["href"] == cloud.url + "/image/v2/"
    assert httpx.get(cloud.url + "/image/versions").json() == r.json()
    assert httpx.get(cloud.url + "/image/v2/images").status_code == 401
    schema = demo.get("/image/v2/schemas/image", headers=OCTET).json()
    assert "docker" in schema["properties"]["container_format"]["enum"]
    assert "raw" in schema["properties"]["disk_format"]["enum"]
    assert schema["additionalProperties"] == {"type": "string"}
    for name in ("images", "member", "members"):
        assert demo.get(f"/image/v2/schemas/{name}").status_code == 200
    assert demo.get("/image/v2/schemas/metadefs/namespace").status_code == 404
    assert demo.get("/image/v2/info/import").json()["import-methods"]["value"] == ["glance-direct"]


# ---- data ------------------------------------------------------------------------------------


def test_upload_hashes_records_archive_and_downloads_byte_identical(cloud, demo):
    data, digest = fake_docker_save(tags=("web:1", "web:latest"), padding=300_000)
    image = create(demo, tags=["a", "b"], min_ram=64, custom="x")
    assert (image["status"], image["size"], image["checksum"]) == ("queued", None, None)
    assert image["visibility"] == "shared"
    assert image["visibility"] == "shared" and image["custom"] == "x"
    assert demo.get(f"{IMG}/{image['id']}/file").status_code == 204  # no data yet
    upload(demo, image["id"], data)
    got = demo.get(f"{IMG}/{image['id']}").json()
    assert got["status"] == "active"
    assert got["size"] == len(data)
    assert got["checksum"] == hashlib.md5(data).hexdigest()
    assert got["os_hash_algo"] == "sha512"
    assert got["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert got["docker_repo_tags"] == "web:1,web:latest"
    assert got["docker_config_digest"] == digest
    assert got["tags"] == ["a", "b"] and got["min_ram"] == 64
    r = demo.get(f"{IMG}/{image['id']}/file")
    assert r.status_code == 200 and r.content == data
    assert r.headers["Content-MD5"] == got["checksum"]
    assert image["id"] in blobs(cloud)
    # data goes in once; the archive's properties are dockyard's
    upload(demo, image["id"], data, expect=409)
    r = patch(
        demo, image["id"], [{"op": "replace", "path": "/docker_repo_tags", "value": "x"}], 403
    )
    assert "read-only" in r.text
    patch(demo, image["id"], [{"op": "remove", "path": "/docker_config_digest"}], 403)
    patch(demo, image["id"], [{"op": "replace", "path": "/size", "value": 1}], 403)
    r = demo.post(IMG, json={"name": "x", "docker_config_digest": "sha256:00"})
    assert r.status_code == 403


def test_chunked_upload_streams(cloud, demo):
    data, _ = fake_docker_save(padding=2_500_000)
    image = create(demo)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    upload(demo, image["id"], chunks())  # a generator body goes out chunked
    got = demo.get(f"{IMG}/{image['id']}").json()
    assert (got["status"], got["size"]) == ("active", len(data))
    assert got["os_hash_value"] == hashlib.sha512(data).hexdigest()


@pytest.mark.parametrize("case", sorted(bad_archives()))
def test_bad_docker_archives_are_refused_and_nothing_is_kept(cloud, demo, case, tmp_path):
    data, phrase = bad_archives()[case]
    image = create(demo)
    r = upload(demo, image["id"], data, expect=400)
    assert phrase in r.text
    got = demo.get(f"{IMG}/{image['id']}").json()
    assert got["status"] == "queued" and got["size"] is None and got["checksum"] is None
    assert image["id"] not in blobs(cloud)
    assert temp_files(cloud) == []
    assert not (cloud.home / "evil.txt").exists() and not (cloud.home / "x").exists()
    # the image can take good data afterwards
    upload(demo, image["id"], fake_docker_save()[0])


def test_other_container_formats_take_any_data(demo):
    image = create(demo, container_format="bare")
    upload(demo, image["id"], b"plain bytes")
    got = demo.get(f"{IMG}/{image['id']}").json()
    assert got["status"] == "active" and "docker_config_digest" not in got
    assert demo.get(f"{IMG}/{image['id']}/file").content == b"plain bytes"


def test_upload_needs_formats(demo):
    r = demo.post(IMG, json={"name": "noformat"})
    assert r.status_code == 201
    r = upload(demo, r.json()["id"], b"x", expect=400)
    assert "container_format and disk_format" in r.text


def test_upload_cut_off_midway_leaves_nothing(cloud, demo):
    image = create(demo)
    data, _ = fake_docker_save(padding=1_000_000)
    url = urlparse(cloud.url)
    path = f"/v2/images/{image['id']}/file"
    with socket.create_connection((url.hostname, url.port)) as s:
        head = (
            f"PUT /image{path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"X-Auth-Token: {demo.headers['X-Auth-Token']}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        s.sendall(head.encode() + data[: len(data) // 3])
        time.sleep(0.3)
    for _ in range(100):  # the server logs the request once it has given up on it
        if f'"PUT /image{path} ' in cloud.log_path.read_text():
            break
        time.sleep(0.1)
    got = demo.get(f"{IMG}/{image['id']}").json()
    assert got["status"] == "queued" and got["size"] is None
    assert image["id"] not in blobs(cloud)
    assert temp_files(cloud) == []
    upload(demo, image["id"], data)  # and it can be uploaded again


def test_stage_and_import(demo):
    data, _ = fake_docker_save()
    r = demo.post(IMG, json={"name": "imp", "container_format": "docker", "disk_format": "raw"})
    assert r.headers["OpenStack-image-import-methods"] == "glance-direct"
    image = r.json()
    r = demo.post(f"{IMG}/{image['id']}/import", json={"method": {"name": "glance-direct"}})
    assert r.status_code == 409
    r = demo.put(f"{IMG}/{image['id']}/stage", content=data, headers=OCTET)
    assert r.status_code == 204, r.text
    r = demo.post(f"{IMG}/{image['id']}/import", json={"method": {"name": "web-download"}})
    assert r.status_code == 400
    r = demo.post(f"{IMG}/{image['id']}/import", json={"method": {"name": "glance-direct"}})
    assert r.status_code == 202
    assert demo.get(f"{IMG}/{image['id']}").json()["status"] == "active"


# ---- visibility and members ------------------------------------------------------------------


def test_private_images_are_invisible_to_other_projects(cloud, demo, other):
    data, _ = fake_docker_save()
    image = create(demo, visibility="private")
    upload(demo, image["id"], data)
    iid = image["id"]
    assert other.get(f"{IMG}/{iid}").status_code == 404
    assert other.get(f"{IMG}/{iid}/file").status_code == 404
    assert iid not in listed(other) and iid not in listed(other, visibility="all")
    assert iid not in listed(other, id=f"in:{iid}")
    r = other.patch(
        f"{IMG}/{iid}", json=[{"op": "replace", "path": "/name", "value": "x"}], headers=PATCH
    )
    assert r.status_code == 404
    assert other.delete(f"{IMG}/{iid}").status_code == 404
    assert other.put(f"{IMG}/{iid}/file", content=b"x", headers=OCTET).status_code == 404
    assert other.post(f"{IMG}/{iid}/members", json={"member": other.project_id}).status_code == 404
    got = demo.get(f"{IMG}/{iid}").json()
    assert got["name"] == image["name"] and got["status"] == "active"
    assert iid in listed(demo)


def test_public_is_admin_only_and_seen_by_all(admin, demo, other):
    r = demo.post(IMG, json={"name": "nope", "visibility": "public"})
    assert r.status_code == 403
    mine = create(demo)
    patch(demo, mine["id"], [{"op": "replace", "path": "/visibility", "value": "public"}], 403)
    public = create(admin, visibility="public")
    for c in (demo, other):
        assert c.get(f"{IMG}/{public['id']}").status_code == 200
        assert public["id"] in listed(c)
    # others may look, not touch
    patch(other, public["id"], [{"op": "replace", "path": "/name", "value": "x"}], 403)
    assert other.delete(f"{IMG}/{public['id']}").status_code == 403
    assert admin.delete(f"{IMG}/{public['id']}").status_code == 204


def test_community_images_are_reachable_but_not_listed_by_default(demo, other):
    image = create(demo, visibility="community")
    assert other.get(f"{IMG}/{image['id']}").status_code == 200
    assert image["id"] not in listed(other)
    assert image["id"] in listed(other, visibility="community")
    assert image["id"] in listed(demo)


def test_sharing_through_members(demo, other):
    image = create(demo, visibility="shared")
    iid, pid = image["id"], other.project_id
    assert other.get(f"{IMG}/{iid}").status_code == 404
    r = demo.post(f"{IMG}/{iid}/members", json={"member": pid})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending"
    assert demo.post(f"{IMG}/{iid}/members", json={"member": pid}).status_code == 409
    assert other.get(f"{IMG}/{iid}").status_code == 200  # reachable by id while pending
    assert iid not in listed(other)
    assert iid in listed(other, member_status="pending")
    # only the member answers, only the owner adds
    r = demo.put(f"{IMG}/{iid}/members/{pid}", json={"status": "accepted"})
    assert r.status_code == 403
    assert other.post(f"{IMG}/{iid}/members", json={"member": "x" * 32}).status_code == 403
    r = other.put(f"{IMG}/{iid}/members/{pid}", json={"status": "accepted"})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert iid in listed(other) and iid in listed(other, visibility="shared")
    members = other.get(f"{IMG}/{iid}/members").json()["members"]
    assert [m["member_id"] for m in members] == [pid]
    patch(other, iid, [{"op": "replace", "path": "/name", "value": "x"}], 403)
    other.put(f"{IMG}/{iid}/members/{pid}", json={"status": "rejected"})
    assert iid not in listed(other)
    assert demo.delete(f"{IMG}/{iid}/members/{pid}").status_code == 204
    assert other.get(f"{IMG}/{iid}").status_code == 404
    private = create(demo, visibility="private")
    r = demo.post(f"{IMG}/{private['id']}/members", json={"member": pid})
    assert r.status_code == 403 and "shared" in r.text


def test_admin_sees_every_project(admin, other):
    image = create(other, visibility="private")
    assert admin.get(f"{IMG}/{image['id']}").status_code == 200
    assert image["id"] in listed(admin)


# ---- list ------------------------------------------------------------------------------------


def test_filters_sorting_and_pagination(demo):
    tag = uuid.uuid4().hex[:8]
    ids = []
    for i in range(5):
        image = create(demo, name=f"page-{tag}-{i}", tags=[tag], color="red" if i % 2 else "blue")
        ids.append(image["id"])
    assert listed(demo, name=f"page-{tag}-3") == [ids[3]]
    assert sorted(listed(demo, id=f"in:{ids[0]},{ids[4]}")) == sorted([ids[0], ids[4]])
    assert sorted(listed(demo, name=f"in:page-{tag}-1,page-{tag}-2")) == sorted(ids[1:3])
    assert sorted(listed(demo, tag=tag, color="red")) == sorted([ids[1], ids[3]])
    assert listed(demo, tag=tag, status="active") == []
    assert listed(demo, tag=tag, sort_key="name", sort_dir="asc") == ids
    assert listed(demo, tag=tag, sort="name:desc") == ids[::-1]
    # follow `next` links two at a time
    seen, url = [], f"{IMG}?tag={tag}&limit=2&sort_key=name&sort_dir=asc"
    pages = 0
    while url:
        body = demo.get("/image" + url if url.startswith("/v2") else url).json()
        seen += [i["id"] for i in body["images"]]
        url = body.get("next")
        pages += 1
    assert seen == ids and pages == 3
    body = demo.get(IMG, params={"tag": tag, "limit": 5}).json()
    assert "next" not in body and len(body["images"]) == 5
    assert demo.get(IMG, params={"marker": str(uuid.uuid4())}).status_code == 400
    assert demo.get(IMG, params={"sort_key": "bogus"}).status_code == 400
    assert demo.get(IMG, params={"limit": "x"}).status_code == 400
    future = "gt:2999-01-01T00:00:00Z"
    assert listed(demo, tag=tag, created_at=future) == []
    assert len(listed(demo, tag=tag, created_at="gt:2000-01-01T00:00:00Z")) == 5


def test_hidden_images_are_listed_only_when_asked(demo):
    image = create(demo, os_hidden=True)
    assert image["id"] not in listed(demo)
    assert image["id"] in listed(demo, os_hidden="true")


def test_name_lookup_by_path_is_404(demo):
    image = create(demo)
    assert demo.get(f"{IMG}/{image['name']}").status_code == 404


# ---- updates, protection, deactivation -------------------------------------------------------


def test_json_patch_updates(demo):
    image = create(demo, tags=["t1"], keep="1")
    iid = image["id"]
    r = patch(
        demo,
        iid,
        [
            {"op": "replace", "path": "/name", "value": "renamed"},
            {"op": "add", "path": "/new_prop", "value": "v"},
            {"op": "remove", "path": "/keep"},
            {"op": "replace", "path": "/tags", "value": ["t2", "t3"]},
            {"op": "replace", "path": "/min_disk", "value": 3},
            {"op": "add", "path": "/a~1b", "value": "slash"},
        ],
    )
    got = r.json()
    assert got["name"] == "renamed" and got["new_prop"] == "v" and "keep" not in got
    assert got["tags"] == ["t2", "t3"] and got["min_disk"] == 3 and got["a/b"] == "slash"
    assert demo.get(f"{IMG}/{iid}").json()["new_prop"] == "v"
    patch(demo, iid, [{"op": "replace", "path": "/missing", "value": "x"}], 409)
    patch(demo, iid, [{"op": "remove", "path": "/missing"}], 409)
    patch(demo, iid, [{"op": "replace", "path": "/min_ram", "value": -1}], 400)
    patch(demo, iid, [{"op": "replace", "path": "/visibility", "value": "everyone"}], 400)
    patch(demo, iid, [{"op": "add", "path": "/num", "value": 5}], 400)
    patch(demo, iid, [{"op": "move", "path": "/name", "from": "/x"}], 400)
    patch(demo, iid, [{"op": "add", "path": "/os_glance_x", "value": "v"}], 403)
    # a refused patch changes nothing, even its valid operations
    patch(
        demo,
        iid,
        [{"op": "replace", "path": "/name", "value": "half"}, {"op": "remove", "path": "/nope"}],
        409,
    )
    assert demo.get(f"{IMG}/{iid}").json()["name"] == "renamed"
    r = demo.patch(f"{IMG}/{iid}", json=[], headers={"Content-Type": "application/json"})
    assert r.status_code == 415
    assert demo.put(f"{IMG}/{iid}/tags/extra").status_code == 204
    assert "extra" in demo.get(f"{IMG}/{iid}").json()["tags"]
    assert demo.delete(f"{IMG}/{iid}/tags/extra").status_code == 204
    assert demo.delete(f"{IMG}/{iid}/tags/extra").status_code == 404


def test_protected_images_cannot_be_deleted(cloud, demo):
    image = create(demo, protected=True)
    upload(demo, image["id"], fake_docker_save()[0])
    r = demo.delete(f"{IMG}/{image['id']}")
    assert r.status_code == 403 and "protected" in r.text
    patch(demo, image["id"], [{"op": "replace", "path": "/protected", "value": False}])
    assert image["id"] in blobs(cloud)
    assert demo.delete(f"{IMG}/{image['id']}").status_code == 204
    assert demo.get(f"{IMG}/{image['id']}").status_code == 404
    assert image["id"] not in blobs(cloud)


def test_deactivate_and_reactivate_are_admin_only(admin, demo):
    image = create(demo, visibility="shared")
    action = f"{IMG}/{image['id']}/actions"
    assert admin.post(action + "/deactivate").status_code == 403  # queued: nothing to deactivate
    upload(demo, image["id"], fake_docker_save()[0])
    assert demo.post(action + "/deactivate").status_code == 403
    assert admin.post(action + "/deactivate").status_code == 204
    assert demo.get(f"{IMG}/{image['id']}").json()["status"] == "deactivated"
    r = demo.get(f"{IMG}/{image['id']}/file")
    assert r.status_code == 403 and "deactivated" in r.text
    assert admin.get(f"{IMG}/{image['id']}/file").status_code == 200
    assert demo.post(action + "/reactivate").status_code == 403
    assert admin.post(action + "/reactivate").status_code == 204
    assert demo.get(f"{IMG}/{image['id']}/file").status_code == 200


def test_bad_create_bodies_are_refused(demo):
    before = len(listed(demo, limit=1000))
    for body, status in [
        ({"name": "x", "container_format": "vhdx"}, 400),
        ({"name": "x", "disk_format": "docker"}, 400),
        ({"name": "x", "status": "active"}, 403),
        ({"name": "x", "id": "not-a-uuid"}, 400),
        ({"name": "x", "min_ram": "lots"}, 400),
        ({"name": "x", "tags": "notalist"}, 400),
        ({"name": "x", "prop": {"nested": 1}}, 400),
        ({"name": "x", "container_format": "docker", "docker_image": "Not A Ref"}, 400),
    ]:
        r = demo.post(IMG, json=body)
        assert r.status_code == status, (body, r.text)
    assert (
        demo.post(IMG, content=b"{oops", headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    assert len(listed(demo, limit=1000)) == before


def test_registry_backed_image_is_active_without_data(admin, demo):
    image = create(demo, docker_image="127.0.0.1:5000/dockyard-test/web:1")
    assert image["status"] == "active" and image["size"] is None
    assert demo.get(f"{IMG}/{image['id']}/file").status_code == 204
    patch(demo, image["id"], [{"op": "remove", "path": "/docker_image"}])
    assert demo.get(f"{IMG}/{image['id']}").json()["status"] == "queued"
    # data may still come (it then wins over the reference), but not past a deactivation
    both = create(demo, docker_image="127.0.0.1:5000/dockyard-test/web:1")
    upload(demo, both["id"], fake_docker_save()[0])
    got = demo.get(f"{IMG}/{both['id']}").json()
    assert got["status"] == "active" and got["size"] and got["docker_image"]
    frozen = create(demo, docker_image="127.0.0.1:5000/dockyard-test/web:1")
    assert admin.post(f"{IMG}/{frozen['id']}/actions/deactivate").status_code == 204
    upload(demo, frozen["id"], fake_docker_save()[0], expect=409)
    assert demo.get(f"{IMG}/{frozen['id']}").json()["status"] == "deactivated"


# ---- quotas ----------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS, scope="module")
def small_cloud(request, tmp_path_factory, pg_databases) -> Iterator[Cloud]:
    """A dockyard with tiny image quotas and a registry allow-list."""
    c = new_cloud(
        tmp_path_factory.mktemp(f"dockyard-quota-{request.param}"),
        make_database_url(request.param, pg_databases),
        env={
            "DOCKYARD_IMAGE_QUOTA_IMAGES": "3",
            "DOCKYARD_IMAGE_QUOTA_BYTES": "200000",
            "DOCKYARD_IMAGE_ALLOWED_REGISTRIES": "127.0.0.1:5000",
        },
    )
    c.start()
    yield c
    c.stop()


def test_quotas_refuse_and_keep_nothing(small_cloud):
    with small_cloud.client(small_cloud.token("demo")) as demo:
        big, _ = fake_docker_save(padding=120_000)
        first = create(demo)
        upload(demo, first["id"], big)  # ~130 kB of 200 kB
        second = create(demo)
        # with Content-Length: refused before any byte is stored
        r = upload(demo, second["id"], big, expect=413)
        assert "quota" in r.text.lower() and "image_quota_bytes" in r.text
        # chunked (no length): refused while streaming
        r = upload(
            demo,
            second["id"],
            iter([big[i : i + 8192] for i in range(0, len(big), 8192)]),
            expect=413,
        )
        assert "quota" in r.text.lower()
        got = demo.get(f"{IMG}/{second['id']}").json()
        assert got["status"] == "queued" and got["size"] is None
        assert blobs(small_cloud) == {first["id"]}
        assert temp_files(small_cloud) == []
        upload(demo, second["id"], fake_docker_save()[0])  # small data still fits
        create(demo)
        r = demo.post(IMG, json={"name": "fourth"})
        assert r.status_code == 413 and "image_quota_images" in r.text
        # deleting frees room
        assert demo.delete(f"{IMG}/{first['id']}").status_code == 204
        create(demo)


def test_registry_allow_list(small_cloud):
    with small_cloud.client(small_cloud.token("admin")) as admin:
        create(admin, docker_image="127.0.0.1:5000/x:1")
        r = admin.post(IMG, json={"name": "x", "docker_image": "quay.io/x/y:1"})
        assert r.status_code == 400 and "not allowed" in r.text


# ---- uploads abandoned by a dead process -----------------------------------------------------


@pytest.fixture(scope="module")
def db(cloud) -> Iterator[Database]:
    database = Database(cloud.database_url or f"sqlite:///{cloud.home / 'dockyard.db'}")
    yield database
    database.dispose()


def test_abandoned_upload_can_be_taken_over(demo, db):
    image = create(demo)
    with db.session() as s:  # what a process that died mid-upload leaves behind
        row = s.get(Image, image["id"])
        row.status, row.reserved_bytes = "saving", 10**12
        row.updated_at = utcnow() - timedelta(hours=1)
    # the dead upload's reservation does not count against the quota, and the data can come
    upload(demo, image["id"], fake_docker_save()[0])
    assert demo.get(f"{IMG}/{image['id']}").json()["status"] == "active"
    live = create(demo)
    with db.session() as s:
        row = s.get(Image, live["id"])
        row.status = "saving"
    r = upload(demo, live["id"], b"x", expect=409)
    assert "another upload" in r.text


def test_racing_uploads_to_one_image_have_one_winner(cloud, demo):
    from concurrent.futures import ThreadPoolExecutor

    image = create(demo)
    data, _ = fake_docker_save(padding=400_000)
    token = demo.headers["X-Auth-Token"]

    def put(_: int) -> int:
        with cloud.client(token) as c:
            return c.put(f"{IMG}/{image['id']}/file", content=data, headers=OCTET).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(put, range(6)))
    assert codes == [204] + [409] * 5
    got = demo.get(f"{IMG}/{image['id']}").json()
    assert got["status"] == "active" and got["checksum"] == hashlib.md5(data).hexdigest()
    assert temp_files(cloud) == []
