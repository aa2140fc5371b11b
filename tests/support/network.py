"""Helpers for the networking tests: the instance id, database access, contexts, polling.
Clouds come from tests.support.cloud.new_cloud(docker=True) and are cleaned by
`cloud.cleanup()`; `network_cloud`, `cleanup` and `unique_cidr` here are the older spelling."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.cloud import Cloud, new_cloud
from tests.support.cloud import unique_cidr as unique_cidr  # re-exported: tests import it here


def network_cloud(home: Path, database_url: str = "") -> Cloud:
    """A dockyard whose Docker objects carry the test label and whose demo network has a
    range of its own: new_cloud(home, database_url, docker=True)."""
    return new_cloud(home, database_url, docker=True)


def cleanup(cloud: Cloud, instance: str | None = None) -> None:
    """cloud.cleanup(instance): its Docker objects, networks and firewall chains."""
    cloud.cleanup(instance)


def database_of(cloud: Cloud):
    return cloud.database()


def instance_of(cloud: Cloud) -> str:
    """The cloud's instance id (made if it has none yet, as the cloud itself would)."""
    from dockyard.network.common import instance_id

    db = cloud.database()
    try:
        with db.session() as s:
            return instance_id(s)
    finally:
        db.dispose()


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
