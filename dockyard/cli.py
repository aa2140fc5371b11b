"""The `dockyard` command: `dockyard up` runs the all-in-one cloud."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from dockyard.app import build_runtime, create_app
from dockyard.clouds import known_passwords, write_client_files
from dockyard.compute import hostctl
from dockyard.config import Settings, load_settings
from dockyard.identity.bootstrap import bootstrap
from dockyard.identity.keys import rotate_keys
from dockyard.identity.service import prune_revocations
from dockyard.image.demo import ensure_demo_image
from dockyard.logs import configure_logging
from dockyard.network.networks import bootstrap as network_bootstrap
from dockyard.orchestration.dockerhost import add_cli as add_image_cli

log = logging.getLogger("dockyard")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def prepare(settings: Settings) -> tuple[object, str]:
    """Migrate, bootstrap and write client files; returns the app and a how-to message."""
    runtime = build_runtime(settings)
    runtime.db.migrate()
    with runtime.db.session() as session:
        result = bootstrap(session, settings.admin_password, settings.demo_password)
        network_bootstrap(session, settings, result.demo_project_id, result.admin_project_id)
        prune_revocations(session, settings.token_ttl)
    passwords = known_passwords(settings.home)
    for user, given in (("admin", settings.admin_password), ("demo", settings.demo_password)):
        if given and user not in result.created_passwords:
            passwords.setdefault(user, given)
    passwords.update(result.created_passwords)
    auth_url = settings.base_url + "/identity/v3"
    osc = shutil.which("openstack") or str(Path(sys.executable).with_name("openstack"))
    clouds = write_client_files(settings.home, auth_url, settings.region, passwords)
    app = create_app(runtime)
    demo_image = ensure_demo_image(runtime) if settings.demo_image else None
    lines = [
        f"dockyard is serving on {settings.base_url} (state in {settings.home})",
        "Point the openstack CLI at it:",
        f"  export OS_CLIENT_CONFIG_FILE={clouds}",
        f"  {osc} --os-cloud dockyard token issue          # user demo, project demo",
        f"  {osc} --os-cloud dockyard-admin project list   # user admin, project admin",
        f"or: source {settings.home}/openrc-demo (or openrc-admin)",
    ]
    if demo_image:
        lines += [
            "Boot the demo image (busybox httpd) and open its page:",
            f"  {osc} --os-cloud dockyard server create --image demo --flavor m1.tiny "
            "--network private web1 --wait",
            f"  {osc} --os-cloud dockyard server list     # then: curl http://<its private IP>/",
        ]
    shown = {
        u: p for u, p in result.created_passwords.items() if not getattr(settings, f"{u}_password")
    }
    if shown:
        lines.append("Generated passwords (shown once; also kept in clouds.yaml, mode 0600):")
        lines.extend(f"  {u}: {p}" for u, p in shown.items())
    return app, "\n".join(lines)


class _Server(uvicorn.Server):
    """uvicorn's server, but SIGINT/SIGTERM end in a clean exit (status 0), not a re-raise."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def cmd_up(args: argparse.Namespace) -> int:
    settings = load_settings(host=args.host, port=args.port)
    configure_logging(settings.log_level)
    app, message = prepare(settings)
    print(message, flush=True)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=75,  # clients poll every 5 s; a 5 s server idle timeout races them
    )
    _Server(config).run()
    log.info("dockyard stopped")
    return 0


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    settings = load_settings()
    primary = rotate_keys(settings.key_dir, settings.max_active_keys)
    print(f"token keys rotated in {settings.key_dir}; primary key is now {primary}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dockyard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the all-in-one cloud")
    up.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=None, help="port to listen on (default 8080)")
    up.set_defaults(func=cmd_up)
    rot = sub.add_parser("rotate-keys", help="rotate the token signing keys")
    rot.set_defaults(func=cmd_rotate_keys)
    add_image_cli(sub)
    sub.add_parser("host", help="manage compute hosts: add, list, enable, disable (see --help)")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["host"]:
        return hostctl.main(argv[1:])
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
