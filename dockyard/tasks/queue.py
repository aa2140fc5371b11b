"""Enqueue, claim (lease), renew, finish, retry and fail operations.

Claiming is safe with several processes: on PostgreSQL the candidates are read with
`SELECT ... FOR UPDATE SKIP LOCKED`; on every backend the claim itself is a compare-and-set
UPDATE, so an operation is only ever held by one owner at a time. An owner that dies stops
renewing its lease; once the lease runs out the operation is claimed again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from dockyard.db import Database
from dockyard.db.base import utcnow
from dockyard.tasks.models import DONE, FAILED, PENDING, RUNNING, Operation


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    target: str
    payload: dict
    attempts: int  # including this one
    max_attempts: int


def enqueue(
    session: Session, kind: str, target: str, payload: dict | None = None, max_attempts: int = 5
) -> Operation:
    """Add an operation in the caller's transaction (it runs only if that commits)."""
    op = Operation(
        kind=kind,
        target=target,
        payload=payload or {},
        max_attempts=max_attempts,
        state=PENDING,
        run_after=utcnow(),
    )
    session.add(op)
    session.flush()
    return op


def active_for(session: Session, target: str) -> list[Operation]:
    """Operations on the target that are not finished yet, oldest first."""
    return list(
        session.scalars(
            select(Operation)
            .where(Operation.target == target, Operation.state.in_((PENDING, RUNNING)))
            .order_by(Operation.id)
        )
    )


def _claimable(now, kinds: tuple[str, ...]):
    earlier = aliased(Operation)
    blocked = exists().where(
        earlier.target == Operation.target,
        earlier.id < Operation.id,
        earlier.state.in_((PENDING, RUNNING)),
    )
    ready = or_(
        and_(Operation.state == PENDING, Operation.run_after <= now),
        and_(Operation.state == RUNNING, Operation.lease_until < now),
    )
    return and_(Operation.kind.in_(kinds), ready, ~blocked)


def claim(
    db: Database, owner: str, kinds: tuple[str, ...], lease_seconds: int, limit: int = 4
) -> Claimed | None:
    """Take the oldest runnable operation of these kinds, or None."""
    got = claim_batch(db, owner, kinds, lease_seconds, 1, candidates=limit)
    return got[0] if got else None


def claim_batch(
    db: Database,
    owner: str,
    kinds: tuple[str, ...],
    lease_seconds: int,
    count: int,
    candidates: int = 4,
) -> list[Claimed]:
    """Take up to `count` of the oldest runnable operations of these kinds in one transaction
    (a busy worker with free slots claims them with one round trip, not one each)."""
    now = utcnow()
    won: list[int] = []
    with db.session() as session:
        q = (
            select(Operation.id)
            .where(_claimable(now, kinds))
            .order_by(Operation.id)
            .limit(max(count, candidates))
        )
        if session.bind.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True, of=Operation)
        ids = list(session.scalars(q))
        for op_id in ids:
            if len(won) >= count:
                break
            result = session.execute(
                update(Operation)
                .where(
                    Operation.id == op_id,
                    or_(
                        Operation.state == PENDING,
                        and_(Operation.state == RUNNING, Operation.lease_until < now),
                    ),
                )
                .values(
                    state=RUNNING,
                    owner=owner,
                    lease_until=now + timedelta(seconds=lease_seconds),
                    attempts=Operation.attempts + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:
                won.append(op_id)
        if not won:
            return []
        rows = session.scalars(
            select(Operation)
            .where(Operation.id.in_(won))
            .order_by(Operation.id)
            .execution_options(populate_existing=True)
        ).all()
        return [
            Claimed(op.id, op.kind, op.target, dict(op.payload or {}), op.attempts, op.max_attempts)
            for op in rows
        ]


def _owned(op_id: int, owner: str):
    return and_(Operation.id == op_id, Operation.owner == owner, Operation.state == RUNNING)


def renew(db: Database, op_id: int, owner: str, lease_seconds: int) -> bool:
    """Extend the lease; False when the operation is no longer ours."""
    now = utcnow()
    with db.session() as session:
        result = session.execute(
            update(Operation)
            .where(_owned(op_id, owner))
            .values(lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def finish(db: Database, op_id: int, owner: str) -> None:
    now = utcnow()
    with db.session() as session:
        session.execute(
            update(Operation)
            .where(_owned(op_id, owner))
            .values(state=DONE, lease_until=None, finished_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )


def fail(db: Database, op_id: int, owner: str, error: str) -> None:
    now = utcnow()
    with db.session() as session:
        session.execute(
            update(Operation)
            .where(_owned(op_id, owner))
            .values(state=FAILED, lease_until=None, error=error, finished_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )


def retry_later(db: Database, op_id: int, owner: str, error: str, delay: float) -> None:
    now = utcnow()
    with db.session() as session:
        session.execute(
            update(Operation)
            .where(_owned(op_id, owner))
            .values(
                state=PENDING,
                owner=None,
                lease_until=None,
                error=error,
                run_after=now + timedelta(seconds=delay),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )


def purge_finished(session: Session, older_than: timedelta) -> int:
    """Delete finished operations older than the given age; returns how many."""
    cutoff = utcnow() - older_than
    ops = session.scalars(
        select(Operation).where(Operation.state.in_((DONE, FAILED)), Operation.finished_at < cutoff)
    ).all()
    for op in ops:
        session.delete(op)
    return len(ops)
