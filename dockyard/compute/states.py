"""The server state machine: which action is allowed in which state, and what users see.

vm_state is what the server is; task_state is what is being done to it (None when idle);
status is the API's summary of both. Pure functions, no I/O.
"""

from __future__ import annotations

from dockyard.api.errors import Conflict

# vm states
BUILDING = "building"
ACTIVE = "active"
STOPPED = "stopped"
PAUSED = "paused"
SUSPENDED = "suspended"
RESIZED = "resized"
ERROR = "error"
DELETED = "deleted"

# power states (the ints the clients print by name)
NOSTATE = 0
RUNNING = 1
PAUSED_POWER = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED_POWER = 7

POWER_NAMES = {
    NOSTATE: "NOSTATE",
    RUNNING: "Running",
    PAUSED_POWER: "Paused",
    SHUTDOWN: "Shutdown",
    CRASHED: "Crashed",
    SUSPENDED_POWER: "Suspended",
}

_STATUS = {
    BUILDING: "BUILD",
    ACTIVE: "ACTIVE",
    STOPPED: "SHUTOFF",
    PAUSED: "PAUSED",
    SUSPENDED: "SUSPENDED",
    RESIZED: "VERIFY_RESIZE",
    ERROR: "ERROR",
    DELETED: "DELETED",
}

_TASK_STATUS = {
    "rebooting": "REBOOT",
    "reboot_pending": "REBOOT",
    "reboot_started": "REBOOT",
    "rebooting_hard": "HARD_REBOOT",
    "reboot_pending_hard": "HARD_REBOOT",
    "reboot_started_hard": "HARD_REBOOT",
    "rebuilding": "REBUILD",
    "rebuild_spawning": "REBUILD",
    "resize_prep": "RESIZE",
    "resize_migrating": "RESIZE",
    "resize_finish": "RESIZE",
    "resize_reverting": "REVERT_RESIZE",
}


def status(vm_state: str, task_state: str | None) -> str:
    """The API `status` of a server."""
    # Nova shows REBOOT/REBUILD/RESIZE from active (and rebuild/revert from the others too)
    if task_state in _TASK_STATUS and (
        vm_state == ACTIVE
        or (vm_state in (STOPPED, RESIZED) and task_state.startswith(("rebuild", "resize_rev")))
    ):
        return _TASK_STATUS[task_state]
    return _STATUS.get(vm_state, "UNKNOWN")


# action -> (vm_states it is allowed from, task_state while it runs)
ACTIONS: dict[str, tuple[frozenset[str], str | None]] = {
    "os-stop": (frozenset({ACTIVE, ERROR, RESIZED}), "powering-off"),
    "os-start": (frozenset({STOPPED}), "powering-on"),
    "reboot": (frozenset({ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR}), "rebooting"),
    "pause": (frozenset({ACTIVE}), "pausing"),
    "unpause": (frozenset({PAUSED}), "unpausing"),
    "suspend": (frozenset({ACTIVE}), "suspending"),
    "resume": (frozenset({SUSPENDED}), "resuming"),
    "rebuild": (frozenset({ACTIVE, STOPPED, ERROR}), "rebuilding"),
    "resize": (frozenset({ACTIVE, STOPPED}), "resize_prep"),
    "confirmResize": (frozenset({RESIZED}), None),
    "revertResize": (frozenset({RESIZED}), "resize_reverting"),
    "createImage": (frozenset({ACTIVE, STOPPED, PAUSED, SUSPENDED}), "image_snapshot"),
    "delete": (frozenset({BUILDING, ACTIVE, STOPPED, PAUSED, SUSPENDED, RESIZED, ERROR}), None),
}

# task states during which another action may still be accepted
_INTERRUPTIBLE = {"delete", "forceDelete", "os-resetState"}


def check(action: str, vm_state: str, task_state: str | None) -> str | None:
    """The task_state the action sets, or Conflict when the server's state forbids it."""
    if action in _INTERRUPTIBLE:
        return "deleting" if action != "os-resetState" else None
    allowed, new_task = ACTIONS[action]
    if task_state is not None:
        raise Conflict(f"Cannot '{action}' instance while it is in task_state {task_state}")
    if vm_state not in allowed:
        raise Conflict(f"Cannot '{action}' instance while it is in vm_state {vm_state}")
    if action == "reboot" and vm_state != ACTIVE:
        return "rebooting_hard"
    return new_task


def observed(docker_state: dict | None) -> tuple[str | None, int]:
    """(vm_state, power_state) that a container's State says; vm_state None when gone."""
    if docker_state is None:
        return None, NOSTATE
    if docker_state.get("Paused"):
        return PAUSED, PAUSED_POWER
    if docker_state.get("Running") or docker_state.get("Restarting"):
        return ACTIVE, RUNNING
    if docker_state.get("Status") == "created":
        return STOPPED, SHUTDOWN
    return STOPPED, SHUTDOWN


def reconcile(vm_state: str, power_state: int, docker_state: dict | None) -> tuple[str, int]:
    """The (vm_state, power_state) an idle server should have, given its container.

    Level-triggered: the container is the truth for power; vm_state follows it where the
    user would otherwise see a lie (running server shown as SHUTOFF, or the reverse).
    A suspended server is a paused container; a server in VERIFY_RESIZE stays there.
    """
    obs_vm, obs_power = observed(docker_state)
    if obs_vm is None:
        return ERROR, NOSTATE
    if vm_state in (BUILDING, ERROR, DELETED):
        return vm_state, obs_power
    if vm_state == SUSPENDED and obs_vm == PAUSED:
        return SUSPENDED, SUSPENDED_POWER
    if vm_state == RESIZED:
        return RESIZED, obs_power
    return obs_vm, obs_power
