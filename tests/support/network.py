"""Helpers for the networking tests: clouds with their own address ranges, cleanup, contexts."""

from __future__ import annotations

import ipaddress
import random
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.cloud import Cloud, free_port
from tests.support.docker import TEST_LABEL

_HANDED_OUT: set[str] = set()


def unique_cidr() -> str:
    """A /24 that overlaps no Docker network on this host and none handed out before by this
    process (nor the default 10.0.0.0/24), so concurrent test runs do not collide."""
    ids = subprocess.run(["docker", "network", "ls", "-q"], capture_output=True, text=True)
    used = subprocess.run(
        ["docker", "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"]
        + ids.stdout.split(),
        capture_output=True,
        text=True,
    ).stdout.split()
    taken = [ipaddress.ip_network(u) for u in used if "." in u]
    while True:
        cidr = f"10.{random.randint(200, 249)}.{random.randint(0, 255)}.0/24"
        net = ipaddress.ip_network(cidr)
        if cidr not in _HANDED_OUT and not any(net.overlaps(t) for t in taken):
            _HANDED_OUT.add(cidr)
            return cidr


def network_cloud(home: Path, database_url: str = "") -> Cloud:
    """A dockyard whose Docker objects carry the test label and whose demo network has a
    range of its own (so concurrent test runs on one Docker host do not collide)."""
    return Cloud(
        home=home,
        port=free_port(),
        database_url=database_url,
        extra_env={
            "DOCKYARD_CONTAINER_LABELS": f"{TEST_LABEL}=1",
            "DOCKYARD_NETWORK_DEMO_CIDR": unique_cidr(),
        },
    )


def database_of(cloud: Cloud):
    from dockyard.db import Database

    return Database(cloud.database_url or f"sqlite:///{cloud.home / 'dockyard.db'}")


def instance_of(cloud: Cloud) -> str:
    from dockyard.network.common import instance_id

    db = database_of(cloud)
    try:
        with db.session() as s:
            return instance_id(s)
    finally:
        db.dispose()


def cleanup(cloud: Cloud, instance: str) -> None:
    """Remove the test containers, the Docker networks and the firewall chains of a cloud."""
    from dockyard.network.common import chain_prefix
    from dockyard.network.firewall import IptablesApplier

    ids = subprocess.run(
        ["docker", "network", "ls", "-q", "--filter", f"label=dockyard.instance={instance}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    for net in ids:
        attached = subprocess.run(
            [
                "docker",
                "network",
                "inspect",
                "--format",
                "{{range $k, $v := .Containers}}{{$k}} {{end}}",
                net,
            ],
            capture_output=True,
            text=True,
        ).stdout.split()
        for c in attached:
            subprocess.run(["docker", "rm", "-f", c], capture_output=True)
        subprocess.run(["docker", "network", "rm", net], capture_output=True)
    IptablesApplier().remove(chain_prefix(instance))


def context_for(cloud: Cloud, user: str = "demo", project: str | None = None):
    """A RequestContext like the API would build for the user's token."""
    from dockyard.api.context import RequestContext

    r = cloud.auth(user, project=project)
    assert r.status_code == 201, r.text
    tok = r.json()["token"]
    return RequestContext(
        request_id="req-test",
        user_id=tok["user"]["id"],
        user_name=tok["user"]["name"],
        user_domain_id="default",
        roles=frozenset(role["name"] for role in tok["roles"]),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        audit_ids=(),
        methods=("password",),
        project_id=tok["project"]["id"],
        project_name=tok["project"]["name"],
        project_domain_id="default",
    )


def eventually(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
