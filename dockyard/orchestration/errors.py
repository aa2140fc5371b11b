"""Heat's exception types, as API errors whose `kind` is what heatclient shows as error.type."""

from __future__ import annotations

from dockyard.api.errors import BadRequest, Conflict, NotFound


class TemplateError(BadRequest):
    """Anything wrong with a template, its parameters or its resources (400)."""

    kind = "StackValidationFailed"

    def __init__(self, message: str, *, kind: str | None = None):
        super().__init__(message, kind=kind)


def invalid_version(detail: str) -> TemplateError:
    return TemplateError(
        f"The template version is invalid: {detail}", kind="InvalidTemplateVersion"
    )


def invalid_section(name: str) -> TemplateError:
    return TemplateError(f"The template section is invalid: {name}", kind="InvalidTemplateSection")


def circular(cycle: list[str]) -> TemplateError:
    return TemplateError(
        "Circular Dependency Found: " + " -> ".join(cycle), kind="CircularDependencyException"
    )


def stack_not_found(name: str) -> NotFound:
    return NotFound(f"The Stack ({name}) could not be found.", kind="EntityNotFound")


def stack_exists(name: str) -> Conflict:
    return Conflict(f"The Stack ({name}) already exists.", kind="StackExists")


def in_progress(name: str, action: str) -> Conflict:
    return Conflict(
        f"Stack {name} already has an action ({action}) in progress.", kind="ActionInProgress"
    )


def not_supported(message: str) -> BadRequest:
    return BadRequest(message, kind="NotSupported")


class ResourceFailure(Exception):
    """A resource action failed; `kind` is the Heat exception name shown in reasons."""

    def __init__(self, message: str, kind: str = "ResourceInError"):
        super().__init__(message)
        self.message = message
        self.kind = kind
