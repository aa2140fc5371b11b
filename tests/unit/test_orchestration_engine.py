"""The stack engine on a real (SQLite) database, with the OS::Heat test resources: ordering,
parallelism, rollback, timeouts, update by diff, resume after a crash. No Docker, no server."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from dockyard.app import build_runtime
from dockyard.config import Settings
from dockyard.db.base import utcnow
from dockyard.orchestration import diff
from dockyard.orchestration import engine as eng
from dockyard.orchestration.models import Event, Stack, StackResource
from dockyard.orchestration.resources import registry
from dockyard.tasks.queue import Claimed


@pytest.fixture
def engine(tmp_path):
    runtime = build_runtime(Settings(home=tmp_path, heat_max_parallel=4))
    runtime.db.migrate()
    yield eng.Engine(runtime, registry())
    runtime.db.dispose()


def make_stack(engine, template, *, params=None, rollback=False, timeout=None) -> str:
    sid = str(uuid.uuid4())
    with engine.db.session() as s:
        st = Stack(
            id=sid, name="s" + sid[:6], project_id="p1", user_id="u1", username="u",
            roles=["member"], template=template, files={},
            environment={"parameters": params or {}}, action="CREATE", status="IN_PROGRESS",
            status_reason="", generation=0, disable_rollback=not rollback, timeout_mins=timeout,
            created_at=utcnow(),
        )  # fmt: skip
        s.add(st)
        s.flush()
        eng.begin_action(s, st, "CREATE")
    return sid


def run(engine, sid: str, action: str | None = None) -> Stack:
    with engine.db.session() as s:
        st = s.get(Stack, sid)
        gen, act = st.generation, action or st.action
    engine._run_op(Claimed(1, eng.KIND, sid, {"action": act, "generation": gen}, 1, 3))
    with engine.db.session() as s:
        st = s.get(Stack, sid)
        s.expunge(st)
        return st


def rows(engine, sid) -> dict[str, StackResource]:
    with engine.db.session() as s:
        out = {
            r.name: r for r in s.scalars(select(StackResource).where(StackResource.stack_id == sid))
        }
        for r in out.values():
            s.expunge(r)
        return out


def events(engine, sid) -> list[tuple[str, str]]:
    with engine.db.session() as s:
        evs = s.scalars(select(Event).where(Event.stack_id == sid).order_by(Event.seq)).all()
        return [(e.resource_name, f"{e.action}_{e.status}") for e in evs]


def tpl(resources, outputs=None, params=None):
    doc = {"heat_template_version": "2016-10-14", "resources": resources}
    if outputs:
        doc["outputs"] = outputs
    if params:
        doc["parameters"] = params
    return doc


T = "OS::Heat::TestResource"


def test_create_respects_dependencies_and_runs_independent_ones_in_parallel(engine):
    wait = {"action_wait_secs": {"create": 0.5}}
    sid = make_stack(engine, tpl({
        "a": {"type": T, "properties": wait},
        "b": {"type": T, "properties": wait},
        "c": {"type": T, "properties": wait},
        "d": {"type": T, "depends_on": ["a", "b", "c"],
              "properties": {"value": {"get_resource": "a"}}},
    }))  # fmt: skip
    start = utcnow()
    st = run(engine, sid)
    took = (utcnow() - start).total_seconds()
    assert (st.action, st.status, st.status_reason) == (
        "CREATE", "COMPLETE", "Stack CREATE completed successfully")  # fmt: skip
    assert took < 1.4  # a, b, c together (0.5 s), then d; sequential would be >= 1.5 s
    ev = events(engine, sid)
    d_start = ev.index(("d", "CREATE_IN_PROGRESS"))
    for n in "abc":
        assert ev.index((n, "CREATE_COMPLETE")) < d_start
    r = rows(engine, sid)
    assert r["d"].properties["value"] == r["a"].physical_id


def test_failure_then_rollback_deletes_what_was_made(engine):
    sid = make_stack(engine, tpl({
        "ok": {"type": T},
        "bad": {"type": T, "depends_on": "ok", "properties": {"fail": True}},
    }), rollback=True)  # fmt: skip
    st = run(engine, sid)
    assert (st.action, st.status) == ("ROLLBACK", "COMPLETE")
    assert {f"{r.action}_{r.status}" for r in rows(engine, sid).values()} == {"DELETE_COMPLETE"}
    ev = events(engine, sid)
    assert ("bad", "CREATE_FAILED") in ev and (st.name, "CREATE_FAILED") in ev
    assert (st.name, "ROLLBACK_IN_PROGRESS") in ev


def test_timeout_fails_the_stack(engine):
    sid = make_stack(engine, tpl({"slow": {"type": T, "properties": {"wait_secs": 600}}}),
                     timeout=1)  # fmt: skip
    with engine.db.session() as s:  # as if the action had started 59.5 s ago
        s.get(Stack, sid).action_started_at = utcnow() - timedelta(seconds=59.5)
    st = run(engine, sid)
    assert (st.action, st.status, st.status_reason) == ("CREATE", "FAILED", "Create timed out")
    assert rows(engine, sid)["slow"].status_reason == "CREATE timed out"


def test_resume_after_a_crash_finishes_the_stack(engine):
    sid = make_stack(engine, tpl({"a": {"type": T}, "b": {"type": T, "depends_on": "a"}}))
    # the first worker died after recording a's create but before finishing it
    with engine.db.session() as s:
        stack = s.get(Stack, sid)
        s.expunge(stack)
    run_ = eng.Run(engine, stack, 1)
    defn = engine.definition(run_.stack)
    run_.ensure_rows(defn)
    run_.transition("a", "CREATE", "IN_PROGRESS", incarnation="inc-1", physical_id="s-a-keep")
    st = run(engine, sid)
    assert (st.action, st.status) == ("CREATE", "COMPLETE")
    r = rows(engine, sid)
    assert r["a"].physical_id == "s-a-keep" and r["a"].incarnation == "inc-1"
    assert r["b"].status == "COMPLETE"


def test_update_by_diff(engine):
    doc = tpl(
        {"keep": {"type": T}, "inplace": {"type": T, "properties": {"value": {"get_param": "v"}}},
         "swap": {"type": "OS::Heat::RandomString", "properties": {"salt": {"get_param": "v"}}},
         "gone": {"type": T}},
        params={"v": {"type": "string", "default": "one"}},
    )  # fmt: skip
    sid = make_stack(engine, doc)
    run(engine, sid)
    before = rows(engine, sid)
    new = tpl(
        {"keep": {"type": T}, "inplace": {"type": T, "properties": {"value": {"get_param": "v"}}},
         "swap": {"type": "OS::Heat::RandomString", "properties": {"salt": {"get_param": "v"}}},
         "added": {"type": "OS::Heat::None"}},
        params={"v": {"type": "string", "default": "one"}},
    )  # fmt: skip
    with engine.db.session() as s:
        st = s.get(Stack, sid)
        st.new_template, st.new_environment, st.new_files = new, {"parameters": {"v": "two"}}, {}
        eng.begin_action(s, st, "UPDATE")
    n_events = len(events(engine, sid))
    st = run(engine, sid)
    assert (st.action, st.status) == ("UPDATE", "COMPLETE"), st.status_reason
    after = rows(engine, sid)
    assert set(after) == {"keep", "inplace", "swap", "added"}
    assert after["keep"].physical_id == before["keep"].physical_id
    assert after["inplace"].physical_id == before["inplace"].physical_id
    assert after["inplace"].properties["value"] == "two" and after["inplace"].action == "UPDATE"
    assert after["swap"].physical_id != before["swap"].physical_id  # salt is not updatable
    assert after["swap"].replaced is None
    new_events = events(engine, sid)[n_events:]
    assert not [e for e in new_events if e[0] == "keep"]  # unchanged: no events at all
    assert ("gone", "DELETE_COMPLETE") in new_events
    assert st.template == new and st.new_template is None


def test_classify():
    cur = diff.Current("T", {"a": 1}, "CREATE", "COMPLETE")
    never = lambda p, c: False  # noqa: E731
    always = lambda p, c: True  # noqa: E731
    assert diff.classify(None, "T", {}, never)[0] == diff.ADDED
    assert diff.classify(cur, "T", {"a": 1}, never) == (diff.UNCHANGED, set())
    assert diff.classify(cur, "T", {"a": 2}, never) == (diff.UPDATED, {"a"})
    assert diff.classify(cur, "T", {"a": 2}, always)[0] == diff.REPLACED
    assert diff.classify(cur, "U", {"a": 1}, never)[0] == diff.REPLACED
    unhealthy = diff.Current("T", {"a": 1}, "CHECK", "FAILED")
    assert diff.classify(unhealthy, "T", {"a": 1}, never)[0] == diff.REPLACED
    assert diff.classify(diff.Current("T", {}, "INIT", "COMPLETE"), "T", {}, never)[0] == "added"


def test_resource_group_create_scale_down_and_attributes(engine):
    from dockyard.orchestration.stack import pseudo_params

    doc = tpl(
        {"g": {"type": "OS::Heat::ResourceGroup", "properties": {
            "count": {"get_param": "n"},
            "resource_def": {"type": T, "properties": {"value": "v-%index%"}}}}},
        outputs={"refs": {"value": {"get_attr": ["g", "refs"]}},
                 "outs": {"value": {"get_attr": ["g", "output"]}},
                 "one": {"value": {"get_attr": ["g", "resource.1", "output"]}}},
        params={"n": {"type": "number", "default": 3}},
    )  # fmt: skip
    sid = make_stack(engine, doc)
    st = run(engine, sid)
    assert st.status == "COMPLETE", st.status_reason
    defn = engine.definition(st)
    lookup = eng.Lookup(engine, st, defn, engine.context(st))
    outs = {o["output_key"]: o["output_value"] for o in defn.outputs(lookup)}
    assert outs["outs"] == ["v-0", "v-1", "v-2"] and outs["one"] == "v-1"
    assert len(outs["refs"]) == 3 and all(r.startswith(f"{st.name}-g-") for r in outs["refs"])
    with engine.db.session() as s:
        st = s.get(Stack, sid)
        st.new_template, st.new_environment, st.new_files = doc, {"parameters": {"n": 1}}, {}
        eng.begin_action(s, st, "UPDATE")
    st = run(engine, sid)
    assert st.status == "COMPLETE", st.status_reason
    g = rows(engine, sid)["g"]
    assert list(g.data["members"]) == ["0"] and sorted(g.data["removed"]) == ["1", "2"]
    assert pseudo_params("a", "b", "c")["OS::stack_id"] == "b"


def test_events_are_capped_per_stack(engine):
    sid = make_stack(engine, tpl({"a": {"type": T}}))
    with engine.db.session() as s:
        for _ in range(30):
            eng.add_event(s, sid, "x", T, None, "CREATE", "IN_PROGRESS", "noise")
    with engine.db.session() as s:
        eng.purge_events(s, sid, keep=10)
    ev = events(engine, sid)
    assert len(ev) == 10


def test_a_rerun_after_the_end_or_mid_rollback_does_the_right_thing(engine):
    sid = make_stack(engine, tpl({
        "ok": {"type": T},
        "bad": {"type": T, "depends_on": "ok", "properties": {"fail": True}},
    }))  # fmt: skip
    st = run(engine, sid, "CREATE")
    assert (st.action, st.status) == ("CREATE", "FAILED")
    n = len(events(engine, sid))
    # the worker died after its last write: the re-claimed operation must not retry anything
    run(engine, sid, "CREATE")
    assert len(events(engine, sid)) == n
    # died in the middle of a rollback: the re-run finishes the rollback, creates nothing
    with engine.db.session() as s:
        stack = s.get(Stack, sid)
        eng.set_stack_state(s, stack, "ROLLBACK", "IN_PROGRESS", "Stack ROLLBACK started")
    st = run(engine, sid, "CREATE")
    assert (st.action, st.status) == ("ROLLBACK", "COMPLETE")
    assert {f"{r.action}_{r.status}" for r in rows(engine, sid).values()} == {"DELETE_COMPLETE"}


def test_resource_group_of_a_provider_template_needs_the_nested_engine(engine):
    # members of a template type are found (schema-less) instead of refused
    from dockyard.orchestration.resources import lookup_type
    from dockyard.orchestration.resources.nested import TemplateResource

    assert issubclass(lookup_type(engine.registry, "node.yaml"), TemplateResource)
    assert lookup_type(engine.registry, "No::Such") is None
