"""Compute hosts from the command line: `python -m dockyard.compute.hostctl add NAME ENDPOINT`.

    add NAME tcp://HOST:2376 --tls-ca ca.pem --tls-cert cert.pem --tls-key key.pem
    list
    disable NAME [--reason TEXT] / enable NAME

Uses the same settings (DOCKYARD_HOME, DOCKYARD_DATABASE_URL) as `dockyard up`; a running
dockyard picks new hosts up at its next reconcile pass. (`dockyard host ...` is meant to call
this; see docs/compute.md.)
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import select

from dockyard.api.errors import ApiError
from dockyard.compute import hosts
from dockyard.compute.models import Host
from dockyard.config import load_settings
from dockyard.db import Database
from dockyard.docker import engines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dockyard host", description="compute hosts")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="register a Docker engine as a compute host")
    add.add_argument("name")
    add.add_argument("endpoint", help="tcp://HOST:2376 (TLS) or unix:///path/docker.sock")
    add.add_argument("--tls-ca")
    add.add_argument("--tls-cert")
    add.add_argument("--tls-key")
    add.add_argument("--no-check", action="store_true", help="do not contact the engine now")
    sub.add_parser("list", help="list compute hosts")
    for verb in ("enable", "disable"):
        p = sub.add_parser(verb, help=f"{verb} a compute host for new servers")
        p.add_argument("name")
        if verb == "disable":
            p.add_argument("--reason", default="")
    args = parser.parse_args(argv)
    settings = load_settings()
    if not settings.database_url and not (settings.home / "dockyard.db").exists():
        print(f"no dockyard state in {settings.home}: run `dockyard up` first", file=sys.stderr)
        return 1
    db = Database(settings.db_url)
    db.migrate()
    try:
        if args.command == "add":
            tls = {
                k: v
                for k, v in (("ca", args.tls_ca), ("cert", args.tls_cert), ("key", args.tls_key))
                if v
            }
            if args.endpoint.startswith("tcp://") and not tls:
                print(
                    "warning: a tcp:// endpoint without TLS lets anyone on the network run "
                    "containers as root on that host",
                    file=sys.stderr,
                )
            if not args.no_check:
                info = engines.probe(engines.connect(args.endpoint, tls or None, timeout=10))
                print(
                    f"{args.name}: Docker {info.version}, {info.vcpus} CPUs, "
                    f"{info.memory_mb} MB, {info.arch}"
                )
            with db.session() as s:
                hosts.add(s, args.name, args.endpoint, tls)
            print(f"compute host {args.name} added ({args.endpoint})")
        elif args.command == "list":
            with db.session() as s:
                for h in s.scalars(select(Host).order_by(Host.id)):
                    state = "enabled" if h.enabled else f"disabled ({h.disabled_reason or ''})"
                    print(f"{h.id}\t{h.name}\t{h.url}\t{state}\t{'up' if h.up else 'down'}")
        else:
            with db.session() as s:
                h = hosts.get(s, args.name)
                if h is None:
                    print(f"no compute host named {args.name}", file=sys.stderr)
                    return 1
                h.enabled = args.command == "enable"
                h.disabled_reason = None if h.enabled else (args.reason or None)
            print(f"compute host {args.name} {args.command}d")
    except ApiError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - e.g. the engine does not answer
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
