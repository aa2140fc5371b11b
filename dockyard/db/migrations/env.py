from alembic import context

import dockyard.models  # noqa: F401  (registers every table on the metadata)
from dockyard.db.base import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("dockyard runs migrations with Database.migrate()")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
