"""Template parameters: schema, coercion of user values, constraints, display values."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockyard.orchestration.errors import TemplateError
from dockyard.orchestration.versions import Version

TYPES = ("string", "number", "comma_delimited_list", "json", "boolean")
_API_TYPES = {
    "string": "String",
    "number": "Number",
    "comma_delimited_list": "CommaDelimitedList",
    "json": "Json",
    "boolean": "Boolean",
}
PSEUDO = ("OS::stack_name", "OS::stack_id", "OS::project_id")
HIDDEN = "******"
_TRUE = {"t", "true", "on", "y", "yes", "1"}
_FALSE = {"f", "false", "off", "n", "no", "0"}

# name -> check(value) returning an error text or None (e.g. "nova.flavor" -> flavor exists?)
CustomCheck = Callable[[str, Any], str | None]


@dataclass
class Parameter:
    name: str
    type: str
    label: str | None = None
    description: str = ""
    default: Any = None
    has_default: bool = False
    hidden: bool = False
    immutable: bool = False
    constraints: list[dict] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def coerce(self, raw: Any) -> Any:
        """The typed value of a user (or default) value; 400 naming the parameter if bad."""
        try:
            return _coerce(self.type, raw)
        except (ValueError, TypeError) as exc:
            raise TemplateError(f"Parameter '{self.name}' is invalid: {exc}") from exc

    def check(self, value: Any, custom: CustomCheck | None) -> None:
        for c in self.constraints:
            problem = _violation(self, c, value, custom)
            if problem:
                text = c.get("description") or problem
                raise TemplateError(f"Parameter '{self.name}' is invalid: {text}")

    def display(self, value: Any) -> str:
        if self.hidden:
            return HIDDEN
        return display_value(self.type, value)

    def api_view(self, user_value: Any = None, has_user: bool = False) -> dict:
        view: dict[str, Any] = {
            "Type": _API_TYPES[self.type],
            "Description": self.description,
            "NoEcho": "true" if self.hidden else "false",
            "Label": self.label or self.name,
        }
        if self.has_default:
            view["Default"] = self.default  # Heat's validate shows defaults, hidden or not
        if has_user:
            view["Value"] = HIDDEN if self.hidden else user_value
        if self.tags:
            view["Tags"] = self.tags
        descriptions = []
        for c in self.constraints:
            if "length" in c:
                if "min" in c["length"]:
                    view["MinLength"] = c["length"]["min"]
                if "max" in c["length"]:
                    view["MaxLength"] = c["length"]["max"]
            if "range" in c:
                if "min" in c["range"]:
                    view["MinValue"] = c["range"]["min"]
                if "max" in c["range"]:
                    view["MaxValue"] = c["range"]["max"]
            if "modulo" in c:
                view["Step"] = c["modulo"].get("step")
                view["Offset"] = c["modulo"].get("offset")
            if "allowed_values" in c:
                view["AllowedValues"] = c["allowed_values"]
            if "allowed_pattern" in c:
                view["AllowedPattern"] = c["allowed_pattern"]
            if "custom_constraint" in c:
                view["CustomConstraint"] = c["custom_constraint"]
            if c.get("description"):
                descriptions.append(c["description"])
        if descriptions:
            view["ConstraintDescription"] = " ".join(descriptions)
        return view


def _coerce(kind: str, raw: Any) -> Any:
    if kind == "string":
        if isinstance(raw, dict | list):
            raise ValueError("Value must be a string")
        if isinstance(raw, bool):
            return "true" if raw else "false"
        return "" if raw is None else str(raw)
    if kind == "number":
        if isinstance(raw, bool):
            raise ValueError(f"Value '{raw}' is not a number")
        if isinstance(raw, int | float):
            return raw
        text = str(raw).strip()
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                raise ValueError(f"Value '{raw}' is not a number") from None
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"Unrecognized value '{raw}', acceptable values are: true, false")
    if kind == "comma_delimited_list":
        if isinstance(raw, list):
            return [str(x) for x in raw]
        if raw is None or raw == "":
            return []
        if isinstance(raw, str):
            return raw.split(",")
        raise ValueError(f"Value '{raw}' is not a comma delimited list")
    if kind == "json":
        if isinstance(raw, dict | list):
            return raw
        if raw is None or raw == "":
            return {}
        if isinstance(raw, str):
            try:
                value = json.loads(raw)
            except ValueError as exc:
                raise ValueError(f"Value must be valid JSON: {exc}") from None
            if not isinstance(value, dict | list):
                raise ValueError("Value must be a JSON map or list")
            return value
        raise ValueError("Value must be valid JSON")
    raise ValueError(f"unknown type {kind}")


def display_value(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind == "comma_delimited_list" and isinstance(value, list):
        return ",".join(str(x) for x in value)
    if kind == "json":
        return json.dumps(value)
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _violation(p: Parameter, c: dict, value: Any, custom: CustomCheck | None) -> str | None:
    if "length" in c:
        lo, hi = c["length"].get("min"), c["length"].get("max")
        n = len(value) if value is not None else 0
        if (lo is not None and n < lo) or (hi is not None and n > hi):
            return f"length must be between {lo} and {hi} (was {n})".replace("None", "-")
    if "range" in c:
        lo, hi = c["range"].get("min"), c["range"].get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            return f"{value} is out of range (min: {lo}, max: {hi})"
    if "modulo" in c:
        step, offset = c["modulo"].get("step"), c["modulo"].get("offset", 0)
        if step and value % step != offset:
            return f"{value} is not a multiple of {step} with an offset of {offset}"
    if "allowed_values" in c:
        allowed = c["allowed_values"]
        items = value if isinstance(value, list) else [value]
        for item in items:
            if item not in allowed and str(item) not in [str(a) for a in allowed]:
                return f'"{item}" is not an allowed value {allowed}'
    if "allowed_pattern" in c:
        pattern = c["allowed_pattern"]
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            return f'"{value}" does not match pattern "{pattern}"'
    if "custom_constraint" in c:
        if custom is None:
            return None
        return custom(c["custom_constraint"], value)
    return None


_CONSTRAINT_KEYS = {
    "string": {"length", "allowed_values", "allowed_pattern", "custom_constraint"},
    "number": {"range", "modulo", "allowed_values", "custom_constraint"},
    "comma_delimited_list": {"length", "allowed_values", "custom_constraint"},
    "json": {"length", "allowed_values", "custom_constraint"},
    "boolean": {"allowed_values", "custom_constraint"},
}


def parse_parameters(section: Any, version: Version) -> dict[str, Parameter]:
    """The `parameters` section as Parameter objects; 400 on any malformed definition."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise TemplateError('The "parameters" section must be a map')
    allowed_keys = {
        "type",
        "label",
        "description",
        "default",
        "hidden",
        "constraints",
        "immutable",
    }
    if version.at_least("2018-03-02"):
        allowed_keys.add("tags")
    out: dict[str, Parameter] = {}
    for name, spec in section.items():
        if not isinstance(spec, dict):
            raise TemplateError(f'Invalid parameter "{name}": it must be a map')
        extra = set(spec) - allowed_keys
        if extra:
            raise TemplateError(f'Invalid key "{sorted(extra)[0]}" for parameter ({name})')
        kind = spec.get("type")
        if kind not in TYPES:
            raise TemplateError(
                f"Invalid type ({kind}) for parameter ({name}); allowed: {', '.join(TYPES)}"
            )
        constraints = spec.get("constraints") or []
        if not isinstance(constraints, list):
            raise TemplateError(
                f"Invalid parameter constraints for parameter {name}, expected a list"
            )
        for c in constraints:
            if not isinstance(c, dict):
                raise TemplateError(f"Invalid parameter constraints for parameter {name}")
            kinds = set(c) - {"description"}
            if len(kinds) != 1:
                raise TemplateError(f"Invalid parameter constraints for parameter {name}")
            ck = kinds.pop()
            if ck == "modulo" and not version.at_least("2017-02-24"):
                raise TemplateError(f'Invalid key "modulo" for parameter constraints of {name}')
            if ck not in _CONSTRAINT_KEYS[kind]:
                raise TemplateError(f'Invalid constraint "{ck}" for {kind} parameter ({name})')
        p = Parameter(
            name=name,
            type=kind,
            label=spec.get("label"),
            description=str(spec.get("description", "")),
            default=spec.get("default"),
            has_default="default" in spec,
            hidden=_coerce("boolean", spec.get("hidden", False)),
            immutable=_coerce("boolean", spec.get("immutable", False)),
            constraints=constraints,
            tags=list(spec.get("tags") or []),
        )
        if p.has_default and p.default is not None:
            p.default = p.coerce(p.default)
        out[name] = p
    return out


