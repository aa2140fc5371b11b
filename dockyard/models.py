"""Imports every service's models so the metadata (and Alembic) sees all tables."""

from dockyard.compute import models as compute_models  # noqa: F401
from dockyard.identity import models as identity_models  # noqa: F401
from dockyard.image import models as image_models  # noqa: F401
from dockyard.network import models as network_models  # noqa: F401
from dockyard.orchestration import models as orchestration_models  # noqa: F401
from dockyard.tasks import models as tasks_models  # noqa: F401
