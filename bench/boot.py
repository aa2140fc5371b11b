"""Benchmark: servers through the Compute API vs raw `docker run -d` of the same image.

1. create -> ACTIVE latency, one at a time (--rounds, default 10), against `docker run -d` of
   the same image with the same memory/CPU limits and network; the median ratio (goal <= 1.3).
2. --parallel (default 50) concurrent creates, wall time until all are ACTIVE, against the
   same number of parallel `docker run -d` (goal <= 1.3).
3. GET /servers/detail with --list-servers (default 1000) servers: p50 / p95 latency (goal
   p50 < 100 ms) and the dockyard process's RSS (goal < 300 MB). Those servers are created
   with the only compute host disabled, so they are rows (ERROR, no container): the listing
   cost is the API's, not Docker's. It is measured once their create operations have all
   failed (none is BUILD any more), so the workers failing them do not share the CPU.

    .venv/bin/python bench/boot.py [--rounds 10] [--parallel 50] [--list-servers 1000]
                                   [--database-url postgresql://...]
Needs a Docker engine and Debian's busybox-static, like the tests. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.compute import (  # noqa: E402
    HTTPD_TAG,
    MV,
    cleanup,
    httpd_archive,
    make_cloud,
    upload_image,
)
from tests.support.docker import TEST_LABEL  # noqa: E402

C = "/compute/v2.1"
FLAVOR = "bench"  # 64 MB, 1 vCPU: the same limits are given to the raw docker runs


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_active(http: httpx.Client, sid: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = http.get(f"{C}/servers/{sid}", headers=MV).json()["server"]
        if s["status"] == "ACTIVE":
            return
        if s["status"] == "ERROR":
            raise RuntimeError(f"server {sid} failed: {s.get('fault')}")
        time.sleep(0.02)
    raise RuntimeError(f"server {sid} not ACTIVE after {timeout}s")


def api_create(http: httpx.Client, image: str, net: str | None, prefix: str) -> str:
    networks = [{"uuid": net}] if net else "none"
    body = {
        "server": {
            "name": f"{prefix}-{uuid.uuid4().hex[:6]}",
            "imageRef": image,
            "flavorRef": FLAVOR,
            "networks": networks,
        }
    }
    r = http.post(f"{C}/servers", json=body, headers=MV)
    if r.status_code != 202:
        raise RuntimeError(f"create failed: {r.status_code} {r.text}")
    return r.json()["server"]["id"]


def api_boot(http: httpx.Client, image: str, net: str) -> tuple[str, float]:
    body = {
        "server": {
            "name": f"b-{uuid.uuid4().hex[:6]}",
            "imageRef": image,
            "flavorRef": FLAVOR,
            "networks": [{"uuid": net}] if net else "none",
        }
    }
    t0 = time.perf_counter()
    r = http.post(f"{C}/servers", json=body, headers=MV)
    if r.status_code != 202:
        raise RuntimeError(f"create failed: {r.status_code} {r.text}")
    sid = r.json()["server"]["id"]
    wait_active(http, sid)
    return sid, time.perf_counter() - t0


def docker_run(ref: str, network: str, label: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--init",
            "--memory",
            "64m",
            "--cpu-period",
            "100000",
            "--cpu-quota",
            "100000",
            "--network",
            network,
            "--label",
            f"{TEST_LABEL}=1",
            "--label",
            label,
            ref,
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def delete_all(http: httpx.Client, ids: list[str]) -> None:
    for sid in ids:
        http.delete(f"{C}/servers/{sid}")
    deadline = time.monotonic() + 300
    for sid in ids:
        while http.get(f"{C}/servers/{sid}").status_code != 404:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--parallel", type=int, default=50)
    ap.add_argument("--list-servers", type=int, default=1000)
    ap.add_argument("--database-url", default="")
    ap.add_argument("--log-level", default="WARNING", help="the server log is in its home")
    ap.add_argument("--no-network", action="store_true", help="boot without ports (both sides)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dockyard-bench-boot-"))
    cloud, run_id = make_cloud(work / "home", args.database_url)
    cloud.extra_env["DOCKYARD_COMPUTE_WORKERS"] = str(max(8, args.parallel))
    cloud.extra_env["DOCKYARD_LOG_LEVEL"] = args.log_level
    cloud.extra_env["DOCKYARD_RECONCILE_INTERVAL"] = "10"
    # room for --parallel servers of the bench flavor on a small machine (2 CPUs here)
    cloud.extra_env["DOCKYARD_CPU_ALLOCATION_RATIO"] = "64"
    raw_label = f"dockyard.bench.raw={run_id}"
    cloud.start()
    try:
        admin = cloud.client(cloud.token("admin"))
        demo = cloud.client(cloud.token("demo"))
        project = cloud.auth("demo").json()["token"]["project"]["id"]
        unlimited = {"instances": -1, "cores": -1, "ram": -1}
        admin.put(f"{C}/os-quota-sets/{project}", json={"quota_set": unlimited})
        image = upload_image(admin, "bench", httpd_archive(work), visibility="public")
        flavor = {"flavor": {"name": "bench", "id": FLAVOR, "ram": 64, "vcpus": 1, "disk": 0}}
        admin.post(f"{C}/flavors", json=flavor).raise_for_status()
        net = demo.get("/networking/v2.0/networks?name=private").json()["networks"][0]["id"]
        if args.no_network:
            net = None
        # raw runs get a bridge of their own (Docker's IPAM does not know dockyard's)
        docker_net = f"dockyard-bench-{run_id}"
        subprocess.run(
            [
                "docker",
                "network",
                "create",
                "--label",
                f"{TEST_LABEL}=1",
                "--label",
                raw_label,
                docker_net,
            ],
            check=True,
            capture_output=True,
        )
        if args.no_network:
            docker_net = "none"
        sid, first = api_boot(demo, image, net)  # loads the image onto the host once
        ref = f"dockyard/image-{image}:latest"
        delete_all(demo, [sid])
        print(f"first boot (includes docker load of the image): {first:.3f} s")

        # 1. sequential latency
        api, raw, made = [], [], []
        for _ in range(args.rounds):
            sid, t = api_boot(demo, image, net)
            made.append(sid)
            api.append(t)
            raw.append(docker_run(ref, docker_net, raw_label))
        delete_all(demo, made)
        subprocess.run(
            f"docker rm -f $(docker ps -aq --filter label={raw_label})",
            shell=True,
            capture_output=True,
        )
        ratio = statistics.median(api) / statistics.median(raw)
        print(
            f"create->ACTIVE median: API {statistics.median(api) * 1000:.0f} ms, "
            f"docker run -d {statistics.median(raw) * 1000:.0f} ms, ratio {ratio:.2f} "
            "(goal <= 1.3)"
        )

        # 2. parallel wall time
        n = args.parallel
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
            ids = list(pool.map(lambda _: api_create(demo, image, net, "par"), range(n)))
        # one poll of the list every 50 ms (not n clients hammering the API meanwhile)
        while True:
            listed = demo.get(f"{C}/servers/detail?name=^par-", headers=MV).json()["servers"]
            done = [x for x in listed if x["status"] in ("ACTIVE", "ERROR")]
            if len(done) == n:
                break
            time.sleep(0.05)
        api_wall = time.perf_counter() - t0
        errors = [x for x in listed if x["status"] == "ERROR"]
        if errors:
            print(f"  ({len(errors)} of {n} ended in ERROR: {errors[0].get('fault')})")
        delete_all(demo, ids)
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(lambda _: docker_run(ref, docker_net, raw_label), range(n)))
        raw_wall = time.perf_counter() - t0
        subprocess.run(
            f"docker rm -f $(docker ps -aq --filter label={raw_label})",
            shell=True,
            capture_output=True,
        )
        print(
            f"{n} parallel creates -> all ACTIVE: API {api_wall:.2f} s, "
            f"docker run -d {raw_wall:.2f} s, ratio {api_wall / raw_wall:.2f} (goal <= 1.3)"
        )

        # 3. listing with many servers (rows only: the host is disabled)
        svc = next(s for s in admin.get(f"{C}/os-services").json()["services"])
        admin.put(f"{C}/os-services/{svc['id']}", headers=MV, json={"status": "disabled"})
        body = {
            "server": {
                "name": "list",
                "imageRef": image,
                "flavorRef": FLAVOR,
                "networks": "none",
                "min_count": 1,
                "max_count": 100,
            }
        }
        for _ in range(args.list_servers // 100):
            demo.post(f"{C}/servers", json=body, headers=MV).raise_for_status()
        # measure once their create operations have failed (no valid host): the listing's
        # own cost, not that of the workers still failing a thousand boots meanwhile
        settle = time.perf_counter()
        while demo.get(f"{C}/servers?status=BUILD", headers=MV).json()["servers"]:
            time.sleep(0.2)
        settle = time.perf_counter() - settle
        time.sleep(1)
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            r = demo.get(f"{C}/servers/detail", headers=MV)
            times.append(time.perf_counter() - t0)
        count = len(r.json()["servers"])
        times.sort()
        print(
            f"GET /servers/detail with {count} servers: p50 {times[15] * 1000:.0f} ms, "
            f"p95 {times[28] * 1000:.0f} ms (goal p50 < 100 ms; measured after their "
            f"{args.list_servers} create operations failed, {settle:.1f} s)"
        )
        print(f"dockyard RSS: {rss_mb(cloud.proc.pid):.0f} MB (goal < 300 MB)")
        print(f"(raw runs used {ref}, the local copy of {HTTPD_TAG}; log: {cloud.log_path})")
    finally:
        cloud.stop()
        cleanup(run_id)
        subprocess.run(
            f"docker rm -f $(docker ps -aq --filter label={raw_label})",
            shell=True,
            capture_output=True,
        )
        subprocess.run(
            f"docker network rm $(docker network ls -q --filter label={raw_label})",
            shell=True,
            capture_output=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
