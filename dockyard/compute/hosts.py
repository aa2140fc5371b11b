"""Compute hosts (Docker engines): the registry, capacity probes, the scheduler's snapshot."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dockyard.api.errors import BadRequest, Conflict
from dockyard.compute.models import Host, Server
from dockyard.compute.scheduler import HostState
from dockyard.db import Database
from dockyard.db.base import utcnow
from dockyard.docker import engines

log = logging.getLogger("dockyard.compute.hosts")


def ensure_local(session: Session, settings) -> None:
    """The local engine is a compute host from the first start on."""
    if session.scalar(select(Host).where(Host.name == settings.compute_host)) is None:
        session.add(Host(name=settings.compute_host, url=settings.docker_url, tls={}))
        try:
            session.flush()
        except IntegrityError:
            session.rollback()


def add(session: Session, name: str, url: str, tls: dict | None = None) -> Host:
    if not name or not url:
        raise BadRequest("A compute host needs a name and an endpoint.")
    if not url.startswith(("tcp://", "unix://", "ssh://", "https://")):
        raise BadRequest(f"Endpoint {url!r}: use tcp://HOST:2376 (with TLS) or unix:///path.")
    if session.scalar(select(Host).where(Host.name == name)) is not None:
        raise Conflict(f"A compute host named {name} exists already.")
    host = Host(name=name, url=url, tls=tls or {})
    session.add(host)
    session.flush()
    return host


def refresh(db: Database, pool: engines.ClientPool, timeout: int = 5) -> dict[str, bool]:
    """Probe every host's engine (a short timeout: a dead host must not stall the sweep);
    record capacity and whether it answers."""
    with db.session() as session:
        hosts = [(h.id, h.url, dict(h.tls or {})) for h in session.scalars(select(Host))]
    results: dict[int, tuple[bool, engines.EngineInfo | None, str]] = {}
    for host_id, url, tls in hosts:
        try:
            client = engines.connect(url, tls or None, timeout=timeout)
            try:
                info = engines.probe(client)
            finally:
                client.close()
            results[host_id] = (True, info, "")
        except Exception as exc:  # noqa: BLE001 - any failure means the engine is down
            results[host_id] = (False, None, str(exc)[:500])
    up: dict[str, bool] = {}
    with db.session() as session:
        for host_id, (ok, info, err) in results.items():
            h = session.get(Host, host_id)
            if h is None:
                continue
            h.up = ok
            h.last_error = err
            if ok and info is not None:
                h.memory_mb, h.vcpus, h.arch = info.memory_mb, info.vcpus, info.arch
                h.info = {"name": info.name, "version": info.version}
                h.last_seen = utcnow()
            up[h.name] = ok
    return up


def usage_by_host(session: Session) -> dict[str, tuple[int, int, int]]:
    """host -> (servers, RAM MB, vCPUs) claimed by live servers."""
    rows = session.execute(
        select(
            Server.host,
            func.count(Server.id),
            func.coalesce(func.sum(Server.flavor["ram"].as_integer()), 0),
            func.coalesce(func.sum(Server.flavor["vcpus"].as_integer()), 0),
        )
        .where(Server.deleted.is_(False), Server.host.is_not(None))
        .group_by(Server.host)
    ).all()
    return {h: (int(n), int(r), int(c)) for h, n, r, c in rows}


def snapshot(
    session: Session, settings, group_members: dict[str, set[str]] | None = None
) -> list[HostState]:
    """Every host as the scheduler sees it now."""
    used = usage_by_host(session)
    out = []
    for h in session.scalars(select(Host).order_by(Host.name)):
        _n, ram, cpus = used.get(h.name, (0, 0, 0))
        out.append(
            HostState(
                name=h.name,
                enabled=h.enabled,
                up=h.up,
                total_ram_mb=h.memory_mb,
                used_ram_mb=ram,
                reserved_ram_mb=int(settings.reserved_host_memory_mb),
                total_vcpus=h.vcpus,
                used_vcpus=cpus,
                ram_ratio=float(settings.ram_allocation_ratio),
                cpu_ratio=float(settings.cpu_allocation_ratio),
                arch=h.arch,
                disabled_reason=h.disabled_reason or "",
                servers=frozenset((group_members or {}).get(h.name, set())),
            )
        )
    return out


def get(session: Session, name: str) -> Host | None:
    return session.scalar(select(Host).where(Host.name == name))
