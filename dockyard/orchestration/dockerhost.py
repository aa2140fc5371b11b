"""`dockyard image build docker-host`: an image whose container runs dockerd on TCP 2375.

Built from Debian packages (debootstrap --variant=minbase with docker.io and iptables), turned
into a Docker image by `docker import` of the directory streamed as a tar, then `docker save`d
straight into the image service (Glance API, as the admin of this dockyard, public) while
showing progress. The Docker work goes through `dockyard.docker.build` on the engine of
DOCKYARD_DOCKER_URL (the one `dockyard up` uses); the image is never whole in memory.
A server booted from it with the Docker-host flavor (compute's
`dockyard:host_profile=docker-host`) is a Docker host its project can target with
`docker_endpoint: tcp://<server ip>:2375`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import yaml

from dockyard.docker.build import image_size, import_rootfs_dir, save_stream
from dockyard.docker.client import connect, local_host

INIT_PATH = "usr/local/bin/docker-host-init"
INIT = """#!/bin/sh
# dockyard docker-host: dockerd on the unix socket and on TCP 2375 (plain HTTP: reachable
# only on the project's network, guarded by its security groups).
set -e
mkdir -p /var/run /var/lib/docker /run
update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null 2>&1 || true
update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null 2>&1 || true
rm -f /var/run/docker.pid /run/docker.pid
exec dockerd -H unix:///var/run/docker.sock -H tcp://0.0.0.0:2375 --tls=false "$@"
"""
PACKAGES = "docker.io,iptables,ca-certificates"


def _mirror_and_suite() -> tuple[str, str]:
    """The Debian mirror and suite this machine's apt uses (deb.debian.org/bookworm if unsure)."""
    mirror, suite = "http://deb.debian.org/debian", "bookworm"
    os_release = Path("/etc/os-release")
    if os_release.exists():
        m = re.search(r"^VERSION_CODENAME=(\w+)", os_release.read_text(), re.M)
        if m:
            suite = m.group(1)
    for src in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        m = re.search(r"^URIs:\s*(\S+/debian)\s*$", src.read_text(), re.M)
        if m:
            return m.group(1), suite
    lst = Path("/etc/apt/sources.list")
    if lst.exists():
        m = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s", lst.read_text(), re.M)
        if m:
            mirror = m.group(1)
    return mirror, suite


def say(msg: str) -> None:
    print(msg, flush=True)


def debootstrap(target: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise SystemExit("debootstrap is needed: apt-get install -y debootstrap")
    mirror, suite = _mirror_and_suite()
    say(f"[1/3] debootstrap {suite} from {mirror} with {PACKAGES} (about 90 s) ...")
    start = time.monotonic()
    proc = subprocess.Popen(
        ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", suite, str(target), mirror],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(("I: Retrieving", "I: Unpacking", "I: Configuring", "I: Base")):
            print(f"      {time.monotonic() - start:5.0f} s  {line.strip()[3:]}", flush=True)
    if proc.wait() != 0:
        raise SystemExit(f"debootstrap failed (exit {proc.returncode})")


JUNK = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
        "usr/share/info", "usr/share/locale")  # fmt: skip


def _junk(name: str) -> bool:
    """What the image leaves out of the root filesystem: the contents of the JUNK dirs."""
    return any(name.startswith(f"{junk}/") for junk in JUNK)


def import_rootfs(client, rootfs: Path, tag: str, labels: dict[str, str]) -> None:
    """Import the directory (read only: trimmed and given the init script on the way) as
    `tag`, with the labels."""
    say(f"[2/3] docker import as {tag} ...")
    changes = [f'CMD ["/{INIT_PATH}"]', "EXPOSE 2375", "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
    changes += [f"LABEL {k}={v}" for k, v in labels.items()]
    try:
        # a tar of the directory, streamed; device nodes go in as such, never read
        import_rootfs_dir(
            client, rootfs, tag, changes, skip=_junk, files={INIT_PATH: (INIT.encode(), 0o755)}
        )
    except Exception as exc:  # noqa: BLE001 - the engine's reason, said once, without a trace
        raise SystemExit(f"docker import failed: {exc}") from exc


def _auth(home: Path, cloud: str) -> tuple[str, dict[str, str]]:
    """(token, public endpoint by service type) for the cloud entry of this dockyard's
    clouds.yaml."""
    path = Path(os.environ.get("OS_CLIENT_CONFIG_FILE") or home / "clouds.yaml")
    auth = (yaml.safe_load(path.read_text()) or {})["clouds"][cloud]["auth"]
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": auth["username"],
                        "domain": {"name": auth.get("user_domain_name", "Default")},
                        "password": auth["password"],
                    }
                },
            },
            "scope": {
                "project": {
                    "name": auth["project_name"],
                    "domain": {"name": auth.get("project_domain_name", "Default")},
                }
            },
        }
    }
    r = httpx.post(auth["auth_url"].rstrip("/") + "/auth/tokens", json=body, timeout=30)
    r.raise_for_status()
    token = r.headers["X-Subject-Token"]
    data = r.json()["token"]
    endpoints = {
        svc["type"]: next(e["url"] for e in svc["endpoints"] if e["interface"] == "public")
        for svc in data["catalog"]
    }
    if "image" not in endpoints:
        raise SystemExit("the catalog has no image service")
    return token, {k: v.rstrip("/") for k, v in endpoints.items()}


