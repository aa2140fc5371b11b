"""A resource plugin declares its properties and attributes as data and implements a few
idempotent steps; the engine does ordering, parallelism, persistence, events and timeouts."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dockyard.orchestration.errors import ResourceFailure, TemplateError

_MISSING = object()
TYPES = ("string", "integer", "number", "boolean", "list", "map")


@dataclass
class Prop:
    type: str
    description: str = ""
    default: Any = _MISSING
    required: bool = False
    update_allowed: bool = False
    immutable: bool = False
    constraints: list[dict] = field(default_factory=list)
    schema: Any = None  # Prop for list items, dict[str, Prop] for map keys

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING

    def api_view(self) -> dict:
        view: dict[str, Any] = {
            "type": self.type,
            "description": self.description,
            "required": self.required,
            "update_allowed": self.update_allowed,
            "immutable": self.immutable,
        }
        if self.has_default:
            view["default"] = self.default
        if self.constraints:
            view["constraints"] = self.constraints
        if isinstance(self.schema, Prop):
            view["schema"] = {"*": self.schema.api_view()}
        elif isinstance(self.schema, dict):
            view["schema"] = {k: p.api_view() for k, p in self.schema.items()}
        return view


def _coerce(p: Prop, value: Any, where: str) -> Any:
    t = p.type
    try:
        if t == "string":
            if isinstance(value, dict | list):
                raise ValueError("Value must be a string")
            value = "true" if value is True else "false" if value is False else str(value)
        elif t == "integer":
            if isinstance(value, bool):
                raise ValueError(f"Value '{value}' is not an integer")
            value = int(str(value))
        elif t == "number":
            if isinstance(value, bool):
                raise ValueError(f"Value '{value}' is not a number")
            if not isinstance(value, int | float):
                text = str(value)
                value = float(text) if "." in text or "e" in text.lower() else int(text)
        elif t == "boolean":
            if not isinstance(value, bool):
                text = str(value).lower()
                if text not in ("true", "false"):
                    raise ValueError(f'"{value}" is not a valid boolean')
                value = text == "true"
        elif t == "list":
            if isinstance(value, str):
                value = value.split(",") if value else []
            if not isinstance(value, list):
                raise ValueError(f'"{value}" is not a list')
            if isinstance(p.schema, Prop):
                value = [
                    _check(p.schema, v, f"{where}[{i}]")
                    for i, v in enumerate(value)
                    if v is not None
                ]
        elif t == "map":
            if not isinstance(value, dict):
                raise ValueError(f'"{value}" is not a map')
            if isinstance(p.schema, dict):
                value = validate_properties(p.schema, value, where)
    except (ValueError, TypeError) as exc:
        raise TemplateError(f"Property error: {where}: {exc}") from exc
    return value


def _check(p: Prop, value: Any, where: str) -> Any:
    value = _coerce(p, value, where)
    for c in p.constraints:
        problem = None
        if "allowed_values" in c and value not in c["allowed_values"]:
            problem = f'"{value}" is not an allowed value {c["allowed_values"]}'
        if "range" in c:
            lo, hi = c["range"].get("min"), c["range"].get("max")
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                problem = f"{value} is out of range (min: {lo}, max: {hi})"
        if "length" in c:
            lo, hi = c["length"].get("min"), c["length"].get("max")
            if (lo is not None and len(value) < lo) or (hi is not None and len(value) > hi):
                problem = f"length ({len(value)}) is out of range (min: {lo}, max: {hi})"
        if "allowed_pattern" in c and not re.fullmatch(c["allowed_pattern"], str(value)):
            problem = f'"{value}" does not match pattern "{c["allowed_pattern"]}"'
        if problem:
            raise TemplateError(f"Property error: {where}: {c.get('description') or problem}")
    return value


def validate_properties(
    schema: dict[str, Prop], values: dict, where: str, any_extra: bool = False
) -> dict:
    """Values checked against the schema, defaults filled in; None counts as not given.

    any_extra: keep properties the schema does not name (OS::Heat::None takes anything)."""
    if not isinstance(values, dict):
        raise TemplateError(f"Property error: {where}: properties must be a map")
    out: dict[str, Any] = {}
    for key in values:
        if any_extra and key not in schema:
            out[key] = values[key]
        elif key not in schema:
            raise TemplateError(f"Property error: {where}: Unknown Property {key}")
    for key, p in schema.items():
        value = values.get(key)
        if value is None:
            if p.required:
                raise TemplateError(f"Property error: {where}: Property {key} not assigned")
            out[key] = p.default if p.has_default else None
            continue
        out[key] = _check(p, value, f"{where}.{key}")
    return out


@dataclass
class Context:
    """Who acts and where: handed to plugins by the engine."""

    project_id: str
    user_id: str
    user_name: str
    roles: list[str]
    stack_id: str
    stack_name: str
    settings: Any
    services: Any = None  # dockyard.orchestration.services.Services (db access, others' APIs)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


class Resource:
    type_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    properties_schema: ClassVar[dict[str, Prop]] = {}
    attributes_schema: ClassVar[dict[str, dict]] = {}
    support_status: ClassVar[dict] = {
        "status": "SUPPORTED",
        "version": None,
        "message": None,
        "previous_status": None,
    }
    # seconds between check_*_complete polls
    poll_interval: ClassVar[float] = 0.5
    # a resource with its own handle_check; others report "CHECK not supported"
    supports_check: ClassVar[bool] = False
    # properties the schema does not declare are kept instead of refused
    any_properties: ClassVar[bool] = False

    def __init__(
        self,
        ctx: Context,
        name: str,
        properties: dict,
        *,
        physical_id: str | None = None,
        data: dict | None = None,
        incarnation: str = "",
    ):
        self.ctx = ctx
        self.name = name
        self.properties = properties
        self.physical_id = physical_id
        self.data: dict = dict(data or {})
        self.incarnation = incarnation
        # set by the engine: commit `data` now (before a step a crash must not repeat blindly)
        self.persist: Callable[[], None] = lambda: None
        # set by the engine: False when this create is the first attempt of its incarnation
        # (nothing can exist yet, so there is nothing to look for)
        self.resuming = True
        # True while the API validates a template: other resources' attributes are unknown
        # (null) yet, so values built from them are incomplete
        self.unresolved = False

    # validation beyond the schema (runs in the API before anything happens)
    def validate(self) -> None:
        return None

    # the create / delete / update / suspend / resume / check steps
    def create(self) -> str | None:
        return None

    def check_create(self) -> bool:
        return True

    def delete(self) -> None:
        return None

    def check_delete(self) -> bool:
        return True

    def update(self, new_properties: dict, changed: set[str]) -> None:
        self.properties = new_properties

    def check_update(self) -> bool:
        return True

    def suspend(self) -> None:
        return None

    def check_suspend(self) -> bool:
        return True

    def resume(self) -> None:
        return None

    def check_resume(self) -> bool:
        return True

    def check(self) -> None:
        if not self.physical_id:
            raise ResourceFailure(f"Resource {self.name} has no physical resource")

    def replace_delete_first(self) -> bool:
        """True when the replacement cannot exist beside the old one (e.g. a fixed name)."""
        return False

    def needs_replace(self, new_properties: dict, changed: set[str]) -> bool:
        return any(not self.properties_schema[k].update_allowed for k in changed)

    def reference(self) -> Any:
        return self.physical_id or self.name

    @classmethod
    def accepts_attribute(cls, name: str) -> bool:
        return name in cls.attributes_schema or name == "show"

    def attribute(self, name: str) -> Any:
        return None

    def all_attributes(self) -> dict:
        out = {}
        for name in self.attributes_schema:
            if name == "show":
                continue
            try:
                out[name] = self.attribute(name)
            except Exception:  # noqa: BLE001 - unreadable attributes show as null
                out[name] = None
        return out

    @classmethod
    def schema_view(cls, with_description: bool = False) -> dict:
        attrs = {k: dict(v) for k, v in cls.attributes_schema.items()}
        attrs["show"] = {"description": "Detailed information about resource.", "type": "map"}
        view = {
            "resource_type": cls.type_name,
            "properties": {k: p.api_view() for k, p in cls.properties_schema.items()},
            "attributes": attrs,
            "support_status": cls.support_status,
        }
        if with_description:
            view["description"] = cls.description
        return view

    @classmethod
    def template_view(cls, template_type: str) -> dict:
        cls_name = cls.__name__
        hot_types = {
            "string": "string",
            "integer": "number",
            "number": "number",
            "boolean": "boolean",
            "list": "comma_delimited_list",
            "map": "json",
        }
        params = {}
        for k, p in cls.properties_schema.items():
            entry: dict[str, Any] = {"type": hot_types[p.type], "description": p.description}
            if p.has_default and p.default is not None:
                entry["default"] = p.default
            params[k] = entry
        if template_type == "hot":
            outputs: dict[str, Any] = {
                a: {"description": v.get("description", ""), "value": {"get_attr": [cls_name, a]}}
                for a, v in cls.attributes_schema.items()
            }
            outputs["OS::stack_id"] = {"value": {"get_resource": cls_name}}
            return {
                "heat_template_version": "2016-10-14",
                "description": f"Initial template of {cls_name}",
                "parameters": params,
                "resources": {
                    cls_name: {
                        "type": cls.type_name,
                        "properties": {k: {"get_param": k} for k in cls.properties_schema},
                    }
                },
                "outputs": outputs,
            }
        cfn_types = {"string": "String", "number": "Number", "boolean": "Boolean"}
        cfn_types |= {"comma_delimited_list": "CommaDelimitedList", "json": "Json"}
        return {
            "HeatTemplateFormatVersion": "2012-12-12",
            "Description": f"Initial template of {cls_name}",
            "Parameters": {
                k: {"Type": cfn_types[v["type"]], "Description": v["description"]}
                for k, v in params.items()
            },
            "Resources": {
                cls_name: {
                    "Type": cls.type_name,
                    "Properties": {k: {"Ref": k} for k in cls.properties_schema},
                }
            },
            "Outputs": {
                a: {
                    "Description": v.get("description", ""),
                    "Value": {"Fn::GetAtt": [cls_name, a]},
                }
                for a, v in cls.attributes_schema.items()
            },
        }


class ServiceResource(Resource):
    """A resource made through another service's Python interface, in the stack's name: a
    database session, the caller's request context, and the service's API errors turned
    into resource failures."""

    support_status = {"status": "SUPPORTED", "version": "2014.1", "message": None,
                      "previous_status": None}  # fmt: skip

    def _session(self):
        return self.ctx.services.runtime.db.session()

    def _rctx(self):
        from dockyard.orchestration.services import request_context

        return request_context(self.ctx)

    def _call(self, fn, *args, **kw):
        from dockyard.api.errors import ApiError

        try:
            return fn(*args, **kw)
        except ApiError as exc:
            raise ResourceFailure(exc.message, exc.kind) from exc
