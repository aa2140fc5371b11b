"""Update planning, pure: what happens to one resource when a stack is updated."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

ADDED, UNCHANGED, UPDATED, REPLACED, DELETED = (
    "added",
    "unchanged",
    "updated",
    "replaced",
    "deleted",
)


@dataclass(frozen=True)
class Current:
    """What a resource is now, as its row says."""

    type: str
    properties: dict
    action: str
    status: str


def changed_keys(old: dict, new: dict) -> set[str]:
    return {k for k in set(old) | set(new) if old.get(k) != new.get(k)}


def classify(
    current: Current | None,
    new_type: str,
    new_properties: dict,
    needs_replace: Callable[[dict, set[str]], bool],
) -> tuple[str, set[str]]:
    """(added | unchanged | updated | replaced, the changed property names).

    Never created (or deleted) -> added; another type, or any FAILED state (CHECK_FAILED from
    mark-unhealthy included) -> replaced; same definition -> unchanged; otherwise updated in
    place when the plugin can (update_allowed properties), else replaced.
    """
    if (
        current is None
        or current.action == "INIT"
        or (current.action == "DELETE" and current.status == "COMPLETE")
    ):
        return ADDED, set(new_properties)
    changed = changed_keys(current.properties or {}, new_properties)
    if current.type != new_type or current.status == "FAILED":
        return REPLACED, changed
    if not changed:
        return UNCHANGED, changed
    return (REPLACED if needs_replace(new_properties, changed) else UPDATED), changed


def removed(current_names: list[str], new_names: list[str]) -> list[str]:
    keep = set(new_names)
    return [n for n in current_names if n not in keep]
