"""The demo image a new cloud starts with: busybox httpd serving a welcome page.

Built locally from Debian's busybox-static (nothing is pulled), so that right after
`dockyard up` a user can `openstack server create --image demo --flavor m1.tiny ...`.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tarfile
from pathlib import Path

from sqlalchemy import select

from dockyard.docker.build import import_rootfs, remove_tag, save_stream
from dockyard.docker.client import connect, local_host
from dockyard.identity.service import system_context
from dockyard.image.models import Image
from dockyard.image.uploads import create_image_from_stream
from dockyard.runtime import Runtime

log = logging.getLogger("dockyard.image.demo")

DEMO_NAME = "demo"
BUILD_TAG = "dockyard/demo-build:latest"
WELCOME = b"""<!DOCTYPE html>
<html><head><title>Welcome to dockyard!</title></head>
<body><h1>Welcome to dockyard!</h1>
<p>This server is a Docker container booted through the OpenStack Compute API.</p>
</body></html>
"""
CHANGES = [
    'CMD ["/bin/httpd", "-f", "-p", "80", "-h", "/var/www"]',
    "EXPOSE 80",
    "ENV PATH=/bin",
]


def static_busybox() -> Path | None:
    """Debian's busybox-static binary, or None (a dynamic busybox cannot run in a bare rootfs)."""
    for candidate in ("/bin/busybox", shutil.which("busybox")):
        if not candidate or not Path(candidate).exists():
            continue
        ldd = subprocess.run(["ldd", candidate], capture_output=True, text=True)
        if "not a dynamic executable" in ldd.stdout + ldd.stderr:
            return Path(candidate)
    return None


def busybox_rootfs(busybox: Path, applets: list[str], files: dict[str, bytes]) -> bytes:
    """A root filesystem tarball: busybox, a symlink per applet, and the given files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = {"bin", "etc", "tmp", "root", "var", "proc", "sys", "dev"}
        dirs |= {str(Path(name).parent) for name in files}
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for applet in applets:
            if applet != "busybox" and "/" not in applet:
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type = tarfile.SYMTYPE
                link.linkname = "busybox"
                tar.addfile(link)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ensure_demo_image(runtime: Runtime) -> str | None:
    """The id of the public `demo` image, built and uploaded if the cloud has none.

    Returns None (and logs why) when it cannot be built now: a later start tries again.
    """
    settings = runtime.settings
    with runtime.db.session() as session:
        ctx = system_context(session)
        found = session.scalar(
            select(Image.id).where(
                Image.name == DEMO_NAME, Image.owner == ctx.project_id, Image.status == "active"
            )
        )
    if found:
        return found
    busybox = static_busybox()
    if busybox is None:
        log.warning("no demo image: install Debian's busybox-static to have one built")
        return None
    try:
        client = connect(local_host(settings), timeout=60)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine now"
        log.warning("no demo image: the Docker engine does not answer (%s)", exc)
        return None
    applets = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    files = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
        "etc/group": b"root:x:0:\n",
        "var/www/index.html": WELCOME,
    }
    try:
        import_rootfs(client, busybox_rootfs(busybox, applets, files), BUILD_TAG, CHANGES)
        image_id = create_image_from_stream(
            runtime,
            ctx,
            DEMO_NAME,
            save_stream(client, BUILD_TAG),
            {"visibility": "public", "description": "busybox httpd serving a welcome page"},
        )
    finally:
        remove_tag(client, BUILD_TAG)
        client.close()
    log.info("demo image %s uploaded", image_id)
    return image_id
