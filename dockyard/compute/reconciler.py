"""Keep servers true to their containers: Docker events plus a periodic sweep.

Level-triggered: each pass compares what the database says with what the engine shows and
fixes the database (power state, SHUTOFF/ACTIVE/PAUSED, ERROR when the container vanished)
or the engine (orphan containers of this deployment with no live server, after a grace
period). Servers with an operation in flight are left to that operation.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import anyio
from sqlalchemy import select

from dockyard.compute import hosts, instance_files, states
from dockyard.compute.driver import DELETE, Compute, fault
from dockyard.compute.models import Host, Server
from dockyard.db.base import utcnow
from dockyard.docker import containers
from dockyard.tasks import queue
from dockyard.tasks.models import PENDING, RUNNING, Operation

log = logging.getLogger("dockyard.compute.reconciler")

_DOCKER_STATE = {
    "running": {"Running": True, "Status": "running"},
    "restarting": {"Running": True, "Restarting": True, "Status": "restarting"},
    "paused": {"Running": True, "Paused": True, "Status": "paused"},
    "created": {"Status": "created"},
    "exited": {"Status": "exited"},
    "dead": {"Status": "dead"},
    "removing": {"Status": "removing"},
}


class Reconciler:
    def __init__(self, compute: Compute):
        self.compute = compute
        self.db = compute.db
        self.settings = compute.settings
        self.interval = max(int(self.settings.reconcile_interval), 1)
        self.grace = int(self.settings.orphan_grace_seconds)
        # busy with no operation for this long means an operation was lost
        self.stale_after = max(4 * int(self.settings.task_lease_seconds), 30)
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._watchers: dict[str, threading.Thread] = {}
        self._first_seen_orphan: dict[str, float] = {}
        self._stop = threading.Event()

    # ---- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        last_sweep = 0.0
        try:
            while True:
                now = time.monotonic()
                try:
                    if now - last_sweep >= self.interval:
                        last_sweep = now
                        await anyio.to_thread.run_sync(self.sweep)
                    with self._lock:
                        dirty, self._dirty = self._dirty, set()
                    if dirty:
                        await anyio.to_thread.run_sync(self.reconcile_ids, dirty)
                except Exception:
                    log.exception("reconcile pass failed")
                await anyio.sleep(0.2)
        finally:
            self._stop.set()

    def mark(self, server_id: str) -> None:
        with self._lock:
            self._dirty.add(server_id)

    # ---- events -------------------------------------------------------------------------

    def _ensure_watchers(self, host_rows: list[tuple[str, str, dict]]) -> None:
        for name, url, tls in host_rows:
            t = self._watchers.get(name)
            if t is not None and t.is_alive():
                continue
            t = threading.Thread(
                target=self._watch, args=(name, url, tls), name=f"events-{name}", daemon=True
            )
            self._watchers[name] = t
            t.start()

    def _watch(self, name: str, url: str, tls: dict) -> None:
        from dockyard.docker import engines

        try:
            client = engines.connect(url, tls or None, timeout=None)
            for server_id, action in containers.events(client, self.compute.deployment):
                if self._stop.is_set():
                    return
                log.debug("docker event %s for server %s on %s", action, server_id, name)
                self.mark(server_id)
        except Exception as exc:  # noqa: BLE001 - the next sweep starts a new watcher
            log.info("event stream of host %s ended: %s", name, exc)

    # ---- sweeps -------------------------------------------------------------------------

    def _busy_targets(self, session) -> set[str]:
        return set(
            session.scalars(select(Operation.target).where(Operation.state.in_((PENDING, RUNNING))))
        )

    def sweep(self) -> None:
        up = hosts.refresh(self.db, self.compute.pool)
        with self.db.session() as s:
            rows = [
                (h.name, h.url, dict(h.tls or {}))
                for h in s.scalars(select(Host).where(Host.enabled.is_(True)))
            ]
            queue.purge_finished(s, timedelta(days=1))
        self._ensure_watchers([r for r in rows if up.get(r[0])])
        for name, url, tls in rows:
            if not up.get(name):
                continue
            try:
                self._sweep_host(name, self.compute.pool.get(url, tls or None))
            except Exception:
                log.exception("sweep of host %s failed", name)
        try:
            self._sweep_files()
        except Exception:
            log.exception("sweep of the servers' file directories failed")

    def _sweep_files(self) -> None:
        """Remove the host directories (instance_files) of servers that are gone. Listed before
        the query: a directory is only written for a server whose row exists already."""
        ids = instance_files.server_ids(self.settings.home)
        if not ids:
            return
        with self.db.session() as s:
            alive = set(
                s.scalars(select(Server.id).where(Server.id.in_(ids), Server.deleted.is_(False)))
            )
        for server_id in ids:
            if server_id not in alive:
                log.warning("removing the file directory of server %s (no live server)", server_id)
                self.compute.remove_files(server_id)

    def _sweep_host(self, host: str, client) -> None:
        managed = containers.list_managed(client, self.compute.deployment)
        by_server = {m.server_id: m for m in managed}
        with self.db.session() as s:
            busy = self._busy_targets(s)
            servers = list(
                s.scalars(select(Server).where(Server.host == host, Server.deleted.is_(False)))
            )
            stale_before = utcnow() - timedelta(seconds=self.stale_after)
            for server in servers:
                if server.id in busy:
                    continue
                if server.task_state is not None or server.vm_state == states.BUILDING:
                    if server.updated_at < stale_before:
                        self._unstick(s, server)
                    continue
                m = by_server.get(server.id)
                self._apply(server, _DOCKER_STATE.get(m.status, {}) if m else None)
            # orphans: containers of this deployment whose server is gone (or never existed)
            alive = set(
                s.scalars(
                    select(Server.id).where(
                        Server.id.in_(list(by_server) or [""]), Server.deleted.is_(False)
                    )
                )
            )
        now = time.monotonic()
        for server_id, m in by_server.items():
            if server_id in alive:  # (possibly under another host record of the same engine)
                self._first_seen_orphan.pop(m.name, None)
                continue
            first = self._first_seen_orphan.setdefault(m.name, now)
            if now - first >= self.grace:
                log.warning("removing orphan container %s (no live server)", m.name)
                containers.remove_by_name(client, m.name)
                self._first_seen_orphan.pop(m.name, None)

    def _unstick(self, session, server: Server) -> None:
        """A server marked busy with no operation in flight (an inconsistency: operations are
        enqueued with the state change, and their end clears it) is made consistent."""
        if server.task_state == "deleting":
            log.warning("server %s was left deleting; deleting it again", server.id)
            queue.enqueue(session, DELETE, server.id, {"force": True}, max_attempts=6)
            self.compute.runner.kick()
            return
        log.warning(
            "server %s was left %s/%s with no operation",
            server.id,
            server.vm_state,
            server.task_state,
        )
        if server.vm_state == states.BUILDING:
            server.vm_state = states.ERROR
            server.fault = fault("The build was interrupted and cannot resume; delete the server.")
        server.task_state = None
        server.updated_at = utcnow()

    def reconcile_ids(self, ids: set[str]) -> None:
        with self.db.session() as s:
            busy = self._busy_targets(s)
            rows = [
                (x.id, x.host)
                for x in s.scalars(select(Server).where(Server.id.in_(list(ids))))
                if not x.deleted
                and x.host
                and x.id not in busy
                and x.task_state is None
                and x.vm_state != states.BUILDING
            ]
        for sid, host in rows:
            try:
                st = containers.state(self.compute.client(host), sid)
            except Exception:  # noqa: BLE001 - host trouble: the sweep handles it
                continue
            with self.db.session() as s:
                server = s.get(Server, sid)
                if server is None or server.deleted or server.task_state is not None:
                    continue
                self._apply(server, st)

    @staticmethod
    def _apply(server: Server, docker_state: dict | None) -> None:
        vm, power = states.reconcile(server.vm_state, server.power_state, docker_state)
        if docker_state is None:
            if server.vm_state != states.ERROR or not server.fault:
                log.warning("container of server %s vanished; marking it ERROR", server.id)
                server.vm_state = states.ERROR
                server.power_state = states.NOSTATE
                server.fault = fault(
                    f"The container {containers.container_name(server.id)} was removed outside "
                    "dockyard (docker rm); rebuild or delete the server."
                )
                server.updated_at = utcnow()
            return
        if (vm, power) != (server.vm_state, server.power_state):
            log.info(
                "server %s: %s/%s -> %s/%s (container state)",
                server.id,
                server.vm_state,
                server.power_state,
                vm,
                power,
            )
            server.vm_state, server.power_state = vm, power
            server.updated_at = utcnow()
