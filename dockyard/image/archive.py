"""Checks that a file is a real `docker save` archive (or an OCI image layout) and reads it.

Only the tar headers and the small JSON documents are read; layer data is skipped, so a
multi-GiB archive is checked in well under a second. Nothing is extracted.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

MAX_JSON_BYTES = 8 * 1024 * 1024
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class ArchiveError(ValueError):
    """The data is not an acceptable docker image archive; the message says why."""


@dataclass(frozen=True)
class DockerArchive:
    format: str  # "docker-save" or "oci-layout"
    repo_tags: tuple[str, ...]
    config_digest: str  # "sha256:<hex>": the image id Docker gives the loaded image


def _safe_name(name: str, what: str) -> str:
    """A member path normalised, or ArchiveError if it would leave the archive."""
    if not name or "\x00" in name:
        raise ArchiveError(f"not a docker save archive: {what} has an empty or invalid path")
    if name.startswith("/"):
        raise ArchiveError(f"not a docker save archive: {what} '{name}' is an absolute path")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        raise ArchiveError(f"not a docker save archive: {what} '{name}' points outside the archive")
    return norm


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    for info in tar:
        name = _safe_name(info.name, "member")
        if info.isdir():
            continue
        if info.issym() or info.islnk():
            target = info.linkname
            if info.issym() and not target.startswith("/"):
                target = posixpath.join(posixpath.dirname(name), target)
            _safe_name(target, f"link '{name}' ->")
        elif not info.isfile():
            raise ArchiveError(
                f"not a docker save archive: member '{name}' is a device, fifo or other "
                "special file"
            )
        members[name] = info
    return members


def _resolve(members: dict[str, tarfile.TarInfo], name: str, what: str) -> tarfile.TarInfo:
    """The regular-file member a path refers to, following links inside the archive."""
    path = _safe_name(name, what)
    for _ in range(16):
        info = members.get(path)
        if info is None:
            raise ArchiveError(f"not a docker save archive: {what} '{name}' is not in the archive")
        if info.isfile():
            return info
        target = info.linkname
        if info.issym() and not target.startswith("/"):
            target = posixpath.join(posixpath.dirname(path), target)
        path = _safe_name(target, what)
    raise ArchiveError(f"not a docker save archive: {what} '{name}' is a link loop")


def _read_json(tar: tarfile.TarFile, info: tarfile.TarInfo, what: str) -> tuple[object, bytes]:
    if info.size > MAX_JSON_BYTES:
        raise ArchiveError(f"not a docker save archive: {what} is larger than 8 MiB")
    f = tar.extractfile(info)
    raw = f.read() if f is not None else b""
    try:
        return json.loads(raw), raw
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"not a docker save archive: {what} is not valid JSON") from exc


def _docker_save(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> DockerArchive:
    manifest, _ = _read_json(tar, members["manifest.json"], "manifest.json")
    if not isinstance(manifest, list) or not manifest:
        raise ArchiveError(
            "not a docker save archive: manifest.json must be a non-empty list of images"
        )
    if len(manifest) > 1:
        raise ArchiveError(
            f"the archive holds {len(manifest)} images; upload one image per archive "
            "(docker save <one image>)"
        )
    entry = manifest[0]
    if not isinstance(entry, dict):
        raise ArchiveError("not a docker save archive: manifest.json entries must be objects")
    config = entry.get("Config")
    layers = entry.get("Layers")
    tags = entry.get("RepoTags") or []
    if not isinstance(config, str):
        raise ArchiveError("not a docker save archive: manifest.json has no 'Config' path")
    if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
        raise ArchiveError("not a docker save archive: manifest.json 'Layers' must be a list")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ArchiveError("not a docker save archive: manifest.json 'RepoTags' must be a list")
    for layer in layers:
        _resolve(members, layer, "manifest.json layer")
    config_info = _resolve(members, config, "manifest.json config")
    parsed, raw = _read_json(tar, config_info, f"image config '{config}'")
    if not isinstance(parsed, dict):
        raise ArchiveError(f"not a docker save archive: image config '{config}' is not an object")
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    return DockerArchive("docker-save", tuple(tags), digest)


def _blob(members: dict[str, tarfile.TarInfo], digest: object, what: str) -> tarfile.TarInfo:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ArchiveError(f"not an OCI image layout: {what} has no valid sha256 digest")
    return _resolve(members, "blobs/sha256/" + digest.split(":", 1)[1], what)


def _oci_layout(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo]) -> DockerArchive:
    index, _ = _read_json(tar, members["index.json"], "index.json")
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests:
        raise ArchiveError("not an OCI image layout: index.json lists no manifests")
    digests = {m.get("digest") for m in manifests if isinstance(m, dict)}
    if len(digests) > 1:
        raise ArchiveError(f"the archive holds {len(digests)} images; upload one image per archive")
    desc = manifests[0]
    tags = []
    for m in manifests:
        notes = m.get("annotations") or {}
        ref = notes.get("io.containerd.image.name") or notes.get(
            "org.opencontainers.image.ref.name"
        )
        if isinstance(ref, str) and ref:
            tags.append(ref)
    manifest, _ = _read_json(tar, _blob(members, desc.get("digest"), "index.json"), "manifest")
    if not isinstance(manifest, dict):
        raise ArchiveError("not an OCI image layout: the image manifest is not an object")
    if "manifests" in manifest:
        raise ArchiveError(
            "not an OCI image layout of one image: the index points at a multi-platform list; "
            "save a single-platform image"
        )
    config = manifest.get("config")
    layers = manifest.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise ArchiveError("not an OCI image layout: the image manifest lacks config or layers")
    for layer in layers:
        _blob(members, layer.get("digest") if isinstance(layer, dict) else None, "layer")
    _blob(members, config.get("digest"), "image config")
    return DockerArchive("oci-layout", tuple(tags), config["digest"])


def inspect_archive(path: Path) -> DockerArchive:
    """Validate a `docker save` tarball (plain or compressed) and return what it holds."""
    try:
        tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 (closed below)
    except tarfile.TarError as exc:
        raise ArchiveError("not a docker save archive: the data is not a tar file") from exc
    try:
        with tar:
            members = _members(tar)
            if "manifest.json" in members:
                return _docker_save(tar, members)
            if "index.json" in members:
                return _oci_layout(tar, members)
    except tarfile.TarError as exc:
        raise ArchiveError(
            f"not a docker save archive: the data is not a (complete) tar file ({exc})"
        ) from exc
    except (EOFError, OSError) as exc:
        raise ArchiveError(f"not a docker save archive: the tar file is truncated ({exc})") from exc
    if not members:
        raise ArchiveError("not a docker save archive: the tar file is empty")
    raise ArchiveError("not a docker save archive: manifest.json missing")
