"""Compute API microversions: negotiation from the request headers (both spellings)."""

from __future__ import annotations

import re
from typing import NamedTuple

from dockyard.api.errors import ApiError, BadRequest

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 96)


class Version(NamedTuple):
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


MIN = Version(*MIN_VERSION)
MAX = Version(*MAX_VERSION)


class NotAcceptable(ApiError):
    status = 406
    kind = "NotAcceptable"


_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")


def _parse_value(raw: str) -> Version:
    raw = raw.strip()
    if raw.lower() == "latest":
        return MAX
    m = _VERSION_RE.match(raw)
    if not m:
        raise BadRequest(
            f"API version string {raw} format is invalid. Valid format is MajorNum.MinorNum."
        )
    return Version(int(m.group(1)), int(m.group(2)))


def _from_openstack_header(value: str) -> str | None:
    """'compute 2.60' (possibly among other services, comma separated) -> '2.60'."""
    for part in value.split(","):
        words = part.strip().split()
        if len(words) == 2 and words[0].lower() == "compute":
            return words[1]
    return None


def negotiate(headers) -> Version:
    """The version a request asks for; 2.1 when it names none. `headers` is case-insensitive."""
    raw = None
    modern = headers.get("openstack-api-version")
    if modern:
        raw = _from_openstack_header(modern)
    if raw is None:
        raw = headers.get("x-openstack-nova-api-version")
    if not raw:
        return MIN
    version = _parse_value(raw)
    if not (MIN <= version <= MAX):
        raise NotAcceptable(
            f"Version {version} is not supported by the API. Minimum is {MIN} and maximum is {MAX}."
        )
    return version


def response_headers(version: Version) -> dict[str, str]:
    return {
        "OpenStack-API-Version": f"compute {version}",
        "X-OpenStack-Nova-API-Version": str(version),
        "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
    }