def parse_groups(section: Any, params: dict[str, Parameter]) -> list[dict]:
    if section is None:
        return []
    if not isinstance(section, list):
        raise TemplateError('The "parameter_groups" section must be a list')
    seen: set[str] = set()
    for group in section:
        if not isinstance(group, dict):
            raise TemplateError("Parameter groups must be maps")
        names = group.get("parameters")
        if not isinstance(names, list):
            raise TemplateError(f"Parameters must be provided for each parameter group ({group})")
        for n in names:
            if n in seen:
                raise TemplateError(
                    f'The "{n}" parameter must be provided in only one parameter group'
                )
            if n not in params:
                raise TemplateError(
                    f"The grouped parameter {n} does not reference a valid parameter"
                )
            seen.add(n)
    return section


def resolve_values(
    params: dict[str, Parameter],
    user: dict[str, Any],
    defaults: dict[str, Any],
    custom: CustomCheck | None,
    *,
    strict: bool = True,
) -> dict[str, Any]:
    """Typed, checked values of every parameter from user values, env defaults, template defaults.

    With strict=False (template validate), a parameter without any value is left out.
    """
    unknown = [k for k in user if k not in params and k not in PSEUDO]
    if unknown:
        raise TemplateError(
            f"The Parameter ({unknown[0]}) was not defined in template.",
            kind="UnknownUserParameter",
        )
    values: dict[str, Any] = {}
    for name, p in params.items():
        if name in user:
            raw = user[name]
        elif name in defaults:
            raw = defaults[name]
        elif p.has_default:
            raw = p.default
        else:
            if strict:
                raise TemplateError(
                    f"The Parameter ({name}) was not provided.", kind="UserParameterMissing"
                )
            continue
        value = p.coerce(raw)
        p.check(value, custom)
        values[name] = value
    return values
