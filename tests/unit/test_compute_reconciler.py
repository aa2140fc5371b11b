"""The reconciler's repairs of inconsistent rows (no Docker needed for these)."""

from datetime import timedelta
from types import SimpleNamespace

import pytest

from dockyard.compute.models import Server
from dockyard.compute.reconciler import Reconciler
from dockyard.config import Settings
from dockyard.db import Database
from dockyard.db.base import utcnow
from dockyard.tasks import queue


@pytest.fixture
def rec(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    db.migrate()
    kicked = []
    compute = SimpleNamespace(
        db=db,
        settings=Settings(home=tmp_path),
        runner=SimpleNamespace(kick=lambda: kicked.append(1)),
    )
    r = Reconciler(compute)
    r.kicked = kicked
    yield r
    db.dispose()


def server(sid, vm, task, age=3600) -> Server:
    return Server(
        id=sid,
        name=sid,
        project_id="p",
        user_id="u",
        flavor_id="1",
        flavor={},
        vm_state=vm,
        task_state=task,
        power_state=1,
        host="local",
        meta={},
        security_groups=[],
        requested_networks=[],
        port_ids=[],
        addresses={},
        tags=[],
        updated_at=utcnow() - timedelta(seconds=age),
    )


def test_unstick_lost_operations(rec):
    with rec.db.session() as s:
        rows = {
            "build": server("build", "building", "spawning"),
            "stop": server("stop", "active", "powering-off"),
            "del": server("del", "active", "deleting"),
            "snap": server("snap", "active", "image_snapshot", age=60),
        }
        for row in rows.values():
            s.add(row)
        s.flush()
        for row in rows.values():
            rec._unstick(s, row)
    with rec.db.session() as s:
        build, stop, dele, snap = (s.get(Server, k) for k in ("build", "stop", "del", "snap"))
        assert (build.vm_state, build.task_state) == ("error", None)
        assert "interrupted" in build.fault["message"]
        assert (stop.vm_state, stop.task_state) == ("active", None)
        assert dele.task_state == "deleting"  # deleted again, by a new operation
        assert [op.kind for op in queue.active_for(s, "del")] == ["compute.delete"]
        # snapshots are durable operations too: busy with none in flight is a lost one
        assert (snap.vm_state, snap.task_state) == ("active", None)
    assert rec.kicked == [1]
