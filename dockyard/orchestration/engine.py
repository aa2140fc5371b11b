"""The stack engine: each stack action runs as one durable operation (dockyard.tasks).

Every resource transition is committed (row + event) before the next step, and plugins are
idempotent per incarnation, so an action re-claimed after a crash walks the same graph again
and finishes it: COMPLETE resources are skipped, IN_PROGRESS ones are resumed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from dockyard.api.errors import ApiError
from dockyard.db.base import utcnow
from dockyard.orchestration import diff
from dockyard.orchestration.errors import ResourceFailure
from dockyard.orchestration.functions import FunctionError
from dockyard.orchestration.models import Event, Stack, StackResource
from dockyard.orchestration.resources import lookup_type
from dockyard.orchestration.resources.base import Context, Resource
from dockyard.orchestration.stack import Definition, pseudo_params
from dockyard.tasks import queue
from dockyard.tasks.runner import Handler, Runner

log = logging.getLogger("dockyard.orchestration.engine")

KIND = "orchestration.stack"
DEFAULT_TIMEOUT_MINS = 60


class Cancelled(Exception):
    """The action was superseded (a newer action on the stack) or timed out."""

    def __init__(self, reason: str, timed_out: bool = False):
        super().__init__(reason)
        self.timed_out = timed_out


class Failed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)


def add_event(
    session,
    stack_id: str,
    name: str,
    rtype: str,
    physical_id: str | None,
    action: str,
    status: str,
    reason: str,
    properties: dict | None = None,
) -> None:
    session.add(
        Event(
            id=str(uuid.uuid4()),
            stack_id=stack_id,
            resource_name=name,
            physical_id=physical_id or "",
            resource_type=rtype,
            action=action,
            status=status,
            reason=reason,
            properties=properties or {},
            created_at=utcnow(),
        )
    )


MAX_EVENTS = 1000


def purge_events(session, stack_id: str, keep: int = MAX_EVENTS) -> None:
    """Keep the newest `keep` events of a stack (Heat's max_events_per_stack)."""
    cutoff = session.scalar(
        select(Event.seq)
        .where(Event.stack_id == stack_id)
        .order_by(Event.seq.desc())
        .offset(keep)
        .limit(1)
    )
    if cutoff is not None:
        session.execute(delete(Event).where(Event.stack_id == stack_id, Event.seq <= cutoff))


def set_stack_state(session, stack: Stack, action: str, status: str, reason: str) -> None:
    stack.action, stack.status, stack.status_reason = action, status, reason
    stack.updated_at = utcnow() if action != "CREATE" else stack.updated_at
    add_event(session, stack.id, stack.name, "OS::Heat::Stack", stack.id, action, status, reason)


def set_state_if_current(
    db, stack: Stack, generation: int, action: str, status: str, reason: str, **changes: Any
) -> bool:
    """UPDATE the stack's state WHERE its generation is still `generation`; the event only
    when it was. Read-then-write would race the API bumping the generation."""
    values = {"action": action, "status": status, "status_reason": reason, **changes}
    if action != "CREATE":
        values.setdefault("updated_at", utcnow())
    with db.session() as s:
        done = s.execute(
            update(Stack)
            .where(Stack.id == stack.id, Stack.generation == generation)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if done.rowcount != 1:
            return False
        add_event(s, stack.id, stack.name, "OS::Heat::Stack", stack.id, action, status, reason)
        s.flush()
        purge_events(s, stack.id)
        return True


def resource_row(db, stack_id: str, name: str) -> StackResource | None:
    """One resource's row as it is now (detached)."""
    with db.session() as s:
        found = s.scalars(
            select(StackResource).where(
                StackResource.stack_id == stack_id, StackResource.name == name
            )
        ).first()
        if found is not None:
            s.expunge(found)
        return found


def begin_action(session, stack: Stack, action: str, roles: list[str] | None = None) -> dict:
    """Mark a new action IN_PROGRESS (superseding any running one); returns the op payload.
    `roles`: those of the user asking, which the action's resources act with (an update by a
    member of a stack an admin made must not act as admin)."""
    session.flush()
    stack.generation = Stack.generation + 1  # in SQL: concurrent bumps cannot collapse
    session.flush()
    # Re-read the whole row, not just the generation: a running action may have committed its
    # end state before the bump, and a stale copy would skip writing the fields we set below
    # (the ORM writes only what differs from what it loaded), mixing two actions' states.
    session.refresh(stack)
    if roles is not None:
        stack.roles = sorted(roles)
    stack.action_started_at = utcnow()
    set_stack_state(session, stack, action, "IN_PROGRESS", f"Stack {action} started")
    payload = {"action": action, "generation": stack.generation}
    queue.enqueue(session, KIND, stack.id, payload, max_attempts=3)
    return payload


class Lookup:
    """Resources as they are now: references from rows, attributes live from the plugins."""

    def __init__(self, engine: Engine, stack: Stack, defn: Definition, ctx: Context):
        self.engine, self.stack, self.defn, self.ctx = engine, stack, defn, ctx

    def _row(self, name: str) -> StackResource | None:
        return resource_row(self.engine.db, self.stack.id, name)

    def plugin(self, name: str) -> Resource | None:
        row = self._row(name)
        if row is None:
            return None
        cls = lookup_type(self.engine.registry, row.type)
        if cls is None:
            return None
        return cls(
            self.ctx,
            name,
            row.properties or {},
            physical_id=row.physical_id,
            data=row.data,
            incarnation=row.incarnation,
        )

    def ref(self, name: str) -> Any:
        p = self.plugin(name)
        return p.reference() if p else name

    def attr(self, name: str, attr: str) -> Any:
        p = self.plugin(name)
        if p is None or not p.physical_id:
            return None
        try:
            return p.attribute(attr)
        except FunctionError:
            raise  # e.g. a nested stack's output error: the caller reports it
        except Exception:  # noqa: BLE001 - an unreadable attribute is null
            log.exception("attribute %s of %s", attr, name)
            return None

    def all_attrs(self, name: str) -> dict:
        p = self.plugin(name)
        return p.all_attributes() if p and p.physical_id else {}


class Engine:
    def __init__(self, runtime, registry: dict[str, type[Resource]], services: Any = None):
        self.runtime = runtime
        self.db = runtime.db
        self.settings = runtime.settings
        self.registry = registry
        self.services = services
        self.runner = Runner(
            self.db,
            {KIND: Handler(run=self._run_op, failed=self._op_failed)},
            concurrency=max(2, getattr(self.settings, "heat_max_stack_actions", 8)),
            lease_seconds=self.settings.task_lease_seconds,
            poll_interval=0.5,
        )

    # ---- contexts and definitions ---------------------------------------------------

    def context(self, stack: Stack) -> Context:
        return Context(
            project_id=stack.project_id,
            user_id=stack.user_id,
            user_name=stack.username,
            roles=list(stack.roles or []),
            stack_id=stack.id,
            stack_name=stack.name,
            settings=self.settings,
            services=self.services,
        )

    def definition(self, stack: Stack, new: bool = False) -> Definition:
        tpl = stack.new_template if new and stack.new_template is not None else stack.template
        env = (
            stack.new_environment
            if new and stack.new_environment is not None
            else stack.environment
        )
        files = stack.new_files if new and stack.new_files is not None else stack.files
        return Definition.build(
            tpl,
            files,
            env or {},
            {},
            pseudo_params(stack.name, stack.id, stack.project_id),
            self.registry,
            custom=None,
        )

    # ---- the durable operation ------------------------------------------------------

    def _run_op(self, op) -> None:
        with self.db.session() as s:
            stack = s.get(Stack, op.target)
            if stack is None:
                return
            s.expunge(stack)
        if stack.generation != op.payload.get("generation"):
            return  # superseded by a newer action
        if stack.status != "IN_PROGRESS":
            return  # this action already ended (a crash came after its last write)
        action = op.payload["action"]
        run = Run(self, stack, op.payload["generation"])
        if stack.action == "ROLLBACK":  # cancel_update, or resumed in the middle of a rollback
            action = "ROLLBACK_UPDATE" if action in ("UPDATE", "ROLLBACK") else "ROLLBACK_CREATE"
        try:
            {
                "ROLLBACK_CREATE": run.resume_rollback_create,
                "ROLLBACK_UPDATE": lambda: run.update(rollback=True),
                "CREATE": run.create,
                "DELETE": run.delete,
                "UPDATE": run.update,
                "SUSPEND": run.suspend,
                "RESUME": run.resume,
                "CHECK": run.check,
            }[action]()
        except Cancelled:
            log.info("stack %s %s superseded", stack.id, action)

    def _op_failed(self, op, message: str) -> None:
        with self.db.session() as s:
            stack = s.get(Stack, op.target)
            if stack is not None:
                s.expunge(stack)
        if stack is not None:
            set_state_if_current(
                self.db, stack, op.payload.get("generation"), op.payload["action"], "FAILED",
                message,
            )  # fmt: skip


class Run:
    """One action on one stack, as one worker runs it."""

    def __init__(self, engine: Engine, stack: Stack, generation: int):
        self.engine = engine
        self.db = engine.db
        self.stack = stack
        self.generation = generation
        self.ctx = engine.context(stack)
        self.cancel = threading.Event()
        self.cancel_reason = ""
        self.timed_out = False
        mins = stack.timeout_mins or DEFAULT_TIMEOUT_MINS
        self.deadline = stack.action_started_at + timedelta(minutes=mins)
        self.parallel = max(1, getattr(engine.settings, "heat_max_parallel", 16))

    # ---- helpers --------------------------------------------------------------------

    def _still_current(self) -> bool:
        with self.db.session() as s:
            gen = s.scalar(select(Stack.generation).where(Stack.id == self.stack.id))
        return gen == self.generation

    def checkpoint(self) -> None:
        if self.cancel.is_set():
            raise Cancelled(self.cancel_reason, self.timed_out)
        if utcnow() > self.deadline:
            self.timed_out = True
            self.cancel_reason = "timed out"
            self.cancel.set()
            raise Cancelled("timed out", True)

    def _watch(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            try:
                if not self._still_current():
                    self.cancel_reason = "superseded"
                    self.cancel.set()
                    return
            except Exception:  # noqa: BLE001
                log.exception("watching stack %s", self.stack.id)

    def finish(self, action: str, status: str, reason: str, **changes: Any) -> bool:
        """Set the stack's state (and columns) only if this action is still the current one:
        one conditional UPDATE, so an action the API superseded meanwhile writes nothing."""
        return set_state_if_current(
            self.db, self.stack, self.generation, action, status, reason, **changes
        )

    def row(self, name: str) -> StackResource | None:
        return resource_row(self.db, self.stack.id, name)

    def rows(self) -> dict[str, StackResource]:
        with self.db.session() as s:
            rows = list(
                s.scalars(select(StackResource).where(StackResource.stack_id == self.stack.id))
            )
            for r in rows:
                s.expunge(r)
        return {r.name: r for r in rows}

    def ensure_rows(self, defn: Definition) -> None:
        with self.db.session() as s:
            have = set(
                s.scalars(select(StackResource.name).where(StackResource.stack_id == self.stack.id))
            )
            for name in defn.order:
                if name not in have:
                    r = defn.active[name]
                    s.add(
                        StackResource(
                            id=str(uuid.uuid4()),
                            stack_id=self.stack.id,
                            name=name,
                            type=r.type,
                            action="INIT",
                            status="COMPLETE",
                            status_reason="",
                            properties={},
                            data={},
                            metadata_={},
                            deletion_policy=r.deletion_policy,
                            created_at=utcnow(),
                        )
                    )

    def transition(
        self, name: str, action: str, status: str, reason: str = "state changed", **changes: Any
    ) -> StackResource:
        with self.db.session() as s:
            row = s.scalars(
                select(StackResource).where(
                    StackResource.stack_id == self.stack.id, StackResource.name == name
                )
            ).one()
            for k, v in changes.items():
                setattr(row, k, v)
            row.action, row.status, row.status_reason = action, status, reason
            row.updated_at = utcnow()
            add_event(
                s,
                self.stack.id,
                name,
                row.type,
                row.physical_id,
                action,
                status,
                reason,
                row.properties,
            )
            s.flush()
            s.expunge(row)
            return row

    def save(self, name: str, **changes: Any) -> None:
        with self.db.session() as s:
            row = s.scalars(
                select(StackResource).where(
                    StackResource.stack_id == self.stack.id, StackResource.name == name
                )
            ).one()
            for k, v in changes.items():
                setattr(row, k, v)

    def plugin_for(
        self, row: StackResource, props: dict | None = None, defn: Definition | None = None
    ) -> Resource:
        cls = (defn.registry.get(row.type) if defn else None) or lookup_type(
            self.engine.registry, row.type
        )
        if cls is None:
            raise ResourceFailure(f"The Resource Type ({row.type}) could not be found.")
        return cls(
            self.ctx,
            row.name,
            row.properties if props is None else props,
            physical_id=row.physical_id,
            data=row.data,
            incarnation=row.incarnation,
        )

    def poll(self, plugin: Resource, check) -> None:
        while True:
            self.checkpoint()
            if check():
                return
            time.sleep(plugin.poll_interval)

    def walk(self, names: list[str], deps: dict[str, set[str]], step) -> list[tuple[str, str]]:
        """Run step(name) for every name once its deps are done, `parallel` at a time.

        Returns the failures as (name, reason); after the first failure nothing new starts.
        """
        done: set[str] = set()
        failures: list[tuple[str, str]] = []
        running: dict[Future, str] = {}
        pending = list(names)
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(stop,), daemon=True)
        watcher.start()
        try:
            with ThreadPoolExecutor(max_workers=self.parallel) as pool:
                while pending or running:
                    if not failures and not self.cancel.is_set():
                        for name in list(pending):
                            if len(running) >= self.parallel:
                                break
                            if deps.get(name, set()) <= done:
                                pending.remove(name)
                                running[pool.submit(step, name)] = name
                    if not running:
                        break
                    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for fut in finished:
                        name = running.pop(fut)
                        exc = fut.exception()
                        if exc is None:
                            done.add(name)
                        elif isinstance(exc, (Cancelled, Failed)):
                            failures.append((name, str(exc)))
                        else:
                            log.exception("resource %s", name, exc_info=exc)
                            failures.append((name, f"{type(exc).__name__}: {exc}"))
        finally:
            stop.set()
        return failures

    # ---- per-resource steps ---------------------------------------------------------

    def _fail_reason(self, name: str, exc: Exception) -> str:
        if isinstance(exc, ResourceFailure):
            return f"{exc.kind}: resources.{name}: {exc.message}"
        if isinstance(exc, ApiError):
            return f"{exc.kind}: resources.{name}: {exc.message}"
        return f"{type(exc).__name__}: resources.{name}: {exc}"

    def create_one(self, defn: Definition, name: str, lookup: Lookup) -> None:
        row = self.row(name)
        if row.action == "CREATE" and row.status == "COMPLETE":
            return
        self.checkpoint()
        try:
            props = defn.properties(name, lookup)
            metadata = defn.metadata(name, lookup)
            resuming = row.action == "CREATE" and row.status == "IN_PROGRESS"
            if not resuming:
                row = self.transition(
                    name,
                    "CREATE",
                    "IN_PROGRESS",
                    incarnation=str(uuid.uuid4()),
                    properties=props,
                    metadata_=metadata,
                    physical_id=None,
                    data={},
                    type=defn.active[name].type,
                    deletion_policy=defn.active[name].deletion_policy,
                )
            plugin = self.plugin_for(row, props, defn)
            plugin.persist = lambda: self.save(name, data=plugin.data)
            plugin.resuming = resuming
            plugin.validate()
            if not row.physical_id:
                external = defn.active[name].external_id
                pid = external or plugin.create()
                if external:
                    plugin.data["external_id"] = external  # adopted: never deleted by us
                plugin.physical_id = pid
                self.save(name, physical_id=pid, data=plugin.data)
            self.poll(plugin, plugin.check_create)
            self.transition(name, "CREATE", "COMPLETE", data=plugin.data)
        except Cancelled as exc:
            reason = "CREATE timed out" if exc.timed_out else "CREATE aborted"
            self._mark_failed(name, "CREATE", reason)
            raise
        except Exception as exc:  # noqa: BLE001 - every failure lands on the resource
            reason = self._fail_reason(name, exc)
            self._mark_failed(name, "CREATE", reason)
            raise Failed(reason) from exc

    def _mark_failed(self, name: str, action: str, reason: str) -> None:
        # also when superseded: the next action on this stack only starts once this one has
        # ended (operations on one stack run in order), and it must not find IN_PROGRESS
        try:
            self.transition(name, action, "FAILED", reason)
        except Exception:  # noqa: BLE001
            log.exception("marking %s failed", name)

    def delete_one(self, name: str, action: str = "DELETE") -> None:
        row = self.row(name)
        if row is None or (row.action == "DELETE" and row.status == "COMPLETE"):
            return
        self.checkpoint()
        if row.action == "INIT" and not row.replaced:
            self.transition(name, "DELETE", "COMPLETE")
            return
        if not (row.action == "DELETE" and row.status == "IN_PROGRESS"):
            row = self.transition(name, "DELETE", "IN_PROGRESS")
        try:
            external = (row.data or {}).get("external_id")
            if (
                row.deletion_policy != "Retain"
                and lookup_type(self.engine.registry, row.type) is not None
                and not external
            ):
                self._delete_physical(row)
            if row.replaced:
                self._delete_replaced(row)
            self.transition(name, "DELETE", "COMPLETE")
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001
            reason = self._fail_reason(name, exc)
            self._mark_failed(name, "DELETE", reason)
            raise Failed(reason) from exc

    def _delete_physical(self, row: StackResource) -> None:
        plugin = self.plugin_for(row)
        plugin.delete()
        self.poll(plugin, plugin.check_delete)

    def _delete_replaced(self, row: StackResource) -> None:
        old = row.replaced or {}
        ghost = StackResource(
            name=row.name,
            type=old.get("type", row.type),
            physical_id=old.get("physical_id"),
            properties=old.get("properties") or {},
            data=old.get("data") or {},
            incarnation=old.get("incarnation", ""),
            deletion_policy=row.deletion_policy,
        )
        if ghost.deletion_policy != "Retain" and lookup_type(self.engine.registry, ghost.type):
            self._delete_physical(ghost)
        self.save(row.name, replaced=None)

    # ---- actions --------------------------------------------------------------------

    def create(self) -> None:
        try:
            defn = self.engine.definition(self.stack)
        except ApiError as exc:
            self.finish("CREATE", "FAILED", exc.message)
            return
        self.ensure_rows(defn)
        lookup = Lookup(self.engine, self.stack, defn, self.ctx)
        failures = self.walk(defn.order, defn.deps, lambda n: self.create_one(defn, n, lookup))
        if not failures:
            self.finish("CREATE", "COMPLETE", "Stack CREATE completed successfully")
            return
        if self.cancel_reason == "superseded":
            raise Cancelled("superseded")
        reason = (
            "Create timed out" if self.timed_out else f"Resource CREATE failed: {failures[0][1]}"
        )
        if not self.finish("CREATE", "FAILED", reason):
            return
        if not self.stack.disable_rollback:
            self.rollback_create()

    def resume_rollback_create(self) -> None:
        failures = self._delete_all()
        if failures:
            self.finish("ROLLBACK", "FAILED", f"Resource DELETE failed: {failures[0][1]}")
        else:
            self.finish("ROLLBACK", "COMPLETE", "Stack ROLLBACK completed successfully")

    def rollback_create(self) -> None:
        if not self.finish(
            "ROLLBACK", "IN_PROGRESS", "Stack ROLLBACK started", action_started_at=utcnow()
        ):
            return
        self.cancel.clear()
        self.timed_out = False
        self.deadline = utcnow() + timedelta(minutes=self.stack.timeout_mins or 60)
        failures = self._delete_all()
        if failures:
            self.finish("ROLLBACK", "FAILED", f"Resource DELETE failed: {failures[0][1]}")
        else:
            self.finish("ROLLBACK", "COMPLETE", "Stack ROLLBACK completed successfully")

    def _delete_all(self) -> list[tuple[str, str]]:
        rows = self.rows()
        try:
            deps = self.engine.definition(self.stack).deps
        except ApiError:
            deps = {}
        reverse: dict[str, set[str]] = {n: set() for n in rows}
        for n, needs in deps.items():
            for m in needs:
                if m in reverse and n in rows:
                    reverse[m].add(n)
        return self.walk(sorted(rows), reverse, self.delete_one)

    def delete(self) -> None:
        failures = self._delete_all()
        if failures:
            if self.cancel_reason == "superseded":
                raise Cancelled("superseded")
            reason = (
                "Delete timed out"
                if self.timed_out
                else f"Resource DELETE failed: {failures[0][1]}"
            )
            self.finish("DELETE", "FAILED", reason)
            return
        self.finish(
            "DELETE", "COMPLETE", "Stack DELETE completed successfully", deleted_at=utcnow()
        )

    def update(self, rollback: bool = False) -> None:
        action = "ROLLBACK" if rollback else "UPDATE"
        try:
            defn = self.engine.definition(self.stack, new=not rollback)
        except ApiError as exc:
            self.finish(action, "FAILED", exc.message)
            return
        self.ensure_rows(defn)
        lookup = Lookup(self.engine, self.stack, defn, self.ctx)
        failures = self.walk(defn.order, defn.deps, lambda n: self.update_one(defn, n, lookup))
        if not failures:
            rows = self.rows()
            gone = [n for n in rows if n not in defn.active]
            old_deps: dict[str, set[str]] = {}
            reverse = {n: set() for n in gone}
            for n, needs in old_deps.items():
                for m in needs:
                    if m in reverse and n in reverse:
                        reverse[m].add(n)
            failures = self.walk(gone, reverse, self._remove)
        if not failures:
            leftovers = [n for n, r in self.rows().items() if r.replaced]
            failures = self.walk(leftovers, {}, self._finish_replace)
        if not failures:
            changes: dict[str, Any] = {}
            if not rollback:
                changes = {
                    "template": self.stack.new_template,
                    "environment": self.stack.new_environment,
                    "files": self.stack.new_files,
                }
            changes |= {"new_template": None, "new_environment": None, "new_files": None}
            self.finish(action, "COMPLETE", f"Stack {action} completed successfully", **changes)
            return
        if self.cancel_reason == "superseded":
            raise Cancelled("superseded")
        reason = (
            f"{action.title()} timed out"
            if self.timed_out
            else f"Resource {action} failed: {failures[0][1]}"
        )
        if not self.finish(action, "FAILED", reason):
            return
        if not rollback and not self.stack.disable_rollback:
            if not self.finish("ROLLBACK", "IN_PROGRESS", "Stack ROLLBACK started"):
                return
            self.cancel.clear()
            self.timed_out = False
            self.deadline = utcnow() + timedelta(minutes=self.stack.timeout_mins or 60)
            self.update(rollback=True)

    def _remove(self, name: str) -> None:
        self.delete_one(name)
        found = self.row(name)
        if found is None:
            return
        with self.db.session() as s:
            row = s.get(StackResource, found.id)
            if row is not None:
                s.delete(row)

    def _finish_replace(self, name: str) -> None:
        row = self.row(name)
        try:
            self._delete_replaced(row)
        except Exception as exc:  # noqa: BLE001
            raise Failed(self._fail_reason(name, exc)) from exc

    def update_one(self, defn: Definition, name: str, lookup: Lookup) -> None:
        row = self.row(name)
        new_type = defn.active[name].type
        if row.action == "INIT" or (row.action == "DELETE" and row.status == "COMPLETE"):
            self.create_one(defn, name, lookup)
            return
        if row.action == "CREATE" and row.status == "IN_PROGRESS":
            self.create_one(defn, name, lookup)  # resume a replacement cut short
            return
        try:
            props = defn.properties(name, lookup)
        except Exception as exc:  # noqa: BLE001
            reason = self._fail_reason(name, exc)
            self._mark_failed(name, "UPDATE", reason)
            raise Failed(reason) from exc
        if defn.active[name].external_id != (row.data or {}).get("external_id"):
            reason = (
                f"NotSupported: resources.{name}: Update to property external_id of {name} "
                f"({row.type}) is not supported"
            )
            self._mark_failed(name, "UPDATE", reason)
            raise Failed(reason)
        old = self.plugin_for(row, defn=defn)
        current = diff.Current(row.type, row.properties or {}, row.action, row.status)
        kind, changed = diff.classify(current, new_type, props, old.needs_replace)
        if kind == diff.UNCHANGED:
            return
        if kind == diff.UPDATED:
            self.checkpoint()
            self.transition(name, "UPDATE", "IN_PROGRESS")
            try:
                plugin = self.plugin_for(row, props, defn)
                plugin.update(props, changed)
                self.poll(plugin, plugin.check_update)
                self.transition(name, "UPDATE", "COMPLETE", properties=props, data=plugin.data)
            except Cancelled:
                self._mark_failed(name, "UPDATE", "UPDATE aborted")
                raise
            except Exception as exc:  # noqa: BLE001
                reason = self._fail_reason(name, exc)
                self._mark_failed(name, "UPDATE", reason)
                raise Failed(reason) from exc
            return
        # replace: the old physical resource goes first only when both cannot coexist
        if old.physical_id and old.replace_delete_first():
            self.delete_one(name)
            self.create_one(defn, name, lookup)
            return
        if old.physical_id and not row.replaced and row.action != "DELETE":
            self.save(
                name,
                replaced={
                    "type": row.type,
                    "physical_id": row.physical_id,
                    "properties": row.properties,
                    "data": row.data,
                    "incarnation": row.incarnation,
                },
                physical_id=None,
                action="INIT",
                status="COMPLETE",
            )
        else:
            self.save(name, action="INIT", status="COMPLETE", physical_id=None)
        self.create_one(defn, name, lookup)

    def _simple(self, action: str, reverse: bool) -> None:
        defn = self.engine.definition(self.stack)
        rows = self.rows()
        names = [n for n in defn.order if n in rows]
        deps: dict[str, set[str]] = {}
        for n in names:
            deps.setdefault(n, set())
            for m in defn.deps.get(n, set()):
                if reverse:
                    deps.setdefault(m, set()).add(n)
                else:
                    deps[n].add(m)
        notes: list[str] = []

        def step(name: str) -> None:
            row = self.row(name)
            if row.action == action and row.status == "COMPLETE":
                return
            if action == "RESUME" and row.action not in ("SUSPEND", "RESUME"):
                return
            self.transition(name, action, "IN_PROGRESS")
            plugin = self.plugin_for(row)
            try:
                if action == "CHECK":
                    if not plugin.supports_check:
                        notes.append(name)
                        self.transition(
                            name, "CHECK", "COMPLETE", f"CHECK not supported for {row.type}"
                        )
                        return
                    plugin.check()
                else:
                    getattr(plugin, action.lower())()
                    self.poll(plugin, getattr(plugin, f"check_{action.lower()}"))
                self.transition(name, action, "COMPLETE")
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001
                reason = self._fail_reason(name, exc)
                self._mark_failed(name, action, reason)
                raise Failed(reason) from exc

        failures = self.walk(names, deps, step)
        if failures:
            self.finish(action, "FAILED", f"Resource {action} failed: {failures[0][1]}")
            return
        reason = f"Stack {action} completed successfully"
        if action == "CHECK" and notes:
            reason += ". 'CHECK' not fully supported (see resources)"
        self.finish(action, "COMPLETE", reason)

    def suspend(self) -> None:
        self._simple("SUSPEND", reverse=True)

    def resume(self) -> None:
        self._simple("RESUME", reverse=False)

    def check(self) -> None:
        self._simple("CHECK", reverse=False)
