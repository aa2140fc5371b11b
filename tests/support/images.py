"""Image test helpers: hand-made docker save archives (good and malicious), real ones from
dockerd, and clean-up of what the tests put into Docker."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import tarfile
import uuid
from pathlib import Path

import httpx

from tests.support.docker import TEST_LABEL, build_busybox_image, docker_client


def tar_bytes(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A tar of regular files (and symlinks name -> target), in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def fake_docker_save(
    tags: tuple[str, ...] = ("dockyard-test/fake:1",),
    layer: bytes = b"",
    padding: int = 0,
    corrupt: bool = False,
) -> tuple[bytes, str]:
    """A small archive shaped like `docker save` output; returns (bytes, config digest).

    It passes dockyard's checks; with corrupt=True, Docker refuses to load it (the layer does
    not match the config's diff id)."""
    layer_tar = tar_bytes({"hello.txt": layer or b"hello\n", "pad.bin": b"\0" * padding})
    layer_id = hashlib.sha256(layer_tar).hexdigest()
    diff_id = hashlib.sha256(b"not the layer").hexdigest() if corrupt else layer_id
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        }
    ).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    manifest = [
        {
            "Config": f"{config_hex}.json",
            "RepoTags": list(tags),
            "Layers": [f"{layer_id}/layer.tar"],
        }
    ]
    data = tar_bytes(
        {
            f"{layer_id}/VERSION": b"1.0",
            f"{layer_id}/json": b"{}",
            f"{layer_id}/layer.tar": layer_tar,
            f"{config_hex}.json": config,
            "manifest.json": json.dumps(manifest).encode(),
        }
    )
    return data, f"sha256:{config_hex}"


def bad_archives() -> dict[str, tuple[bytes, str]]:
    """name -> (data, a phrase the refusal message must contain)."""
    good, _ = fake_docker_save()
    layer = tar_bytes({"a": b"a"})
    return {
        "text": (b"this is just a text file, not an image\n" * 50, "not a tar file"),
        "no-manifest": (tar_bytes({"foo.txt": b"x"}), "manifest.json missing"),
        "manifest-escape": (
            tar_bytes(
                {
                    "cfg.json": b"{}",
                    "manifest.json": json.dumps(
                        [{"Config": "cfg.json", "RepoTags": [], "Layers": ["../x"]}]
                    ).encode(),
                }
            ),
            "outside the archive",
        ),
        "member-escape": (
            tar_bytes({"../evil.txt": b"x", "manifest.json": b"[]"}),
            "outside the archive",
        ),
        "absolute-member": (tar_bytes({"/etc/evil": b"x"}), "absolute path"),
        "symlink-escape": (
            tar_bytes({"manifest.json": b"[]"}, links={"l/layer.tar": "../../etc/passwd"}),
            "outside the archive",
        ),
        "missing-layer": (
            tar_bytes(
                {
                    "cfg.json": b"{}",
                    "manifest.json": json.dumps(
                        [{"Config": "cfg.json", "RepoTags": [], "Layers": ["nope/layer.tar"]}]
                    ).encode(),
                    "l/layer.tar": layer,
                }
            ),
            "not in the archive",
        ),
        "bad-json": (tar_bytes({"manifest.json": b"{not json"}), "not valid JSON"),
        "truncated": (good[: len(good) // 2], "not a docker save archive"),
    }


class SavedImage:
    """A busybox image built with `docker import` and saved with `docker save`."""

    def __init__(self, directory: Path):
        self.tag = f"dockyard-test/img-{uuid.uuid4().hex[:8]}:1"
        self.docker_id = build_busybox_image(self.tag)
        self.path = directory / "busybox.tar"
        subprocess.run(["docker", "save", "-o", str(self.path), self.tag], check=True)
        self.data = self.path.read_bytes()

    def remove(self) -> None:
        remove_image_refs([self.tag])


def remove_image_refs(refs: list[str]) -> None:
    """Untag/remove these references (only ours; never images other tests may be using)."""
    client = docker_client()
    for ref in refs:
        with contextlib.suppress(Exception):  # gone already is fine
            client.images.remove(ref, force=True, noprune=False)


def new_project_member(cloud, admin: httpx.Client) -> tuple[str, str]:
    """A fresh project with a member user; returns (project id, that user's token)."""
    ident = "/identity/v3"
    name = f"img-{uuid.uuid4().hex[:8]}"
    r = admin.post(ident + "/projects", json={"project": {"name": name}})
    assert r.status_code == 201, r.text
    pid = r.json()["project"]["id"]
    r = admin.post(ident + "/users", json={"user": {"name": name, "password": "pw-" + name}})
    assert r.status_code == 201, r.text
    uid = r.json()["user"]["id"]
    roles = {x["name"]: x["id"] for x in admin.get(ident + "/roles").json()["roles"]}
    assert admin.put(ident + f"/projects/{pid}/users/{uid}/roles/{roles['member']}").is_success
    return pid, cloud.token(name, password="pw-" + name, project=name)


def remove_delivered(image_ids: list[str]) -> None:
    remove_image_refs([f"dockyard/image-{i}:latest" for i in image_ids])


__all__ = [
    "TEST_LABEL",
    "SavedImage",
    "bad_archives",
    "fake_docker_save",
    "new_project_member",
    "remove_delivered",
    "remove_image_refs",
    "tar_bytes",
]
