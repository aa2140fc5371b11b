"""What every service of one dockyard process shares, passed explicitly (no globals)."""

from __future__ import annotations

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
