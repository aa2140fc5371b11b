"""The server state machine: API status, allowed actions, reconciliation with Docker."""

import pytest

from dockyard.api.errors import Conflict
from dockyard.compute import states as st


@pytest.mark.parametrize(
    ("vm", "task", "status"),
    [
        ("building", "scheduling", "BUILD"),
        ("active", None, "ACTIVE"),
        ("active", "rebooting", "REBOOT"),
        ("active", "rebooting_hard", "HARD_REBOOT"),
        ("active", "rebuilding", "REBUILD"),
        ("stopped", "rebuilding", "REBUILD"),
        ("active", "resize_prep", "RESIZE"),
        ("resized", None, "VERIFY_RESIZE"),
        ("resized", "resize_reverting", "REVERT_RESIZE"),
        ("stopped", None, "SHUTOFF"),
        ("stopped", "powering-on", "SHUTOFF"),
        ("paused", None, "PAUSED"),
        ("suspended", None, "SUSPENDED"),
        ("error", None, "ERROR"),
        ("active", "deleting", "ACTIVE"),
    ],
)
def test_status(vm, task, status):
    assert st.status(vm, task) == status


def test_actions_allowed_and_refused():
    assert st.check("os-stop", "active", None) == "powering-off"
    assert st.check("os-start", "stopped", None) == "powering-on"
    assert st.check("reboot", "stopped", None) == "rebooting_hard"
    with pytest.raises(Conflict, match="Cannot 'os-start' instance while it is in vm_state active"):
        st.check("os-start", "active", None)
    with pytest.raises(Conflict, match="task_state powering-off"):
        st.check("os-stop", "active", "powering-off")
    with pytest.raises(Conflict):
        st.check("unpause", "active", None)
    with pytest.raises(Conflict):
        st.check("confirmResize", "active", None)
    # delete interrupts anything, even a build
    assert st.check("delete", "building", "scheduling") == "deleting"


def test_observed_power_states():
    assert st.observed(None) == (None, st.NOSTATE)
    assert st.observed({"Running": True, "Paused": True}) == ("paused", 3)
    assert st.observed({"Running": True}) == ("active", 1)
    assert st.observed({"Status": "exited"}) == ("stopped", 4)


def test_reconcile_is_level_triggered():
    running, exited, paused = {"Running": True}, {"Status": "exited"}, {"Paused": True}
    assert st.reconcile("active", 1, exited) == ("stopped", 4)  # docker kill behind our back
    assert st.reconcile("stopped", 4, running) == ("active", 1)  # docker start behind our back
    assert st.reconcile("active", 1, None) == ("error", 0)  # docker rm behind our back
    assert st.reconcile("suspended", 7, paused) == ("suspended", 7)
    assert st.reconcile("resized", 1, running) == ("resized", 1)
    assert st.reconcile("error", 0, running) == ("error", 1)
