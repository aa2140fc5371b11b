"""A server's files (meta_data.json, user_data, authorized_keys) as a host directory.

On a compute host whose engine shares dockyard's file system (the local engine, a unix://
socket), the files are written under `<home>/instances/<server id>/`, mirroring their paths
in the container, and bind-mounted read-only into it when it is created: a "config drive".
That spares the `put_archive` per boot, which Docker 20.10 serves by re-executing dockerd.

The directory belongs to dockyard alone: `instances/` and every server directory are 0700
(only dockyard, and dockerd as root, get in), the mounted metadata directory is 0755 with
0644 files, authorized_keys is 0600 and owned by dockyard's user (root). Files are created
with O_EXCL | O_NOFOLLOW in a directory made afresh, so nothing found there is followed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

# server ids are uuids; anything that is one safe path component is accepted
_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,63}$")


def root(home: Path) -> Path:
    """`<home>/instances` (made 0700 when missing)."""
    base = Path(home).resolve() / "instances"
    if not base.is_dir():
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(base, 0o700)
    return base


def server_dir(home: Path, server_id: str) -> Path:
    if not _ID.match(server_id):
        raise ValueError(f"not a server id: {server_id!r}")
    return root(home) / server_id


def write(
    home: Path,
    server_id: str,
    files: dict[str, tuple[bytes, int]],
    dir_mounts: tuple[str, ...],
) -> list[tuple[str, str]]:
    """Write `files` (container path -> (data, mode)) into a fresh server directory and return
    the read-only binds (host path, container path): one per directory of `dir_mounts` that
    holds files, and one single-file bind for every other file."""
    top = server_dir(home, server_id)
    remove(home, server_id)
    os.mkdir(top, 0o700)
    os.chmod(top, 0o700)
    binds: dict[str, str] = {}
    for path in sorted(files):
        data, mode = files[path]
        mounted = next((d for d in dir_mounts if path.startswith(d.rstrip("/") + "/")), None)
        host = top / path.lstrip("/")
        parent = host.parent
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if mounted is not None:
            os.chmod(top / mounted.lstrip("/"), 0o755)
            binds[str(top / mounted.lstrip("/"))] = mounted
        else:
            binds[str(host)] = path
        fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    return sorted(binds.items(), key=lambda b: b[1])


def remove(home: Path, server_id: str) -> bool:
    """Remove the server's directory; False when there was none."""
    top = server_dir(home, server_id)
    if not top.exists() and not top.is_symlink():
        return False
    if top.is_symlink() or not top.is_dir():
        top.unlink()
    else:
        shutil.rmtree(top)
    return True


def server_ids(home: Path) -> list[str]:
    """The server ids that have a directory (what the reconciler checks for orphans)."""
    with contextlib.suppress(FileNotFoundError):
        return sorted(p.name for p in root(home).iterdir() if _ID.match(p.name))
    return []
