"""Docker helpers for tests: a reachable engine and locally built images (nothing is pulled).

Everything a test creates carries the label `dockyard.test=1` so it can be found and removed.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

TEST_LABEL = "dockyard.test"
BUSYBOX = Path("/bin/busybox")


def docker_client():
    """A docker-py client, or a skip/fail naming the missing engine."""
    import docker

    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        if os.environ.get("DOCKYARD_TEST_REQUIRE_DOCKER"):
            pytest.fail(f"a Docker engine is required but does not answer: {exc}")
        pytest.skip(f"needs a running Docker engine (scripts/test.sh starts one): {exc}")


def busybox_rootfs_tar(extra: dict[str, bytes] | None = None) -> bytes:
    """A rootfs tarball with /bin/busybox (Debian's busybox-static) and its applet links."""
    if not BUSYBOX.exists() or shutil.which("busybox") is None:
        pytest.fail("busybox-static is required for test images (scripts/test.sh installs it)")
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "tmp", "root", "var", "var/www", "proc", "sys", "dev"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
        files = {
            "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
            "etc/group": b"root:x:0:\n",
            "var/www/index.html": b"hello from dockyard\n",
        }
        files.update(extra or {})
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_busybox_image(tag: str, cmd: str = "httpd -f -p 80 -h /var/www") -> str:
    """`docker import` a busybox image tagged `tag` whose default command is `cmd`."""
    client = docker_client()
    changes = [
        f'CMD ["/bin/sh", "-c", "{cmd}"]',
        f"LABEL {TEST_LABEL}=1",
        "ENV PATH=/bin",
    ]
    args = ["docker", "import"]
    for change in changes:
        args += ["--change", change]
    args += ["-", tag]
    subprocess.run(args, input=busybox_rootfs_tar(), check=True, capture_output=True)
    return client.images.get(tag).id


def remove_test_objects() -> None:
    """Remove every container, network and volume labelled as a test object."""
    client = docker_client()
    for c in client.containers.list(all=True, filters={"label": TEST_LABEL}):
        c.remove(force=True)
    for n in client.networks.list(filters={"label": TEST_LABEL}):
        n.remove()
    for v in client.volumes.list(filters={"label": TEST_LABEL}):
        v.remove(force=True)
