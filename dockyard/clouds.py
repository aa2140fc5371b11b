"""clouds.yaml and openrc files that point the OpenStack clients at this dockyard."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

CLOUDS = {"dockyard": ("demo", "demo"), "dockyard-admin": ("admin", "admin")}


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def known_passwords(home: Path) -> dict[str, str]:
    """Passwords already written to clouds.yaml, by user name."""
    path = home / "clouds.yaml"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    found = {}
    for cloud, (user, _project) in CLOUDS.items():
        password = data.get("clouds", {}).get(cloud, {}).get("auth", {}).get("password")
        if password:
            found[user] = password
    return found


def write_client_files(home: Path, auth_url: str, region: str, passwords: dict[str, str]) -> Path:
    clouds = {}
    for cloud, (user, project) in CLOUDS.items():
        clouds[cloud] = {
            "auth": {
                "auth_url": auth_url,
                "username": user,
                "password": passwords.get(user, ""),
                "project_name": project,
                "user_domain_name": "Default",
                "project_domain_name": "Default",
            },
            "region_name": region,
            "identity_api_version": 3,
            "interface": "public",
        }
        rc = "\n".join(
            [
                f"export OS_AUTH_URL={auth_url}",
                f"export OS_USERNAME={user}",
                f"export OS_PASSWORD='{passwords.get(user, '')}'",
                f"export OS_PROJECT_NAME={project}",
                "export OS_USER_DOMAIN_NAME=Default",
                "export OS_PROJECT_DOMAIN_NAME=Default",
                f"export OS_REGION_NAME={region}",
                "export OS_IDENTITY_API_VERSION=3",
                "unset OS_CLOUD OS_TOKEN",
                "",
            ]
        )
        _write_private(home / f"openrc-{user}", rc)
    path = home / "clouds.yaml"
    _write_private(path, yaml.safe_dump({"clouds": clouds}, sort_keys=False))
    return path
