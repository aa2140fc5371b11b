"""Durable operations: claim with a lease, per-target order, retry, resume after a crash."""

import threading
import time
from datetime import timedelta

import anyio
import pytest
from sqlalchemy import update

from dockyard.db import Database
from dockyard.db.base import utcnow
from dockyard.tasks import queue
from dockyard.tasks.models import Operation
from dockyard.tasks.runner import Handler, PermanentError, Runner
from tests.conftest import make_database_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path, pg_databases):
    url = make_database_url(request.param, pg_databases) or f"sqlite:///{tmp_path / 't.db'}"
    d = Database(url)
    d.migrate()
    yield d
    d.dispose()


def add(db, kind, target, payload=None, max_attempts=3):
    with db.session() as s:
        return queue.enqueue(s, kind, target, payload, max_attempts).id


def test_claim_is_exclusive_and_ordered_per_target(db):
    a1 = add(db, "k", "A")
    a2 = add(db, "k", "A")
    b1 = add(db, "k", "B")
    first = queue.claim(db, "w1", ("k",), 30)
    second = queue.claim(db, "w2", ("k",), 30)
    assert (first.id, second.id) == (a1, b1)  # A's second op waits for its first
    assert queue.claim(db, "w3", ("k",), 30) is None
    queue.finish(db, a1, "w1")
    assert queue.claim(db, "w3", ("k",), 30).id == a2
    assert queue.claim(db, "w3", ("other",), 30) is None


def test_expired_lease_is_claimed_again(db):
    op = add(db, "k", "A")
    assert queue.claim(db, "dead", ("k",), 30).id == op
    assert queue.claim(db, "w2", ("k",), 30) is None
    with db.session() as s:  # the owner died: its lease runs out
        s.execute(update(Operation).values(lease_until=utcnow() - timedelta(seconds=1)))
    again = queue.claim(db, "w2", ("k",), 30)
    assert again.id == op and again.attempts == 2
    # the dead owner can no longer finish or renew it
    assert not queue.renew(db, op, "dead", 30)
    queue.finish(db, op, "dead")
    with db.session() as s:
        assert s.get(Operation, op).state == "running"


def test_concurrent_claims_never_share_an_operation(db):
    for i in range(20):
        add(db, "k", f"t{i}")
    got: list[int] = []
    lock = threading.Lock()

    def worker(name):
        while True:
            c = queue.claim(db, name, ("k",), 30)
            if c is None:
                return
            with lock:
                got.append(c.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 20 and len(set(got)) == 20


def test_runner_retries_then_fails_and_calls_failed(db):
    calls: list[str] = []
    failed: list[str] = []

    def flaky(op):
        calls.append(op.target)
        if op.target == "perm":
            raise PermanentError("no valid host")
        if op.attempts < 2:
            raise RuntimeError("docker hiccup")

    add(db, "k", "ok", max_attempts=3)
    add(db, "k", "perm", max_attempts=3)
    runner = Runner(
        db,
        {"k": Handler(flaky, lambda op, msg: failed.append(f"{op.target}: {msg}"))},
        concurrency=2,
        lease_seconds=5,
        poll_interval=0.05,
        backoff=0.01,
    )

    async def main():
        with anyio.move_on_after(3):
            async with anyio.create_task_group() as tg:
                tg.start_soon(runner.run)
                while True:
                    await anyio.sleep(0.05)
                    with db.session() as s:
                        states = {o.target: o.state for o in s.query(Operation)}
                    if states == {"ok": "done", "perm": "failed"}:
                        tg.cancel_scope.cancel()

    start = time.monotonic()
    anyio.run(main)
    assert time.monotonic() - start < 3
    assert calls.count("ok") == 2 and calls.count("perm") == 1
    assert failed == ["perm: no valid host"]


def test_claim_batch_takes_several_in_order_one_per_target(db):
    a1 = add(db, "k", "A")
    add(db, "k", "A")  # waits for A's first
    b1 = add(db, "k", "B")
    c1 = add(db, "k", "C")
    got = queue.claim_batch(db, "w1", ("k",), 30, 10)
    assert [op.id for op in got] == [a1, b1, c1]
    assert all(op.attempts == 1 for op in got)
    assert queue.claim_batch(db, "w2", ("k",), 30, 10) == []
    assert [op.id for op in queue.claim_batch(db, "w2", ("other",), 30, 10)] == []


def test_kick_from_another_thread_wakes_the_runner_at_once(db):
    """A long poll interval, yet work enqueued (and kicked) from a thread starts at once."""
    started: list[float] = []
    runner = Runner(
        db,
        {"k": Handler(lambda op: started.append(time.monotonic()))},
        concurrency=2,
        lease_seconds=5,
        poll_interval=30,
    )

    async def main():
        with anyio.move_on_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(runner.run)
                await anyio.sleep(0.3)  # the runner found nothing and waits

                def enqueue_and_kick():
                    add(db, "k", "A")
                    return time.monotonic()

                kicked_at = await anyio.to_thread.run_sync(
                    lambda: (enqueue_and_kick(), runner.kick())[0]
                )
                while not started:
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
        return kicked_at

    kicked_at = anyio.run(main)
    assert started and started[0] - kicked_at < 5  # not the 30 s poll
