"""What resource plugins may ask of the rest of dockyard, through the other services' Python
interfaces (never their HTTP APIs, never their tables)."""

from __future__ import annotations

import logging
from datetime import timedelta

from dockyard.api.context import RequestContext
from dockyard.db.base import utcnow
from dockyard.orchestration.resources.base import Context

log = logging.getLogger("dockyard.orchestration.services")

DOCKER_HOST_PORT = 2375


def request_context(ctx: Context) -> RequestContext:
    """The stack creator's context, for calls into the other services' interfaces."""
    return RequestContext(
        request_id=f"req-heat-{ctx.stack_id}",
        user_id=ctx.user_id,
        user_name=ctx.user_name,
        user_domain_id="default",
        roles=frozenset(ctx.roles),
        expires_at=utcnow() + timedelta(hours=1),
        audit_ids=(),
        methods=("heat",),
        project_id=ctx.project_id,
    )


def bootable_image(session, ctx: RequestContext, ref: str):
    """The image named or identified by `ref`, if the caller may boot it."""
    from dockyard.image.boot import boot_image
    from dockyard.image.images import find_visible

    return boot_image(session, ctx, find_visible(session, ctx, ref).id)


class Services:
    def __init__(self, runtime):
        self.runtime = runtime
        self.engine = None  # set by the API once the engine exists

    def owned_docker_endpoints(self, ctx: Context) -> set[str]:
        """tcp://<ip>:2375 of every address of the caller's project's servers."""
        try:
            from dockyard.compute import servers
        except ImportError:  # compute not in this build
            return set()
        with self.runtime.db.session() as session:
            ips = servers.project_addresses(session, ctx.project_id)
        return {f"tcp://{ip}:{DOCKER_HOST_PORT}" for ip in ips}

    def port_for(self, ctx: Context, device_id: str):
        """The port (fixed IP on the project's network) of a container; made once, found after."""
        from dockyard.network.ports import allocate_port, ports_for_device

        with self.runtime.db.session() as session:
            found = ports_for_device(session, device_id)
            if found:
                return found[0]
            return allocate_port(session, request_context(ctx), device_id=device_id)

    def boot_image(self, ctx: Context, image_id: str):
        """The image service's image `image_id` if the caller's project may run it (else the
        image service's NotFound/BadRequest)."""
        from dockyard.image.boot import boot_image

        with self.runtime.db.session() as session:
            return boot_image(session, request_context(ctx), image_id)

    def check_network(self, ctx: Context) -> None:
        """400 now (not at create time) when the project has no network for its containers."""
        from dockyard.network.ports import auto_network_id

        with self.runtime.db.session() as session:
            auto_network_id(session, request_context(ctx))

    def release_port(self, device_id: str) -> None:
        from dockyard.network.ports import release_ports

        with self.runtime.db.session() as session:
            release_ports(session, device_id)
        try:
            from dockyard.network.firewall import request_sync

            request_sync(self.runtime)
        except Exception:  # noqa: BLE001 - the firewall loop catches up by itself
            log.debug("firewall sync request failed", exc_info=True)

    def constraint_checker(self, ctx: Context):
        """check(name, value) -> error text or None, for parameters' custom_constraint."""

        def check(name: str, value) -> str | None:
            from dockyard.api.errors import ApiError

            lookups = {
                "nova.flavor": ("dockyard.compute.flavors", "for_boot"),
                "nova.keypair": ("dockyard.compute.keypairs", "lookup"),
                "glance.image": ("dockyard.orchestration.services", "bootable_image"),
                "neutron.network": ("dockyard.network.common", "find_network"),
            }
            if name not in lookups:
                return None  # no interface to ask; the resource will say
            module, fn = lookups[name]
            try:
                find = getattr(__import__(module, fromlist=[fn]), fn)
            except (ImportError, AttributeError):
                return None
            values = value if isinstance(value, list) else [value]
            with self.runtime.db.session() as session:
                for v in values:
                    try:
                        find(session, request_context(ctx), str(v))
                    except ApiError as exc:
                        return f'Error validating value "{v}": {exc.message}'
            return None

        return check

    def pick_host(
        self, ctx: Context, memory_bytes: int | None
    ) -> tuple[str, str, dict, int] | None:
        """(name, url, tls, number of hosts) of the compute host the scheduler picks for a
        container, None when this build has no compute; NoValidHost (compute's) naming why
        each host was refused."""
        try:
            from dockyard.compute import hosts, scheduler
        except ImportError:
            return None
        ram_mb = -(-int(memory_bytes or 0) // (1024 * 1024))
        with self.runtime.db.session() as session:
            states = hosts.snapshot(session, self.runtime.settings)
            if not states:
                return None
            decision = scheduler.select_host(states, scheduler.BootRequest(ram_mb=ram_mb, vcpus=0))
            host = hosts.get(session, decision.host.name)
            return host.name, host.url, dict(host.tls or {}), len(states)
