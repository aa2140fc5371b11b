"""What resource plugins may ask of the rest of dockyard, through the other services' Python
interfaces (never their HTTP APIs, never their tables)."""

from __future__ import annotations

import logging

from dockyard.orchestration.resources.base import Context

log = logging.getLogger("dockyard.orchestration.services")

DOCKER_HOST_PORT = 2375


class Services:
    def __init__(self, runtime):
        self.runtime = runtime

    def owned_docker_endpoints(self, ctx: Context) -> set[str]:
        """tcp://<ip>:2375 of every server address of the caller's project."""
        try:
            from dockyard.network import ports
        except ImportError:  # networking not in this build
            return set()
        finder = getattr(ports, "project_fixed_ips", None)
        if finder is None:
            return set()
        with self.runtime.db.session() as session:
            ips = finder(session, ctx.project_id)
        return {f"tcp://{ip}:{DOCKER_HOST_PORT}" for ip in ips}
