"""The compute worker: runs server operations (create, delete, actions) against Docker.

Every step is idempotent so an operation can be retried or resumed after a crash: the
container is found by its name before one is made, ports are allocated once (at the API,
in the transaction that made the server), and states are written only after Docker did it.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from dockyard.api.context import RequestContext
from dockyard.api.errors import ApiError
from dockyard.compute import glue, hosts, instance_files, quotas, scheduler, states
from dockyard.compute.models import Meta, Server
from dockyard.compute.servers import ACTION, CREATE, DELETE
from dockyard.db.base import utcnow
from dockyard.docker import containers, engines
from dockyard.tasks.queue import Claimed
from dockyard.tasks.runner import Handler, PermanentError, Runner

log = logging.getLogger("dockyard.compute")


# the task states of a snapshot (createImage), in order
SNAPSHOT_TASKS = ("image_snapshot", "image_pending_upload", "image_uploading")

META_DIR = "/var/lib/dockyard/openstack/latest"
AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"


def parse_labels(text: str) -> dict[str, str]:
    out = {}
    for part in (text or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            if k.strip():
                out[k.strip()] = v.strip()
    return out


def deployment_id(db) -> str:
    """This deployment's id (made once, shared by every process on the same database)."""
    from sqlalchemy.exc import IntegrityError

    with db.session() as s:
        row = s.get(Meta, "deployment_id")
        if row is not None:
            return row.value
    try:
        with db.session() as s:
            s.add(Meta(key="deployment_id", value=uuid.uuid4().hex[:12]))
    except IntegrityError:
        pass
    with db.session() as s:
        return s.get(Meta, "deployment_id").value


def requester_payload(ctx: RequestContext) -> dict:
    """Who asked for an operation, for the checks its worker makes on their behalf."""
    return {
        "user_id": ctx.user_id,
        "user_name": ctx.user_name,
        "user_domain_id": ctx.user_domain_id,
        "project_id": ctx.project_id,
        "roles": sorted(ctx.roles),
    }


def requester(payload: dict) -> RequestContext:
    """The context of the user an operation runs for (see requester_payload)."""
    who = payload.get("requester") or {}
    return RequestContext(
        request_id=f"req-{uuid.uuid4()}",
        user_id=who.get("user_id", ""),
        user_name=who.get("user_name", ""),
        user_domain_id=who.get("user_domain_id", ""),
        roles=frozenset(who.get("roles") or ()),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        audit_ids=(),
        methods=("operation",),
        project_id=who.get("project_id"),
    )


