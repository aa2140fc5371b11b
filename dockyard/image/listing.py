"""GET /v2/images: filters, sorting and marker pagination, as Glance v2 understands them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from dockyard.api.context import RequestContext
from dockyard.api.errors import BadRequest
from dockyard.api.policy import enforce
from dockyard.image.images import can_see, visibility_clause
from dockyard.image.models import Image, ImageMember, ImageProperty, ImageTag

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
CONTROL = {"limit", "marker", "sort_key", "sort_dir", "sort", "member_status", "visibility"}
STRING_FILTERS = {"name", "id", "status", "container_format", "disk_format", "owner"}
SORTABLE: dict[str, Any] = {
    "name": (Image.name, ""),
    "status": (Image.status, None),
    "container_format": (Image.container_format, ""),
    "disk_format": (Image.disk_format, ""),
    "size": (Image.size, -1),
    "virtual_size": (Image.virtual_size, -1),
    "id": (Image.id, None),
    "created_at": (Image.created_at, None),
    "updated_at": (Image.updated_at, None),
    "visibility": (Image.visibility, None),
    "owner": (Image.owner, ""),
    "min_disk": (Image.min_disk, None),
    "min_ram": (Image.min_ram, None),
}
OPERATORS = {"gt", "gte", "lt", "lte", "eq", "neq"}


@dataclass(frozen=True)
class Page:
    images: list[Image]
    next_marker: str | None


def _bool(name: str, raw: str) -> bool:
    low = raw.lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"Invalid value '{raw}' for '{name}': expected true or false.")


def _int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"Invalid value '{raw}' for '{name}': expected an integer.") from exc
    if value < minimum:
        raise BadRequest(f"Invalid value '{raw}' for '{name}': must be at least {minimum}.")
    return value


def _in_values(raw: str) -> list[str]:
    """Values of `in:a,b,"c,d"`."""
    return next(csv.reader([raw], skipinitialspace=True), [])


def _string_filter(column, raw: str):
    if raw.startswith("in:"):
        return column.in_(_in_values(raw[3:]))
    if raw.startswith("eq:"):
        raw = raw[3:]
    return column == raw


def _time_filter(name: str, column, raw: str):
    op, _, value = raw.partition(":")
    if op not in OPERATORS or not value:
        raise BadRequest(
            f"Invalid '{name}' filter '{raw}': use <op>:<ISO 8601 time>, op one of "
            + ", ".join(sorted(OPERATORS))
        )
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"Invalid time '{value}' in '{name}' filter.") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return {
        "gt": column > when,
        "gte": column >= when,
        "lt": column < when,
        "lte": column <= when,
        "eq": column == when,
        "neq": column != when,
    }[op]


def _sort_spec(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    keys = [v for k, v in params if k == "sort_key"]
    dirs = [v for k, v in params if k == "sort_dir"]
    sort = [v for k, v in params if k == "sort"]
    if sort and (keys or dirs):
        raise BadRequest("Use either 'sort' or 'sort_key'/'sort_dir', not both.")
    spec: list[tuple[str, str]] = []
    if sort:
        for item in ",".join(sort).split(","):
            key, _, direction = item.strip().partition(":")
            spec.append((key, direction or "desc"))
    else:
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise BadRequest("Give one sort_dir, or exactly one per sort_key.")
        keys = keys or ["created_at"]
        for i, key in enumerate(keys):
            direction = dirs[i] if len(dirs) > 1 else (dirs[0] if dirs else "desc")
            spec.append((key, direction))
    for key, direction in spec:
        if key not in SORTABLE:
            raise BadRequest(f"Invalid sort key '{key}'; one of: {', '.join(sorted(SORTABLE))}.")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction '{direction}': use asc or desc.")
    if "id" not in [k for k, _ in spec]:
        spec.append(("id", spec[-1][1]))
    return spec


def _sort_expr(key: str):
    column, null_as = SORTABLE[key]
    return column if null_as is None else func.coalesce(column, null_as)


def _sort_value(image: Image, key: str):
    column, null_as = SORTABLE[key]
    value = getattr(image, key)
    return null_as if value is None and null_as is not None else value


def _after_marker(spec: list[tuple[str, str]], marker: Image):
    """Keyset condition: rows strictly after the marker in the sort order."""
    clauses = []
    for i, (key, direction) in enumerate(spec):
        equal = [_sort_expr(k) == _sort_value(marker, k) for k, _ in spec[:i]]
        expr, value = _sort_expr(key), _sort_value(marker, key)
        beyond = expr > value if direction == "asc" else expr < value
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


def list_images(session: Session, ctx: RequestContext, params: list[tuple[str, str]]) -> Page:
    enforce(ctx, "image:get_images")
    single: dict[str, str] = {}
    for k, v in params:
        if k not in ("tag", "sort_key", "sort_dir", "sort"):
            single[k] = v
    limit = _int("limit", single.get("limit", str(DEFAULT_LIMIT)))
    limit = min(limit, MAX_LIMIT)
    member_status = single.get("member_status", "accepted")
    if member_status not in ("accepted", "pending", "rejected", "all"):
        raise BadRequest("member_status must be one of accepted, pending, rejected, all.")
    visibility = single.get("visibility")
    if visibility is not None and visibility not in (
        "public",
        "private",
        "shared",
        "community",
        "all",
    ):
        raise BadRequest("visibility must be one of public, private, shared, community, all.")

    q = select(Image)
    pid = ctx.project_id
    if not ctx.is_admin:
        if visibility is None:
            q = q.where(visibility_clause(ctx, member_status))
        elif visibility == "all":
            q = q.where(or_(visibility_clause(ctx, member_status), Image.visibility == "community"))
        elif visibility == "shared":
            members = select(ImageMember.image_id).where(ImageMember.member == pid)
            if member_status != "all":
                members = members.where(ImageMember.status == member_status)
            q = q.where(Image.visibility == "shared").where(
                or_(Image.owner == pid, Image.id.in_(members))
            )
        elif visibility == "private":
            q = q.where(Image.visibility == "private", Image.owner == pid)
        else:
            q = q.where(Image.visibility == visibility)
    elif visibility not in (None, "all"):
        q = q.where(Image.visibility == visibility)

    q = q.where(Image.os_hidden == _bool("os_hidden", single.get("os_hidden", "false")))
    for key in STRING_FILTERS:
        if key in single:
            q = q.where(_string_filter(getattr(Image, key), single[key]))
    for tag in [v for k, v in params if k == "tag"]:
        q = q.where(Image.id.in_(select(ImageTag.image_id).where(ImageTag.value == tag)))
    if "size_min" in single:
        q = q.where(Image.size >= _int("size_min", single["size_min"]))
    if "size_max" in single:
        q = q.where(Image.size <= _int("size_max", single["size_max"]))
    if "protected" in single:
        q = q.where(Image.protected == _bool("protected", single["protected"]))
    for key in ("created_at", "updated_at"):
        if key in single:
            q = q.where(_time_filter(key, getattr(Image, key), single[key]))
    handled = (
        CONTROL
        | STRING_FILTERS
        | {
            "tag",
            "size_min",
            "size_max",
            "protected",
            "os_hidden",
            "created_at",
            "updated_at",
        }
    )
    for key, value in single.items():
        if key in handled:
            continue
        sub = select(ImageProperty.image_id).where(ImageProperty.name == key)
        sub = sub.where(_string_filter(ImageProperty.value, value))
        q = q.where(Image.id.in_(sub))

    spec = _sort_spec(params)
    marker_id = single.get("marker")
    if marker_id:
        marker = session.get(Image, marker_id)
        if marker is None or not can_see(session, ctx, marker):
            raise BadRequest(f"marker {marker_id} could not be found.")
        q = q.where(_after_marker(spec, marker))
    order = [_sort_expr(k).asc() if d == "asc" else _sort_expr(k).desc() for k, d in spec]
    rows = list(session.scalars(q.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].id if more and rows else None)


def next_link(params: list[tuple[str, str]], marker: str) -> str:
    kept = [(k, v) for k, v in params if k != "marker"]
    return "/v2/images?" + urlencode([*kept, ("marker", marker)])
