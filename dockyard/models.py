"""Imports every service's models so the metadata (and Alembic) sees all tables."""

from dockyard.identity import models as identity_models  # noqa: F401
