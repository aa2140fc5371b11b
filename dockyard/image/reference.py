"""Docker image references (`[registry/]repo/path[:tag][@sha256:digest]`), parsed and checked."""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_HOST = re.compile(
    r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
DEFAULT_REGISTRY = "docker.io"


@dataclass(frozen=True)
class Reference:
    registry: str | None  # None: Docker Hub
    repository: str  # including the registry, as `docker pull` takes it
    tag: str | None
    digest: str | None

    @property
    def registry_host(self) -> str:
        return self.registry or DEFAULT_REGISTRY

    @property
    def pull_ref(self) -> str:
        """What to pull: `repo@digest`, `repo:tag`, or `repo:latest`."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or 'latest'}"


def parse_reference(ref: str) -> Reference:
    """Parse a Docker reference; ValueError naming the problem if it is not one."""
    if not ref or len(ref) > 1024 or ref != ref.strip():
        raise ValueError(f"'{ref}' is not a Docker image reference")
    rest, digest = ref, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise ValueError(f"'{ref}': the digest must be sha256:<64 hex digits>")
    registry = None
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        if not _HOST.match(first):
            raise ValueError(f"'{ref}': '{first}' is not a valid registry host")
        registry, rest = first, remainder
    tag = None
    path, colon, maybe_tag = rest.rpartition(":")
    if colon:
        if not _TAG.match(maybe_tag):
            raise ValueError(f"'{ref}': '{maybe_tag}' is not a valid tag")
        rest, tag = path, maybe_tag
    if not _PATH.match(rest):
        raise ValueError(
            f"'{ref}': '{rest}' is not a valid repository name (lowercase letters, digits, "
            "separators . _ - and /)"
        )
    repository = f"{registry}/{rest}" if registry else rest
    return Reference(registry, repository, tag, digest)


def check_allowed(ref: Reference, allowed: str) -> None:
    """ValueError unless the reference's registry is in the comma-separated allow list."""
    hosts = {h.strip() for h in allowed.split(",") if h.strip()}
    if hosts and ref.registry_host not in hosts:
        raise ValueError(
            f"registry '{ref.registry_host}' is not allowed here; allowed: "
            + ", ".join(sorted(hosts))
        )
