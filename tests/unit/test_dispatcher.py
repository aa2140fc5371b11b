"""The cross-cutting layer: request ids, generic 500s, body limits, unknown paths."""

import json
import logging

import pytest
from fastapi import Body, FastAPI
from starlette.testclient import TestClient

from dockyard.api.errors import install_error_handlers, nova_error
from dockyard.api.service import ServiceApp
from dockyard.app import Dockyard, build_runtime
from dockyard.config import Settings


def _service() -> ServiceApp:
    app = FastAPI()
    install_error_handlers(app, nova_error)

    @app.get("/boom")
    def boom() -> dict:
        raise RuntimeError("secret internals")

    @app.post("/echo")
    def echo(body: dict = Body()) -> dict:
        return body

    return ServiceApp(prefix="/svc", app=app, render_error=nova_error, is_public=lambda m, p: True)


@pytest.fixture
def client(tmp_path):
    settings = Settings(home=tmp_path, max_body_bytes=1000)
    runtime = build_runtime(settings)
    runtime.db.migrate()
    app = Dockyard(runtime, [_service()])
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_every_response_has_a_request_id(client):
    for path in ("/svc/echo", "/nowhere", "/healthcheck"):
        r = client.get(path)
        assert r.headers["x-openstack-request-id"].startswith("req-")


def test_unhandled_error_is_a_generic_500_and_logged_with_the_request_id(client, caplog):
    with caplog.at_level(logging.ERROR):
        r = client.get("/svc/boom")
    assert r.status_code == 500
    assert "secret internals" not in r.text
    rid = r.headers["x-openstack-request-id"]
    assert rid in r.json()["computeFault"]["message"]
    assert any("secret internals" in (rec.exc_text or "") for rec in caplog.records)


def test_body_over_the_limit_is_413_in_the_service_shape(client):
    r = client.post("/svc/echo", content=json.dumps({"x": "a" * 2000}))
    assert r.status_code == 413
    assert r.json()["overLimit"]["code"] == 413


def test_chunked_body_over_the_limit_is_413(client):
    def chunks():
        for _ in range(10):
            yield b" " * 200

    r = client.post("/svc/echo", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_malformed_json_is_400_naming_the_problem(client):
    r = client.post("/svc/echo", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["badRequest"]["message"]


def test_unknown_service_is_404_and_health_is_ok(client):
    assert client.get("/nowhere").status_code == 404
    r = client.get("/healthcheck")
    assert r.status_code == 200 and r.json()["database"] is True
