"""The worker loop: claim operations, run their handlers in threads, keep leases alive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from dockyard.db import Database
from dockyard.tasks import queue
from dockyard.tasks.queue import Claimed

log = logging.getLogger("dockyard.tasks")


class PermanentError(Exception):
    """The operation cannot succeed by retrying; it fails at once with this message."""


class RetryLater(Exception):
    """Not an error: try again after `delay` seconds (counts as an attempt)."""

    def __init__(self, message: str, delay: float = 1.0):
        super().__init__(message)
        self.delay = delay


@dataclass(frozen=True)
class Handler:
    run: Callable[[Claimed], None]
    # called (in a thread) once the operation has failed for good
    failed: Callable[[Claimed, str], None] | None = None


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Runner:
    """Runs the operations of the given kinds, `concurrency` at a time."""

    def __init__(
        self,
        db: Database,
        handlers: dict[str, Handler],
        *,
        concurrency: int = 8,
        lease_seconds: int = 30,
        poll_interval: float = 1.0,
        backoff: float = 2.0,
    ):
        self.db = db
        self.handlers = handlers
        self.kinds = tuple(handlers)
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.backoff = backoff
        self.owner = new_owner()
        self._limiter: anyio.CapacityLimiter | None = None
        # set by kick(): the loop looks for work at once instead of at the next poll
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def kick(self) -> None:
        """Look for work now (thread-safe; called after an enqueue commits)."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return  # not running yet: its first look finds the work
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: this process is stopping
            loop.call_soon_threadsafe(wake.set)

    async def _wait(self) -> None:
        assert self._wake is not None
        with anyio.move_on_after(self.poll_interval):
            await self._wake.wait()
        self._wake.clear()  # before the claim, so a kick from now on is not lost

    async def run(self) -> None:
        self._limiter = anyio.CapacityLimiter(self.concurrency + 2)
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        slots = anyio.Semaphore(self.concurrency)
        log.info("task runner %s started for %s", self.owner, ", ".join(self.kinds))
        async with anyio.create_task_group() as tg:
            while True:
                await slots.acquire()
                # claim as many as there are free slots, in one transaction
                want = 1 + slots.value
                try:
                    ops = await anyio.to_thread.run_sync(
                        queue.claim_batch, self.db, self.owner, self.kinds, self.lease_seconds, want
                    )
                except Exception:
                    log.exception("claiming an operation failed")
                    ops = []
                if not ops:
                    slots.release()
                    await self._wait()
                    continue
                for i, op in enumerate(ops):
                    if i:
                        slots.acquire_nowait()  # free: only this loop takes slots
                    tg.start_soon(self._execute, op, slots)

    async def _execute(self, op: Claimed, slots: anyio.Semaphore) -> None:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._keep_lease, op)
                outcome = await anyio.to_thread.run_sync(self._run_one, op, limiter=self._limiter)
                tg.cancel_scope.cancel()
            log.debug("operation %s %s on %s: %s", op.id, op.kind, op.target, outcome)
        finally:
            slots.release()
            self.kick()  # the next operation on this target may be runnable now

    async def _keep_lease(self, op: Claimed) -> None:
        while True:
            await anyio.sleep(max(self.lease_seconds / 3, 0.5))
            try:
                await anyio.to_thread.run_sync(
                    queue.renew, self.db, op.id, self.owner, self.lease_seconds
                )
            except Exception:
                log.exception("renewing the lease of operation %s failed", op.id)

    def _run_one(self, op: Claimed) -> str:
        handler = self.handlers[op.kind]
        try:
            handler.run(op)
        except RetryLater as exc:
            queue.retry_later(self.db, op.id, self.owner, str(exc), exc.delay)
            return "later"
        except PermanentError as exc:
            self._give_up(op, handler, str(exc))
            return "failed"
        except Exception as exc:  # noqa: BLE001 - any other error is retried, then fails
            message = f"{type(exc).__name__}: {exc}"
            if op.attempts >= op.max_attempts:
                log.exception("operation %s %s on %s failed for good", op.id, op.kind, op.target)
                self._give_up(op, handler, message)
                return "failed"
            log.warning(
                "operation %s %s on %s failed (attempt %s of %s): %s",
                op.id,
                op.kind,
                op.target,
                op.attempts,
                op.max_attempts,
                message,
            )
            queue.retry_later(
                self.db, op.id, self.owner, message, self.backoff * 2 ** (op.attempts - 1)
            )
            return "retry"
        queue.finish(self.db, op.id, self.owner)
        return "done"

    def _give_up(self, op: Claimed, handler: Handler, message: str) -> None:
        try:
            if handler.failed is not None:
                handler.failed(op, message)
        finally:
            queue.fail(self.db, op.id, self.owner, message)
