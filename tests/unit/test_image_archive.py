"""docker save archive checks and Docker reference parsing (no Docker, no server)."""

from __future__ import annotations

import gzip
import json

import pytest

from dockyard.image.archive import ArchiveError, inspect_archive
from dockyard.image.reference import check_allowed, parse_reference
from dockyard.image.store import BlobStore, LimitExceeded
from tests.support.images import bad_archives, fake_docker_save, tar_bytes


def test_docker_save_archive_gives_tags_and_config_digest(tmp_path):
    data, digest = fake_docker_save(tags=("nginx:1.25", "nginx:latest"))
    path = tmp_path / "a.tar"
    path.write_bytes(data)
    found = inspect_archive(path)
    assert found.format == "docker-save"
    assert found.repo_tags == ("nginx:1.25", "nginx:latest")
    assert found.config_digest == digest


def test_gzipped_archive_is_accepted(tmp_path):
    data, digest = fake_docker_save()
    path = tmp_path / "a.tar.gz"
    path.write_bytes(gzip.compress(data))
    assert inspect_archive(path).config_digest == digest


@pytest.mark.parametrize("case", sorted(bad_archives()))
def test_bad_archives_are_refused_with_the_reason(tmp_path, case):
    data, phrase = bad_archives()[case]
    path = tmp_path / "bad.tar"
    path.write_bytes(data)
    with pytest.raises(ArchiveError) as err:
        inspect_archive(path)
    assert phrase in str(err.value)


def test_archive_with_two_images_is_refused(tmp_path):
    one, _ = fake_docker_save()
    path = tmp_path / "two.tar"
    path.write_bytes(one)
    import tarfile

    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    files["manifest.json"] = json.dumps(manifest * 2).encode()
    path.write_bytes(tar_bytes(files))
    with pytest.raises(ArchiveError, match="holds 2 images"):
        inspect_archive(path)


def test_oci_layout_is_read(tmp_path):
    import hashlib

    config = b'{"os":"linux"}'
    layer = tar_bytes({"x": b"x"})
    c_hex, l_hex = hashlib.sha256(config).hexdigest(), hashlib.sha256(layer).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "config": {"digest": f"sha256:{c_hex}", "size": len(config)},
            "layers": [{"digest": f"sha256:{l_hex}", "size": len(layer)}],
        }
    ).encode()
    m_hex = hashlib.sha256(manifest).hexdigest()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "digest": f"sha256:{m_hex}",
                "annotations": {"io.containerd.image.name": "docker.io/library/x:1"},
            }
        ],
    }
    files = {
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "index.json": json.dumps(index).encode(),
        f"blobs/sha256/{c_hex}": config,
        f"blobs/sha256/{l_hex}": layer,
        f"blobs/sha256/{m_hex}": manifest,
    }
    path = tmp_path / "oci.tar"
    path.write_bytes(tar_bytes(files))
    found = inspect_archive(path)
    assert (found.format, found.config_digest) == ("oci-layout", f"sha256:{c_hex}")
    assert found.repo_tags == ("docker.io/library/x:1",)
    del files[f"blobs/sha256/{l_hex}"]
    path.write_bytes(tar_bytes(files))
    with pytest.raises(ArchiveError, match="not in the archive"):
        inspect_archive(path)


@pytest.mark.parametrize(
    "ref, registry, repository, pull",
    [
        ("nginx", None, "nginx", "nginx:latest"),
        ("nginx:1.25", None, "nginx", "nginx:1.25"),
        ("127.0.0.1:5000/nginx:1.25", "127.0.0.1:5000", "127.0.0.1:5000/nginx", None),
        ("localhost/a/b", "localhost", "localhost/a/b", "localhost/a/b:latest"),
        ("quay.io/org/app@sha256:" + "a" * 64, "quay.io", "quay.io/org/app", None),
    ],
)
def test_references_parse(ref, registry, repository, pull):
    parsed = parse_reference(ref)
    assert (parsed.registry, parsed.repository) == (registry, repository)
    assert parsed.pull_ref == (pull or ref)


@pytest.mark.parametrize("ref", ["", "UPPER/case", "a b", "x:", "x@sha256:12", "../x", "x//y"])
def test_bad_references_are_refused(ref):
    with pytest.raises(ValueError):
        parse_reference(ref)


def test_registry_allow_list():
    check_allowed(parse_reference("127.0.0.1:5000/x"), "127.0.0.1:5000, quay.io")
    check_allowed(parse_reference("nginx"), "")
    with pytest.raises(ValueError, match="docker.io"):
        check_allowed(parse_reference("nginx"), "127.0.0.1:5000")


def test_blob_writer_hashes_limits_and_cleans_up(tmp_path):
    import hashlib

    store = BlobStore(tmp_path / "blobs")
    with store.writer(limit=10) as w:
        w.write(b"hello")
        blob = w.finish()
        location = store.commit(blob, "img-1")
        w.done = True
    assert blob.md5 == hashlib.md5(b"hello").hexdigest()
    assert blob.sha512 == hashlib.sha512(b"hello").hexdigest()
    assert BlobStore.local_path(location).read_bytes() == b"hello"
    with pytest.raises(LimitExceeded), store.writer(limit=10) as w:
        w.write(b"0123456789a")
    assert list(store.temp_dir.iterdir()) == []
    store.delete(location)
    assert sorted(p.name for p in store.root.iterdir()) == [".tmp"]


def test_sweeps_remove_only_stale_leftovers(tmp_path):
    import os

    store = BlobStore(tmp_path / "blobs")
    old, fresh, kept = (store.root / n for n in ("orphan-old", "orphan-new", "img-kept"))
    for p in (old, fresh, kept, store.temp_dir / "x.part", store.temp_dir / "y.part"):
        p.write_bytes(b"x")
    for p in (old, kept, store.temp_dir / "x.part"):
        os.utime(p, (1, 1))
    assert store.sweep_orphans({"img-kept"}) == 1
    assert store.sweep_temp() == 1
    assert sorted(p.name for p in store.root.iterdir() if p.is_file()) == ["img-kept", "orphan-new"]
    assert [p.name for p in store.temp_dir.iterdir()] == ["y.part"]


def test_delivery_stream_renames_the_image_and_copies_everything_else(tmp_path):
    import io
    import tarfile

    from dockyard.docker.images import retagged_archive

    data, _ = fake_docker_save(tags=("nginx:latest",))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    files["./manifest.json"] = files.pop("manifest.json")  # a path spelled differently
    files["index.json"] = json.dumps({"manifests": [{"digest": "sha256:" + "0" * 64}]}).encode()
    src = tmp_path / "in.tar"
    src.write_bytes(tar_bytes(files))
    out = b"".join(retagged_archive(src, "dockyard/image-x:latest"))
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    manifest = json.loads(got.pop("manifest.json"))
    assert manifest[0]["RepoTags"] == ["dockyard/image-x:latest"]
    notes = json.loads(got.pop("index.json"))["manifests"][0]["annotations"]
    assert notes["io.containerd.image.name"] == "docker.io/dockyard/image-x:latest"
    del files["./manifest.json"], files["index.json"]
    assert got == files
