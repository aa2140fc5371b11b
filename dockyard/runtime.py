"""What every service of one dockyard process shares, passed explicitly (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dockyard.config import Settings
from dockyard.db import Database
from dockyard.identity.catalog import ServiceEntry
from dockyard.identity.keys import KeyRing


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keys: KeyRing
    catalog: list[ServiceEntry] = field(default_factory=list)
    # wake a service's background worker now, by name ("compute"): set by the service
    wakers: dict[str, Callable[[], None]] = field(default_factory=dict)
