"""Developer helper: autogenerate an Alembic revision against a fresh SQLite database.

Usage: .venv/bin/python scripts/new-migration.py "what changed"
"""

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

from dockyard.db.engine import MIGRATIONS, Database

with tempfile.TemporaryDirectory() as tmp:
    db = Database(f"sqlite:///{Path(tmp) / 'm.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
        command.revision(cfg, message=sys.argv[1], autogenerate=True)
