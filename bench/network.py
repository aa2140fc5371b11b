"""Benchmark: security-group rule latency with many ports, and IPAM throughput.

1. With --ports ports (default 200) on one network, time from `POST security-group-rules`
   answering until the rule is in the kernel (iptables-save shows it), over --changes rule
   changes; printed next to the time one raw `iptables-restore` of the same ruleset takes.
2. Port creations (each allocating a fixed IP) per second under --concurrency clients
   (default 8), with a duplicate check over every address handed out; printed as a ratio to
   a trivial endpoint of the same server.

    .venv/bin/python bench/network.py [--ports 200] [--changes 10] [--concurrency 8]
                                      [--database-url postgresql://...]
Needs root (iptables) and a Docker engine, like the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.cloud import new_cloud  # noqa: E402
from tests.support.network import instance_of  # noqa: E402

N = "/networking/v2.0"


def iptables_save() -> str:
    return subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True).stdout


async def make_ports(client: httpx.AsyncClient, base: str, net_id: str, count: int, conc: int):
    ips: list[str] = []
    sem = asyncio.Semaphore(conc)

    async def one() -> None:
        async with sem:
            r = await client.post(f"{base}{N}/ports", json={"port": {"network_id": net_id}})
            if r.status_code != 201:
                raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
            ips.append(r.json()["port"]["fixed_ips"][0]["ip_address"])

    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(count)))
    return ips, time.monotonic() - start


async def trivial_rate(client: httpx.AsyncClient, base: str, count: int, conc: int) -> float:
    sem = asyncio.Semaphore(conc)

    async def one() -> None:
        async with sem:
            r = await client.get(f"{base}{N}/extensions")
            r.raise_for_status()

    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(count)))
    return count / (time.monotonic() - start)


async def main(args) -> None:
    from dockyard.network.common import chain_prefix
    from dockyard.network.firewall import IptablesApplier, Ruleset

    with tempfile.TemporaryDirectory() as tmp:
        cloud = new_cloud(
            Path(tmp) / "home",
            args.database_url,
            docker=True,
            env={"DOCKYARD_LOG_LEVEL": "WARNING"},
        )
        cloud.start()
        instance = instance_of(cloud)
        try:
            token = cloud.token("demo")
            async with httpx.AsyncClient(timeout=60, headers={"X-Auth-Token": token}) as c:
                base = cloud.url
                r = await c.post(f"{base}{N}/networks", json={"network": {"name": "bench"}})
                net = r.json()["network"]
                r = await c.post(
                    f"{base}{N}/subnets",
                    json={"subnet": {"network_id": net["id"], "cidr": "10.244.0.0/20"}},
                )
                r.raise_for_status()
                # IPAM throughput
                ips, took = await make_ports(c, base, net["id"], args.ports, args.concurrency)
                dupes = len(ips) - len(set(ips))
                trivial = await trivial_rate(c, base, args.ports, args.concurrency)
                rate = len(ips) / took
                print(
                    f"port create (fixed IP allocation): {rate:8.1f}/s with {args.concurrency} "
                    f"clients, duplicates: {dupes}; trivial endpoint {trivial:8.1f}/s; "
                    f"ratio {rate / trivial:.2f}"
                )
                # rule latency with that many ports
                groups = await c.get(f"{base}{N}/security-groups?name=default")
                gid = groups.json()["security_groups"][0]["id"]
                latencies = []
                for i in range(args.changes):
                    port = 20000 + i
                    rule = {
                        "security_group_id": gid,
                        "direction": "ingress",
                        "protocol": "tcp",
                        "port_range_min": port,
                        "port_range_max": port,
                    }
                    r = await c.post(
                        f"{base}{N}/security-group-rules", json={"security_group_rule": rule}
                    )
                    r.raise_for_status()
                    start = time.monotonic()
                    while f"--dport {port} " not in iptables_save():
                        if time.monotonic() - start > 30:
                            raise RuntimeError("rule never reached the kernel")
                        await asyncio.sleep(0.01)
                    latencies.append(time.monotonic() - start)
            prefix = chain_prefix(instance)
            saved = iptables_save()
            chains = {
                line.split()[1]: []
                for line in saved.splitlines()
                if line.startswith(f"-A {prefix}-")
            }
            for line in saved.splitlines():
                if line.startswith(f"-A {prefix}-"):
                    parts = line.split(" ", 2)
                    chains[parts[1]].append(parts[2] if len(parts) > 2 else "")
            applier = IptablesApplier()
            raw = Ruleset(prefix=prefix, chains=chains)
            start = time.monotonic()
            applier.apply(raw)
            raw_apply = time.monotonic() - start
            rules = sum(len(v) for v in chains.values())
            med = statistics.median(latencies)
            print(
                f"rule change in force with {args.ports} ports ({rules} iptables rules): "
                f"median {med * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; one raw "
                f"iptables-restore of that ruleset {raw_apply * 1000:.0f} ms; ratio "
                f"{med / raw_apply:.1f}"
            )
        finally:
            cloud.stop()
            cloud.cleanup(instance)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=200)
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database-url", default="")
    asyncio.run(main(parser.parse_args()))
