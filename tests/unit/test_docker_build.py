"""The streamed tar of a root filesystem directory (dockyard.docker.build.tar_stream)."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

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


def test_skipped_names_and_added_files(tmp_path):
    _rootfs(tmp_path)
    (tmp_path / "etc" / "init").write_bytes(b"old")
    (tmp_path / "usr" / "share" / "doc" / "pkg").mkdir(parents=True)
    (tmp_path / "usr" / "share" / "doc" / "pkg" / "README").write_bytes(b"docs")
    added = {"etc/init": (b"#!/bin/sh\n", 0o755), "opt/local/bin/start": (b"go\n", 0o700)}
    data = b"".join(
        tar_stream(tmp_path, skip=lambda n: n.startswith("usr/share/doc/"), files=added)
    )
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert "usr/share/doc" in members and "usr/share/doc/pkg" not in members
        assert not any(n.startswith("usr/share/doc/") for n in members)
        assert [m.name for m in tar.getmembers()].count("etc/init") == 1
        assert tar.extractfile("etc/init").read() == b"#!/bin/sh\n"
        assert members["etc/init"].mode == 0o755
        for d in ("opt", "opt/local", "opt/local/bin"):  # parents made for an added file
            assert members[d].isdir() and members[d].mode == 0o755
        assert tar.extractfile("opt/local/bin/start").read() == b"go\n"
    assert (tmp_path / "etc" / "init").read_bytes() == b"old"  # the directory is not changed


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_device_nodes_go_in_as_such_and_are_never_read(tmp_path):
    # a debootstrap root filesystem holds /dev/zero, /dev/console, ...: reading them would
    # never end (or block)
    (tmp_path / "dev").mkdir()
    os.mknod(tmp_path / "dev" / "zero", 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    os.mknod(tmp_path / "dev" / "console", 0o600 | stat.S_IFCHR, os.makedev(5, 1))
    with tarfile.open(fileobj=io.BytesIO(b"".join(tar_stream(tmp_path)))) as tar:
        zero, console = tar.getmember("dev/zero"), tar.getmember("dev/console")
    assert zero.ischr() and (zero.devmajor, zero.devminor) == (1, 5) and zero.size == 0
    assert console.ischr() and (console.devmajor, console.devminor) == (5, 1)
