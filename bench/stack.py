"""Benchmark: Heat stacks of DockerInc::Docker::Container vs docker-compose / docker run.

1. A stack of --count (default 50) independent containers, create -> CREATE_COMPLETE, against
   `docker-compose up -d` of the equivalent compose file (same image, command, one network);
   goal ratio <= 1.0.
2. A chain of --chain (default 10) containers each depending on the previous one, against 10
   sequential `docker run -d` on a user network at fixed IPs (what the stack's containers get).

    .venv/bin/python bench/stack.py [--count 50] [--chain 10] [--rounds 1]
Needs a Docker engine, Debian's busybox-static and docker-compose (apt install
docker-compose, 1.29). The stack runs as the demo user: its containers get fixed IPs on the
project's network, as the compose ones get addresses on the compose network. Prints ratios;
asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.cloud import Cloud, new_cloud, unique_cidr  # noqa: E402
from tests.support.docker import TEST_LABEL, build_busybox_image  # noqa: E402

IMAGE = "dockyard-bench-busybox"
CMD = ["sh", "-c", "sleep 3600"]


def project_client(cloud: Cloud) -> httpx.Client:
    token = cloud.token("demo")
    r = httpx.get(
        cloud.url + "/identity/v3/auth/tokens",
        headers={"X-Auth-Token": token, "X-Subject-Token": token},
    )
    project = r.json()["token"]["project"]["id"]
    return httpx.Client(
        base_url=f"{cloud.url}/orchestration/v1/{project}",
        headers={"X-Auth-Token": token},
        timeout=120,
    )


def run_stack(http: httpx.Client, name: str, resources: dict) -> float:
    tpl = {"heat_template_version": "2015-10-15", "resources": resources}
    start = time.monotonic()
    r = http.post("/stacks", json={"stack_name": name, "template": tpl})
    r.raise_for_status()
    url = f"/stacks/{name}/{r.json()['stack']['id']}"
    while True:
        st = http.get(url, params={"resolve_outputs": "false"}).json()["stack"]
        if st["stack_status"] == "CREATE_COMPLETE":
            took = time.monotonic() - start
            break
        if not st["stack_status"].endswith("IN_PROGRESS"):
            raise RuntimeError(f"{name}: {st['stack_status']} {st['stack_status_reason']}")
        time.sleep(0.1)  # well under 1% of a create; faster polling loads the machine measured
    http.delete(url)
    while http.get(url).json()["stack"]["stack_status"] == "DELETE_IN_PROGRESS":
        time.sleep(0.1)
    return took


def container(**extra) -> dict:
    return {"type": "DockerInc::Docker::Container", "properties": {"image": IMAGE, "cmd": CMD},
            **extra}  # fmt: skip


def compose_up(count: int, workdir: Path) -> float:
    project = f"bench{uuid.uuid4().hex[:8]}"
    doc = {
        "version": "2.4",
        "services": {
            f"c{i}": {"image": IMAGE, "command": CMD, "labels": {TEST_LABEL: "1"}}
            for i in range(count)
        },
    }
    path = workdir / f"{project}.yml"
    path.write_text(yaml.safe_dump(doc))
    base = ["docker-compose", "-f", str(path), "-p", project]
    start = time.monotonic()
    subprocess.run([*base, "up", "-d"], check=True, capture_output=True)
    took = time.monotonic() - start
    subprocess.run([*base, "down", "-t", "0"], check=True, capture_output=True)
    return took


def sequential_runs(count: int) -> float:
    """`docker run -d` one after the other on a network of their own at fixed IPs (as the
    stack's containers get ports with fixed IPs on the project network)."""
    cidr = unique_cidr()
    prefix = cidr.rsplit(".", 1)[0]
    net = f"bench-seq-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["docker", "network", "create", "--label", f"{TEST_LABEL}=1", "--subnet", cidr, net],
        check=True,
        capture_output=True,
    )
    names = [f"bench-seq-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    start = time.monotonic()
    for i, n in enumerate(names):
        subprocess.run(
            ["docker", "run", "-d", "--name", n, "--label", f"{TEST_LABEL}=1", "--network", net,
             "--ip", f"{prefix}.{10 + i}", IMAGE, *CMD],
            check=True,
            capture_output=True,
        )  # fmt: skip
    took = time.monotonic() - start
    subprocess.run(["docker", "rm", "-f", *names], check=True, capture_output=True)
    subprocess.run(["docker", "network", "rm", net], check=True, capture_output=True)
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--chain", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    if not shutil.which("docker-compose"):
        print("docker-compose is needed (apt install docker-compose)")
        return 2
    build_busybox_image(IMAGE, "sleep 3600")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cloud = new_cloud(
            work / "home",
            docker=True,
            env={
                "DOCKYARD_LOG_LEVEL": "WARNING",
                "DOCKYARD_HEAT_MAX_PARALLEL": str(max(16, args.count)),
            },
        )
        cloud.start()
        try:
            http = project_client(cloud)
            for rnd in range(args.rounds):
                wide = {f"c{i}": container() for i in range(args.count)}
                t_stack = run_stack(http, f"bench-wide-{rnd}", wide)
                t_compose = compose_up(args.count, work)
                print(
                    f"{args.count} independent containers: stack {t_stack:.2f} s, "
                    f"docker-compose up -d {t_compose:.2f} s, ratio {t_stack / t_compose:.2f} "
                    "(goal <= 1.0)"
                )
                chain = {
                    f"c{i}": container(**({"depends_on": f"c{i - 1}"} if i else {}))
                    for i in range(args.chain)
                }
                t_chain = run_stack(http, f"bench-chain-{rnd}", chain)
                t_seq = sequential_runs(args.chain)
                print(
                    f"{args.chain} chained containers: stack {t_chain:.2f} s, "
                    f"{args.chain} sequential docker run -d {t_seq:.2f} s, "
                    f"ratio {t_chain / t_seq:.2f}"
                )
        finally:
            cloud.stop()
            cloud.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
