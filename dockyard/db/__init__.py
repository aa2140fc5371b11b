"""Persistence: one declarative base, an engine per process, Alembic migrations."""

from dockyard.db.base import Base
from dockyard.db.engine import Database

__all__ = ["Base", "Database"]
