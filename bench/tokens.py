"""Benchmark: token issue and validation throughput through HTTP on one worker.

Prints requests/second for POST /v3/auth/tokens (issue), GET /v3/auth/tokens (validate)
and GET /identity/v3 (a trivial unauthenticated endpoint of the same server), and each
as a ratio to the trivial endpoint, all measured in the same run.

    .venv/bin/python bench/tokens.py [--seconds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.cloud import ADMIN_PASSWORD, new_cloud  # noqa: E402


async def rate(make_request, seconds: float, concurrency: int) -> float:
    done = 0
    deadline = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            r = await make_request(client)
            if r.status_code >= 400:
                raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
            done += 1

    async with httpx.AsyncClient(timeout=30) as client:
        start = time.monotonic()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return done / (time.monotonic() - start)


async def main(seconds: float, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cloud = new_cloud(Path(tmp), env={"DOCKYARD_LOG_LEVEL": "WARNING"})
        cloud.start()
        try:
            url = cloud.url + "/identity/v3"
            auth = {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {
                                "name": "admin",
                                "domain": {"id": "default"},
                                "password": ADMIN_PASSWORD,
                            }
                        },
                    },
                    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
                }
            }
            token = cloud.token("admin")
            headers = {"X-Auth-Token": token, "X-Subject-Token": token}
            trivial = await rate(lambda c: c.get(url), seconds, concurrency)
            issue = await rate(
                lambda c: c.post(url + "/auth/tokens", json=auth), seconds, concurrency
            )
            validate = await rate(
                lambda c: c.get(url + "/auth/tokens", headers=headers), seconds, concurrency
            )
        finally:
            cloud.stop()
    print(f"trivial GET /identity/v3      {trivial:8.1f} req/s  ratio 1.00")
    print(f"token issue (password)        {issue:8.1f} req/s  ratio {issue / trivial:.3f}")
    print(f"token validate (GET tokens)   {validate:8.1f} req/s  ratio {validate / trivial:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.concurrency))
