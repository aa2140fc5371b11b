"""Shared fixtures: real dockyard servers on SQLite and PostgreSQL, a real Docker engine."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cloud import Cloud, new_cloud

BACKENDS = ["sqlite", "postgresql"]


def _pg_admin_url() -> str:
    url = os.environ.get("DOCKYARD_TEST_PG_URL", "")
    if not url:
        if os.environ.get("DOCKYARD_TEST_REQUIRE_PG"):
            pytest.fail("DOCKYARD_TEST_PG_URL is not set but PostgreSQL tests are required")
        pytest.skip("needs PostgreSQL: set DOCKYARD_TEST_PG_URL (scripts/test.sh does)")
    return url


def _pg_connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    if made:
        with _pg_connect(os.environ["DOCKYARD_TEST_PG_URL"]) as conn:
            for name in made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_database_url(backend: str, pg_databases: list[str]) -> str:
    """'' for SQLite (dockyard's default file in its home), or a new empty PostgreSQL database."""
    if backend == "sqlite":
        return ""
    admin = _pg_admin_url()
    name = f"dockyard_test_{uuid.uuid4().hex[:10]}"
    with _pg_connect(admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    pg_databases.append(name)
    return admin.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=BACKENDS, scope="module")
def cloud(request, tmp_path_factory, pg_databases) -> Iterator[Cloud]:
    """A running dockyard shared by the tests of one module, per database backend."""
    url = make_database_url(request.param, pg_databases)
    c = new_cloud(tmp_path_factory.mktemp(f"dockyard-{request.param}"), url)
    c.start()
    yield c
    c.stop()


@pytest.fixture(params=BACKENDS)
def fresh_cloud(request, tmp_path: Path, pg_databases) -> Iterator[Cloud]:
    """A dockyard of the test's own (not started), for restart and bootstrap tests."""
    url = make_database_url(request.param, pg_databases)
    c = new_cloud(tmp_path / "home", url)
    yield c
    c.stop()


@pytest.fixture(scope="session", autouse=True)
def _remove_test_images_at_the_end() -> Iterator[None]:
    """Images built or delivered by tests carry the test label (it is in their config)."""
    yield
    try:
        import docker

        client = docker.from_env(timeout=60)
        for image in client.images.list(filters={"label": "dockyard.test"}):
            for tag in image.tags:
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(tag)
        client.close()
    except Exception:  # noqa: BLE001 - no engine: nothing was built
        pass