def fault(message: str, code: int = 500, details: str | None = None) -> dict:
    f = {
        "code": code,
        "message": message[:255],
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if details or len(message) > 255:
        f["details"] = details or message
    return f


@dataclass(frozen=True)
class SpawnPlan:
    """What a spawn needs from the database, read in one transaction."""

    host: str
    url: str
    tls: dict
    bindings: list
    labels: dict[str, str]
    files: dict[str, tuple[bytes, int]]
    flavor: dict
    hostname: str
    # the files go in as read-only binds of a host directory (local engine), not put_archive
    bind_files: bool = False


class _ProbeFirst(Exception):
    """The hosts were never probed (or none answers): probe them, then schedule."""


class Compute:
    """What one dockyard process runs for compute: clients, the task runner, the handlers."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.db = runtime.db
        self.settings = runtime.settings
        self.pool = engines.ClientPool()
        self.deployment = deployment_id(self.db)
        self.extra_labels = parse_labels(self.settings.container_labels)
        self.stop_timeout = int(self.settings.compute_stop_timeout)
        self._networks_ok: dict[tuple[str, str], float] = {}
        self.runner = Runner(
            self.db,
            {
                CREATE: Handler(self.do_create, self.create_failed),
                DELETE: Handler(self.do_delete, self.delete_failed),
                ACTION: Handler(self.do_action, self.action_failed),
            },
            concurrency=int(self.settings.compute_workers),
            lease_seconds=int(self.settings.task_lease_seconds),
            poll_interval=1.0,
            backoff=1.0,
        )

    # ---- helpers ------------------------------------------------------------------------

    def client(self, host_name: str):
        with self.db.session() as s:
            h = hosts.get(s, host_name)
            if h is None:
                raise PermanentError(f"compute host {host_name} is not registered")
            url, tls = h.url, dict(h.tls or {})
        return self.pool.get(url, tls or None)

    def labels(self, server: Server) -> dict[str, str]:
        return {
            **self.extra_labels,
            containers.SERVER_LABEL: server.id,
            containers.PROJECT_LABEL: server.project_id,
            containers.DEPLOYMENT_LABEL: self.deployment,
        }

    def _update(self, server_id: str, **values) -> None:
        """Write fields of the server row (one UPDATE; nothing when the row is gone)."""
        with self.db.session() as s:
            s.execute(
                update(Server)
                .where(Server.id == server_id)
                .values(**values, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    @staticmethod
    def files_for(server: Server) -> dict[str, tuple[bytes, int]]:
        meta = {
            "uuid": server.id,
            "name": server.name,
            "hostname": server.hostname,
            "project_id": server.project_id,
            "availability_zone": server.availability_zone,
            "launch_index": server.launch_index,
            "meta": dict(server.meta or {}),
            "public_keys": {server.key_name: server.key_data} if server.key_data else {},
            "keys": (
                [{"name": server.key_name, "type": "ssh", "data": server.key_data}]
                if server.key_data
                else []
            ),
        }
        files = {f"{META_DIR}/meta_data.json": (json.dumps(meta, indent=1).encode(), 0o644)}
        if server.user_data:
            import base64

            try:
                data = base64.b64decode(server.user_data)
            except ValueError:
                data = server.user_data.encode()
            files[f"{META_DIR}/user_data"] = (data, 0o644)
        if server.key_data:
            files[AUTHORIZED_KEYS] = (server.key_data.strip().encode() + b"\n", 0o600)
        return files

    @staticmethod
    def binds_files(url: str, flavor: dict) -> bool:
        """Whether a server's files are bind-mounted from the host (instance_files) rather than
        copied in with put_archive: on an engine sharing our file system, when dockyard runs as
        root (so authorized_keys is root's in the container), and not for the docker-host
        profile (CAP_SYS_ADMIN could remount the bind read-write and write on the host)."""
        profile = (flavor.get("extra_specs") or {}).get("dockyard:host_profile")
        return (
            engines.shares_filesystem(url)
            and os.geteuid() == 0
            and profile != containers.DOCKER_HOST_PROFILE
        )

    def remove_files(self, server_id: str) -> None:
        """Remove the server's host directory (nothing when it has none)."""
        instance_files.remove(self.settings.home, server_id)

    # ---- create -------------------------------------------------------------------------

    def _plan(self, server_id: str, schedule: bool) -> SpawnPlan | None:
        """Everything a spawn needs, read in one transaction that also marks the server
        `spawning`; with `schedule`, a host is picked first when the server has none (under the
        scheduler lock). None when the server is gone or being deleted."""
        probed = False
        while True:
            try:
                with self.db.session() as s:
                    if schedule:
                        # the first write: serializes the decisions, later reads see every claim
                        quotas.lock(s, "scheduler")
                    server = s.get(Server, server_id)
                    if server is None or server.deleted or server.task_state == "deleting":
                        return None
                    if not server.host:
                        if not schedule:
                            raise PermanentError("the server has no compute host")
                        self._pick_host(s, server, probed)
                    host = hosts.get(s, server.host)
                    if host is None:
                        raise PermanentError(f"compute host {server.host} is not registered")
                    server.task_state = "spawning"
                    server.updated_at = utcnow()
                    flavor = dict(server.flavor or {})
                    return SpawnPlan(
                        host=server.host,
                        url=host.url,
                        tls=dict(host.tls or {}),
                        bindings=glue.ports_for_device(s, server_id),
                        labels=self.labels(server),
                        files=self.files_for(server),
                        flavor=flavor,
                        hostname=server.hostname or server.name,
                        bind_files=self.binds_files(host.url, flavor),
                    )
            except _ProbeFirst:
                # never probed, or nothing answers: look at the engines (outside the
                # transaction), then decide once more
                hosts.refresh(self.db, self.pool)
                probed = True

    def _pick_host(self, s, server: Server, probed: bool) -> None:
        """The scheduler's decision for the server, written on its row (NoValidHost is a
        permanent failure). Raises _ProbeFirst when the hosts were never probed."""
        group_policy, members, max_per_host = None, {}, 1
        if server.server_group_id:
            from dockyard.compute.models import ServerGroup

            group = s.get(ServerGroup, server.server_group_id)
            if group is not None:
                group_policy = group.policy
                max_per_host = int((group.rules or {}).get("max_server_per_host", 1))
                rows = s.execute(
                    select(Server.id, Server.host).where(
                        Server.server_group_id == group.id,
                        Server.deleted.is_(False),
                        Server.id != server.id,
                        Server.host.is_not(None),
                    )
                ).all()
                for sid, h in rows:
                    members.setdefault(h, set()).add(sid)
        snap = hosts.snapshot(s, self.settings, members)
        if not probed and (any(h.total_ram_mb == 0 for h in snap) or not any(h.up for h in snap)):
            raise _ProbeFirst()
        all_members = frozenset(x for v in members.values() for x in v)
        flavor = server.flavor or {}
        req = scheduler.BootRequest(
            ram_mb=int(flavor.get("ram", 0)),
            vcpus=int(flavor.get("vcpus", 0)),
            group_policy=group_policy,
            group_members=all_members,
            group_max_per_host=max_per_host,
            force_host=(server.availability_zone.split(":", 1)[1] or None)
            if ":" in (server.availability_zone or "")
            else None,
        )
        try:
            decision = scheduler.select_host(snap, req)
        except scheduler.NoValidHost as exc:
            raise PermanentError(str(exc)) from exc
        server.host = decision.host.name
        if ":" in (server.availability_zone or ""):
            server.availability_zone = server.availability_zone.split(":", 1)[0] or "nova"

    def _spawn(self, server_id: str, plan: SpawnPlan, image_payload: dict, fresh: bool) -> None:
        """Make (or find) the container, attach ports, write files, start it."""
        client = self.pool.get(plan.url, plan.tls or None)
        bindings, hostname, flavor = plan.bindings, plan.hostname, plan.flavor
        if bindings:
            # the port's rules go in while the container is made (an address without them
            # passes nothing, so starting before they are in force exposes nothing)
            glue.firewall_changed(self.runtime)
        t0 = time.monotonic()
        marks: list[tuple[str, float]] = []
        # `fresh`: first attempt ever, so no earlier attempt can have made the container
        existing = None if fresh else containers.find(client, server_id)
        if existing is None:
            image = glue.image_from_payload(image_payload)
            ref = glue.ensure_image(self.runtime, client, image)
            marks.append(("image", time.monotonic()))
            for b in bindings:
                self._ensure_network(client, plan.host, b)
            marks.append(("network", time.monotonic()))
            binds = []
            if plan.bind_files:
                # made afresh before every create (a retry that finds the container keeps them)
                binds = instance_files.write(
                    self.settings.home, server_id, plan.files, dir_mounts=(META_DIR,)
                )
                marks.append(("files", time.monotonic()))
            spec = containers.ContainerSpec(
                server_id=server_id,
                image=ref,
                labels=plan.labels,
                hostname=hostname,
                ram_mb=int(flavor.get("ram", 512)),
                vcpus=int(flavor.get("vcpus", 1)),
                swap_mb=int(flavor.get("swap") or 0),
                host_profile=(flavor.get("extra_specs") or {}).get("dockyard:host_profile"),
                network=glue.endpoint_config(bindings[0], [hostname]) if bindings else None,
                network_mode=None if bindings else "none",
                readonly_binds=binds,
            )
            container, created = containers.create(client, spec, look_first=not fresh)
            marks.append(("create", time.monotonic()))
        else:
            container, created = existing, False
        for b in bindings[1:]:
            glue.connect(client, container.id, b, [hostname])
        if existing is not None or len(bindings) > 1:
            container.reload()
        # a container made by this attempt with binds, or found with them, has its files
        mounted = (created and plan.bind_files) or containers.has_mount(container, META_DIR)
        if container.attrs["State"].get("Status") == "created" and not mounted:
            containers.put_files(container, plan.files)
            marks.append(("files", time.monotonic()))
        state = containers.start(client, server_id, container)
        marks.append(("start", time.monotonic()))
        vm, power = states.observed(state)
        self._update(
            server_id,
            vm_state=states.ACTIVE if vm == states.ACTIVE else (vm or states.ERROR),
            power_state=power,
            task_state=None,
            container_id=container.id,
            addresses=glue.addresses_of(bindings),
            launched_at=utcnow(),
            fault=None,
        )
        marks.append(("saved", time.monotonic()))
        log.debug(
            "spawned %s: %s",
            server_id,
            " ".join(f"{k}={(v - t0) * 1000:.0f}ms" for k, v in marks),
        )

    def _ensure_network(self, client, host: str, binding) -> None:
        """ensure_network once a minute per host and network (inspecting a busy network
        costs the engine more than the boot itself); a network removed in between makes the
        create fail and the retry ensure it again."""
        key = (host, binding.docker_network)
        now = time.monotonic()
        if now - self._networks_ok.get(key, -1e9) < 60:
            return
        glue.ensure_network(client, binding)
        self._networks_ok[key] = now

    def forget_network(self, host: str, docker_network: str) -> None:
        self._networks_ok.pop((host, docker_network), None)

    def do_create(self, op: Claimed) -> None:
        plan = self._plan(op.target, schedule=True)
        if plan is None:
            return
        try:
            self._spawn(op.target, plan, op.payload["image"], fresh=op.attempts == 1)
        except Exception:
            self._networks_ok.clear()  # ensure the networks again on the retry
            raise

    def create_failed(self, op: Claimed, message: str) -> None:
        with self.db.session() as s:
            server = s.get(Server, op.target)
            if server is None or server.deleted:
                return
            if server.task_state == "deleting":
                return
            server.vm_state = states.ERROR
            server.task_state = None
            server.power_state = states.NOSTATE
            server.fault = fault(message)
            server.updated_at = utcnow()

    # ---- delete -------------------------------------------------------------------------

    def do_delete(self, op: Claimed) -> None:
        with self.db.session() as s:
            server = s.get(Server, op.target)
            gone = server is None or server.deleted
            host = None if server is None else server.host
        if gone:
            self.remove_files(op.target)  # a retry after the row was written
            return
        if host:
            containers.remove(self.client(host), op.target)
        self.remove_files(op.target)
        with self.db.session() as s:
            server = s.get(Server, op.target)
            glue.release_ports(s, op.target)
            now = utcnow()
            server.deleted = True
            server.vm_state = states.DELETED
            server.task_state = None
            server.power_state = states.NOSTATE
            server.deleted_at = now
            server.terminated_at = now
            server.updated_at = now
        glue.firewall_changed(self.runtime)

    def delete_failed(self, op: Claimed, message: str) -> None:
        self._update(
            op.target,
            vm_state=states.ERROR,
            task_state=None,
            fault=fault(f"Deleting the server failed: {message}"),
        )

    # ---- actions ------------------------------------------------------------------------

    def do_action(self, op: Claimed) -> None:
        action = op.payload["action"]
        with self.db.session() as s:
            server = s.get(Server, op.target)
            gone = server is None or server.deleted or server.task_state == "deleting"
            host = None if server is None else server.host
        if gone:
            if action == "createImage":
                self._discard_snapshot(op, host)
            return
        if not host:
            raise PermanentError(f"the server has no host; cannot {action}")
        client = self.client(host)
        sid = op.target
        if action == "createImage":
            self._snapshot(op, client)
        elif action == "os-stop":
            st = containers.stop(client, sid, self.stop_timeout)
            self._settle(sid, st, states.STOPPED)
        elif action == "os-start":
            st = containers.start(client, sid)
            self._settle(sid, st, states.ACTIVE)
        elif action == "reboot":
            hard = op.payload.get("type") == "HARD"
            st = containers.reboot(client, sid, hard=hard, timeout=self.stop_timeout)
            self._settle(sid, st, states.ACTIVE)
        elif action in ("pause", "suspend"):
            st = containers.pause(client, sid)
            target = states.PAUSED if action == "pause" else states.SUSPENDED
            self._settle(sid, st, target)
        elif action in ("unpause", "resume"):
            st = containers.unpause(client, sid)
            self._settle(sid, st, states.ACTIVE)
        elif action == "resize":
            f = op.payload["flavor"]
            containers.update_limits(client, sid, f["ram"], f["vcpus"], f.get("swap") or 0)
            self._update(sid, vm_state=states.RESIZED, task_state=None)
        elif action == "revertResize":
            with self.db.session() as s:
                server = s.get(Server, sid)
                old = dict(server.old_flavor or server.flavor)
            containers.update_limits(client, sid, old["ram"], old["vcpus"], old.get("swap") or 0)
            st = containers.state(client, sid)
            vm, power = states.observed(st)
            self._update(
                sid,
                flavor=old,
                flavor_id=old.get("id", ""),
                old_flavor=None,
                vm_state=vm or states.ERROR,
                power_state=power,
                task_state=None,
            )
        elif action == "rebuild":
            was = containers.state(client, sid)
            containers.remove(client, sid)
            plan = self._plan(sid, schedule=False)
            if plan is None:
                return
            self._spawn(sid, plan, op.payload["image"], fresh=False)
            if was is not None and not was.get("Running") and op.payload.get("keep_stopped"):
                st = containers.stop(client, sid, self.stop_timeout)
                self._settle(sid, st, states.STOPPED)
        else:
            raise PermanentError(f"unknown action {action}")

    # ---- snapshots ----------------------------------------------------------------------

    def _snapshot(self, op: Claimed, client) -> None:
        """createImage: commit the container, stream `docker save` into the queued image
        (task_state image_snapshot -> image_pending_upload -> image_uploading -> None).

        Resumable: the commit is kept under a name derived from the image id, so a retry after
        a crash uploads what the dead attempt committed, and the upload takes over the image
        that attempt left `saving`. An image that is active already only needs the clean-up.
        """
        sid, image_id = op.target, op.payload["image_id"]
        repository = containers.snapshot_repository(image_id)
        status = glue.snapshot_status(self.runtime, image_id)
        if status is None:
            raise PermanentError(f"the snapshot's image {image_id} was deleted meanwhile")
        if status != "active":
            try:
                ref = containers.commit(client, sid, repository)
            except containers.ContainerGone as exc:
                raise PermanentError(f"cannot snapshot: {exc}") from exc
            self._snapshot_task(sid, "image_pending_upload")
            chunks = containers.save(client, ref)
            self._snapshot_task(sid, "image_uploading")
            try:
                glue.upload_snapshot(
                    self.runtime, requester(op.payload), image_id, chunks, f"op{op.id}-"
                )
            except ApiError as exc:  # refused (quota, archive) or deleted: a retry cannot help
                raise PermanentError(f"saving the snapshot failed: {exc.message}") from exc
        containers.remove_image(client, f"{repository}:latest")
        self._snapshot_task(sid, None)

    def _snapshot_task(self, server_id: str, task_state: str | None) -> None:
        """Move the snapshot's task_state on, unless the server has moved on (e.g. deleting)."""
        with self.db.session() as s:
            s.execute(
                update(Server)
                .where(Server.id == server_id, Server.task_state.in_(SNAPSHOT_TASKS))
                .values(task_state=task_state, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    def _discard_snapshot(self, op: Claimed, host: str | None) -> None:
        """A snapshot that failed (or was overtaken by a delete) leaves no image behind."""
        image_id = op.payload.get("image_id")
        if not image_id:
            return
        if glue.discard_snapshot(self.runtime, image_id):
            log.info("snapshot %s of server %s failed; its image was deleted", image_id, op.target)
        if host:
            try:
                ref = f"{containers.snapshot_repository(image_id)}:latest"
                containers.remove_image(self.client(host), ref)
            except Exception:  # noqa: BLE001 - the engine may be down; the image is only a tag
                log.warning("could not remove the committed snapshot of image %s", image_id)

    def _settle(self, sid: str, st: dict, wanted: str) -> None:
        vm, power = states.observed(st)
        if wanted == states.SUSPENDED and vm == states.PAUSED:
            vm, power = states.SUSPENDED, states.SUSPENDED_POWER
        self._update(sid, vm_state=vm or states.ERROR, power_state=power, task_state=None)

    def action_failed(self, op: Claimed, message: str) -> None:
        action = op.payload.get("action")
        with self.db.session() as s:
            server = s.get(Server, op.target)
            host = None if server is None else server.host
            gone = server is None or server.deleted
        if action == "createImage":
            # the server itself is as it was (the reconciler keeps its power state true);
            # only the snapshot's task_state goes, unless a delete took over meanwhile
            self._discard_snapshot(op, host)
            self._snapshot_task(op.target, None)
            return
        if gone:
            return
        st = None
        gone = False
        if host:
            try:
                st = containers.state(self.client(host), op.target)
                gone = st is None
            except Exception:  # noqa: BLE001 - the engine may be down; keep what we know
                st = None
        values: dict = {"task_state": None}
        if gone:
            values.update(
                vm_state=states.ERROR,
                power_state=states.NOSTATE,
                fault=fault(f"{action} failed: the container was removed outside dockyard"),
            )
        elif st is not None:
            vm, power = states.observed(st)
            values.update(vm_state=vm, power_state=power)
        if action in ("rebuild", "resize") and not gone:
            values.update(vm_state=states.ERROR, fault=fault(f"{action} failed: {message}"))
        self._update(op.target, **values)
