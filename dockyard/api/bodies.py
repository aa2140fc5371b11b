"""Small helpers for validating OpenStack-style request bodies."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dockyard.api.errors import BadRequest

M = TypeVar("M", bound=BaseModel)


def member(body: Any, key: str) -> dict:
    """body[key] as an object, or a 400 naming what is missing."""
    if not isinstance(body, dict) or key not in body:
        raise BadRequest(f"Expecting to find '{key}' in the request body.")
    value = body[key]
    if not isinstance(value, dict):
        raise BadRequest(f"'{key}' must be a JSON object.")
    return value


def parse(model: type[M], data: Any, where: str) -> M:
    """Validate data against a pydantic model; errors name the offending field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in (where, *e.get("loc", ())))
            problems.append(f"'{loc}': {e.get('msg', 'invalid')}")
        raise BadRequest("Invalid input for field(s) " + "; ".join(problems)) from exc
