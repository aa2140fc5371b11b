"""The streamed tar of a root filesystem directory (dockyard.docker.build.tar_stream)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from dockyard.docker.build import tar_stream


def _rootfs(root: Path) -> None:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\n" + b"x" * 5000)
    (root / "bin" / "tool").chmod(0o755)
    os.link(root / "bin" / "tool", root / "bin" / "tool2")
    (root / "bin" / "sh").symlink_to("tool")
    (root / "etc").mkdir()
    (root / "etc" / "empty").write_bytes(b"")
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    (root / "lib").symlink_to("/nonexistent")  # links are stored, never followed


def test_tar_of_a_directory_in_small_chunks(tmp_path):
    _rootfs(tmp_path)
    chunks = list(tar_stream(tmp_path, chunk_size=1024))
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == [
            "bin", "bin/sh", "bin/tool", "bin/tool2", "etc", "etc/empty", "lib", "tmp"
        ]  # fmt: skip
        assert members["bin"].isdir() and members["bin/tool"].mode == 0o755
        assert tar.extractfile("bin/tool").read() == b"#!/bin/sh\n" + b"x" * 5000
        assert members["bin/tool2"].islnk() and members["bin/tool2"].linkname == "bin/tool"
        assert members["bin/sh"].issym() and members["bin/sh"].linkname == "tool"
        assert members["lib"].issym() and members["lib"].linkname == "/nonexistent"
        assert members["tmp"].mode == 0o1777
        assert all(m.uname == "" and m.gname == "" for m in members.values())  # numeric owners


def test_file_data_never_comes_in_chunks_larger_than_asked(tmp_path):
    (tmp_path / "big").write_bytes(os.urandom(300_000))
    sizes = [len(c) for c in tar_stream(tmp_path, chunk_size=64 * 1024)]
    assert max(sizes) <= 64 * 1024
    assert sum(sizes) % 512 == 0