def ensure_flavor(home: Path, cloud: str, name: str) -> None:
    """The Docker-host flavor (admin-only extra spec dockyard:host_profile=docker-host), made
    if missing, so the image boots as a Docker host right away."""
    token, endpoints = _auth(home, cloud)
    if "compute" not in endpoints:
        return
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.55"}
    with httpx.Client(base_url=endpoints["compute"], headers=headers, timeout=60) as http:
        if http.get(f"/flavors/{name}").status_code == 200:
            say(f"flavor {name} exists; boot with --flavor {name}")
            return
        body = {"flavor": {"name": name, "id": name, "ram": 1024, "vcpus": 1, "disk": 0,
                           "description": "Docker-host servers (dockerd on TCP 2375)"}}  # fmt: skip
        r = http.post("/flavors", json=body)
        if r.status_code == 409:
            say(f"a flavor named {name} exists; boot with --flavor {name}")
            return
        if r.status_code >= 400:
            say(f"could not make flavor {name} ({r.status_code}): an admin can make it with")
            say(f"  openstack flavor create --ram 1024 --vcpus 1 --property "
                f"dockyard:host_profile=docker-host {name}")  # fmt: skip
            return
        spec = {"extra_specs": {"dockyard:host_profile": "docker-host"}}
        r = http.post(f"/flavors/{name}/os-extra_specs", json=spec)
        if r.status_code >= 400:
            http.delete(f"/flavors/{name}")
            raise SystemExit(f"flavor {name}: extra spec refused: {r.status_code} {r.text}")
    say(f"flavor {name} made (1024 MB, 1 vCPU, dockyard:host_profile=docker-host)")


def _with_progress(chunks: Iterable[bytes], total: int) -> Iterator[bytes]:
    sent, last = 0, 0.0
    for chunk in chunks:
        sent += len(chunk)
        now = time.monotonic()
        if now - last > 0.5:
            pct = f"{min(99, sent * 100 // max(total, 1))}%" if total else ""
            print(f"      uploaded {sent / 2**20:7.1f} MiB {pct}", flush=True)
            last = now
        yield chunk
    print(f"      uploaded {sent / 2**20:7.1f} MiB 100%", flush=True)


def upload(client, tag: str, name: str, home: Path, cloud: str, visibility: str) -> str:
    token, endpoints = _auth(home, cloud)
    base = endpoints["image"]
    size = image_size(client, tag)
    say(f"[3/3] docker save {tag} | upload to the image service as {name!r} ({visibility}) ...")
    headers = {"X-Auth-Token": token}
    with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
        r = http.post(
            "/v2/images",
            json={
                "name": name,
                "container_format": "docker",
                "disk_format": "raw",
                "visibility": visibility,
                "tags": ["docker-host"],
            },
        )
        if r.status_code >= 400:
            raise SystemExit(f"image create refused: {r.status_code} {r.text}")
        image_id = r.json()["id"]
        r = http.put(
            f"/v2/images/{image_id}/file",
            content=_with_progress(save_stream(client, tag), size),
            headers={"Content-Type": "application/octet-stream"},
        )
        if r.status_code >= 400:
            raise SystemExit(f"upload refused: {r.status_code} {r.text}")
        status = http.get(f"/v2/images/{image_id}").json()["status"]
    say(f"image {name} ({image_id}) is {status}; boot it with the Docker-host flavor, then use")
    say("  docker_endpoint: tcp://<server ip>:2375   (or docker -H tcp://<server ip>:2375 ps)")
    return image_id


def build(args: argparse.Namespace) -> int:
    from dockyard.config import load_settings

    settings = load_settings()
    tag = args.tag or f"dockyard/{args.name}:latest"
    labels = dict(
        item.split("=", 1) for item in (settings.container_labels or "").split(",") if "=" in item
    )
    client = connect(local_host(settings), timeout=600)
    try:
        if args.rootfs:
            say(f"[1/3] using the root filesystem in {args.rootfs}")
            import_rootfs(client, Path(args.rootfs), tag, labels)
        else:
            with tempfile.TemporaryDirectory(prefix="dockyard-docker-host-") as tmp:
                rootfs = Path(tmp) / "rootfs"
                debootstrap(rootfs)
                import_rootfs(client, rootfs, tag, labels)
        upload(client, tag, args.name, settings.home, args.cloud, args.visibility)
        if args.flavor:
            ensure_flavor(settings.home, args.cloud, args.flavor)
    finally:
        client.close()
    return 0


def add_cli(sub) -> None:
    """`dockyard image build docker-host [--name docker-host]`."""
    image = sub.add_parser("image", help="build images for this cloud")
    isub = image.add_subparsers(dest="image_command", required=True)
    b = isub.add_parser("build", help="build an image and upload it to the image service")
    b.add_argument("kind", choices=["docker-host"], help="what to build")
    b.add_argument("--name", default="docker-host", help="image name (default docker-host)")
    b.add_argument("--tag", default=None, help="local Docker tag (default dockyard/<name>)")
    b.add_argument("--cloud", default="dockyard-admin", help="clouds.yaml entry to upload as")
    b.add_argument("--visibility", default="public", choices=["public", "private", "shared"])
    b.add_argument("--flavor", default="docker-host",
                   help="Docker-host flavor to make if missing ('' for none)")  # fmt: skip
    b.add_argument("--rootfs", default=None, help=argparse.SUPPRESS)  # tests: skip debootstrap
    b.set_defaults(func=build)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="dockerhost")
    add_cli(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args()
    sys.exit(ns.func(ns))
