"""Benchmark: image data through the Image API and onto a Docker host.

1. Upload and download of a --size-mb (default 1024) `docker save` archive through the API
   (curl as the client), as throughput ratios to a plain local copy of the same file in the
   same run, and the server's peak RSS growth during the upload (the goal is < 50 MB).
2. Delivery of that image to the local Docker host with dockyard.docker.images.ensure_image
   (streamed `docker load` from the blob store, manifest retagged on the fly), as a ratio to a
   raw `docker load -i` of the same tarball.

    .venv/bin/python bench/image_upload.py [--size-mb 1024] [--database-url postgresql://...]
Needs a Docker engine and Debian's busybox-static, like the tests. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dockyard.docker.images import ensure_image, local_ref  # noqa: E402
from dockyard.image.boot import BootImage  # noqa: E402
from tests.support.cloud import new_cloud  # noqa: E402
from tests.support.docker import TEST_LABEL, docker_client  # noqa: E402

MiB = 1024 * 1024


def make_archive(workdir: Path, size_mb: int) -> tuple[Path, str]:
    """A `docker save` tarball of a busybox image carrying size_mb of random data."""
    root = workdir / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    with open(root / "data.bin", "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(MiB))
    tag = f"dockyard-bench/image-{uuid.uuid4().hex[:8]}:1"
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(
        ["docker", "import", "--change", f"LABEL {TEST_LABEL}=1", "-", tag],
        stdin=tar.stdout,
        check=True,
        capture_output=True,
    )
    tar.wait()
    shutil.rmtree(root)
    archive = workdir / "image.tar"
    subprocess.run(["docker", "save", "-o", str(archive), tag], check=True)
    subprocess.run(["docker", "rmi", tag], check=True, capture_output=True)
    return archive, tag


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class PeakRss(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, rss_kb(pid), True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.02)


def curl(*args: str, output: str = "/dev/null") -> str:
    """Run curl quietly; returns the HTTP status."""
    out = subprocess.run(
        ["curl", "-s", "-o", output, "-w", "%{http_code}", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def timed(fn):
    start = time.monotonic()
    result = fn()
    return time.monotonic() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    engine = docker_client()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"building a {args.size_mb} MiB docker save archive ...", flush=True)
        archive, _ = make_archive(work, args.size_mb)
        size = archive.stat().st_size

        def copy() -> None:  # durable, like an upload (which fsyncs before it is active)
            shutil.copyfile(archive, work / "copy.tar")
            with open(work / "copy.tar", "rb+") as f:
                os.fsync(f.fileno())

        t_copy, _ = timed(copy)
        (work / "copy.tar").unlink()

        cloud = new_cloud(work / "home", args.database_url)
        cloud.start()
        image_id = None
        try:
            client = cloud.client(cloud.token("admin"))
            r = client.post(
                "/image/v2/images",
                json={"name": "bench", "container_format": "docker", "disk_format": "raw"},
            )
            image_id = r.json()["id"]
            base_rss = rss_kb(cloud.proc.pid)
            sampler = PeakRss(cloud.proc.pid)
            sampler.start()

            token = client.headers["X-Auth-Token"]
            file_url = f"{cloud.url}/image/v2/images/{image_id}/file"

            def put() -> str:
                # curl as the client: it is not the bottleneck (httpx would be)
                return curl(
                    "-T",
                    str(archive),
                    "-H",
                    "Content-Type: application/octet-stream",
                    "-H",
                    f"X-Auth-Token: {token}",
                    file_url,
                )

            t_up, status = timed(put)
            sampler.running = False
            sampler.join()
            if status != "204":
                print(f"upload failed: HTTP {status}")
                return 1
            shown = client.get(f"/image/v2/images/{image_id}").json()

            down = work / "down.tar"

            def get() -> str:
                return curl("-H", f"X-Auth-Token: {token}", file_url, output=str(down))

            t_down, status = timed(get)
            assert status == "200" and down.stat().st_size == size
            down.unlink()

            digest = shown["docker_config_digest"]
            t_raw, _ = timed(
                lambda: subprocess.run(
                    ["docker", "load", "-i", str(archive)], check=True, capture_output=True
                )
            )
            subprocess.run(["docker", "rmi", "-f", digest], check=True, capture_output=True)
            boot = BootImage(
                id=image_id,
                name="bench",
                owner=shown["owner"],
                container_format="docker",
                disk_format="raw",
                min_ram=0,
                min_disk=0,
                blob_path=cloud.home / "blobs" / image_id,
                registry_ref=None,
                properties={"docker_config_digest": digest},
            )
            t_deliver, ref = timed(lambda: ensure_image(engine, boot))
            assert ref == local_ref(image_id)
        finally:
            if image_id:
                subprocess.run(
                    ["docker", "rmi", "-f", local_ref(image_id)], capture_output=True, check=False
                )
            cloud.stop()

    mb = size / MiB
    print(f"archive: {mb:.0f} MiB")
    print(f"local copy + fsync    {t_copy:7.2f} s  {mb / t_copy:8.1f} MiB/s")
    print(
        f"API upload            {t_up:7.2f} s  {mb / t_up:8.1f} MiB/s"
        f"  ratio to copy {t_up / t_copy:5.2f}x"
    )
    print(
        f"API download          {t_down:7.2f} s  {mb / t_down:8.1f} MiB/s"
        f"  ratio to copy {t_down / t_copy:5.2f}x"
    )
    print(f"server peak RSS growth during upload: {(sampler.peak - base_rss) / 1024:.1f} MB")
    print(
        f"raw docker load       {t_raw:7.2f} s\n"
        f"ensure_image (load)   {t_deliver:7.2f} s  ratio to raw docker load "
        f"{t_deliver / t_raw:5.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
