"""The server's files as a host directory (dockyard.compute.instance_files)."""

from __future__ import annotations

import os

import pytest

from dockyard.compute import instance_files

META = "/var/lib/dockyard/openstack/latest"
KEYS = "/root/.ssh/authorized_keys"
SID = "6f1c2e0a-1b2c-4d5e-8f90-0123456789ab"


def mode(path) -> int:
    return os.stat(path).st_mode & 0o777


def test_write_makes_a_fresh_directory_and_the_binds(tmp_path):
    files = {
        f"{META}/meta_data.json": (b"{}", 0o644),
        f"{META}/user_data": (b"x", 0o644),
        KEYS: (b"ssh-ed25519 AAA\n", 0o600),
    }
    old = os.umask(0o000)
    try:
        binds = instance_files.write(tmp_path, SID, files, dir_mounts=(META,))
    finally:
        os.umask(old)
    top = tmp_path.resolve() / "instances" / SID
    assert binds == [
        (str(top / "root/.ssh/authorized_keys"), KEYS),
        (str(top / "var/lib/dockyard/openstack/latest"), META),
    ]
    assert (mode(top.parent), mode(top), mode(top / "root/.ssh")) == (0o700, 0o700, 0o700)
    assert mode(top / "var/lib/dockyard/openstack/latest") == 0o755
    assert mode(top / "var/lib/dockyard/openstack/latest/user_data") == 0o644
    assert mode(top / "root/.ssh/authorized_keys") == 0o600
    assert (top / "root/.ssh/authorized_keys").read_bytes() == b"ssh-ed25519 AAA\n"
    assert instance_files.server_ids(tmp_path) == [SID]

    # written again (rebuild): exactly the new set, nothing left of the old one
    (top / "var/lib/dockyard/openstack/latest/stray").symlink_to("/etc/passwd")
    binds = instance_files.write(tmp_path, SID, {f"{META}/meta_data.json": (b"2", 0o644)}, (META,))
    assert binds == [(str(top / "var/lib/dockyard/openstack/latest"), META)]
    assert sorted(p.name for p in top.rglob("*") if p.is_file()) == ["meta_data.json"]

    assert instance_files.remove(tmp_path, SID) is True
    assert not top.exists() and instance_files.remove(tmp_path, SID) is False
    assert instance_files.server_ids(tmp_path) == []


@pytest.mark.parametrize("bad", ["", "..", "../x", "a/b", ".hidden"])
def test_only_plain_ids_name_a_directory(tmp_path, bad):
    with pytest.raises(ValueError):
        instance_files.server_dir(tmp_path, bad)
