"""A stack definition: template + environment + parameters, validated, with resolution of
properties and outputs against whatever the resources currently are."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from dockyard.api.errors import ApiError
from dockyard.orchestration.errors import TemplateError
from dockyard.orchestration.functions import ELIDED, FunctionError, Resolver
from dockyard.orchestration.parameters import PSEUDO, CustomCheck, resolve_values
from dockyard.orchestration.resources.base import Context, Resource, validate_properties
from dockyard.orchestration.resources.nested import MAX_DEPTH, for_template, is_template_type
from dockyard.orchestration.template import Template, required_by, topological

ENV_KEYS = {
    "parameters",
    "parameter_defaults",
    "resource_registry",
    "event_sinks",
    "encrypted_param_names",
    "parameter_merge_strategies",
}


class Lookup(Protocol):
    """What the resources currently are (the engine reads rows; validation uses placeholders)."""

    def ref(self, name: str) -> Any: ...
    def attr(self, name: str, attr: str) -> Any: ...
    def all_attrs(self, name: str) -> dict: ...


class Placeholders:
    """Validation-time lookup: references are the names, attributes unknown (None)."""

    def ref(self, name: str) -> Any:
        return name

    def attr(self, name: str, attr: str) -> Any:
        return None

    def all_attrs(self, name: str) -> dict:
        return {}


def check_environment(env: Any) -> dict:
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise TemplateError("The environment is not a valid YAML mapping data type.")
    for key in env:
        if key not in ENV_KEYS:
            raise TemplateError(f'environment has unknown section "{key}"')
    return env


@dataclass
class Definition:
    template: Template
    files: dict
    environment: dict
    params: dict[str, Any]
    pseudo: dict[str, Any]
    conditions: dict[str, bool]
    active: dict
    deps: dict[str, set[str]]
    order: list[str]
    registry: dict[str, type[Resource]]

    @classmethod
    def build(
        cls,
        doc: dict,
        files: dict | None,
        environment: dict | None,
        user_params: dict | None,
        pseudo: dict[str, Any],
        registry: dict[str, type[Resource]],
        custom: CustomCheck | None = None,
        *,
        strict: bool = True,
        depth: int = 0,
    ) -> Definition:
        tpl = Template(doc)
        env = check_environment(environment)
        merged = {**(env.get("parameters") or {}), **(user_params or {})}
        params = resolve_values(
            tpl.parameters, merged, env.get("parameter_defaults") or {}, custom, strict=strict
        )
        conditions = tpl.evaluate_conditions({**params, **pseudo})
        active = tpl.active_resources(conditions)
        aliases = env.get("resource_registry") or {}
        registry = dict(registry)
        for name, r in active.items():
            rtype = aliases.get(r.type, r.type) if isinstance(aliases, dict) else r.type
            if isinstance(rtype, str) and rtype != r.type:
                r.type = rtype
            if r.type not in registry and is_template_type(r.type):
                registry[r.type] = _provider(r.type, files or {}, pseudo, registry, depth)
            if r.type not in registry:
                raise TemplateError(
                    f"Failed to validate: resources.{name}: The Resource Type ({r.type}) "
                    "could not be found.",
                    kind="StackValidationFailed",
                )
        deps = tpl.dependencies(active)
        return cls(
            tpl,
            files or {},
            env,
            params,
            pseudo,
            conditions,
            active,
            deps,
            topological(deps),
            registry,
        )

    # ---- resolution -----------------------------------------------------------------

    def resolver(self, lookup: Lookup) -> Resolver:
        return Resolver(self.template.version, _Scope(self, lookup))

    def properties(self, name: str, lookup: Lookup, *, check: bool = True) -> dict:
        r = self.active[name]
        where = f"resources.{name}.properties"
        resolver = self.resolver(lookup)
        raw: dict = {}
        if isinstance(r.properties, dict) and not _is_call(r.properties):
            for key, value in r.properties.items():
                try:
                    got = resolver.resolve(value)
                except FunctionError as exc:  # Heat's own format, path and all
                    raise TemplateError(f"Property error: : {where}.{key}: : {exc}") from exc
                if got is not ELIDED:
                    raw[key] = got
        else:
            raw = resolver.resolve_at(r.properties, where) or {}
        if not check:
            return raw
        cls = self.registry[r.type]
        return validate_properties(cls.properties_schema, raw, where, cls.any_properties)

    def metadata(self, name: str, lookup: Lookup) -> dict:
        return self.resolver(lookup).resolve_at(self.active[name].metadata, "metadata") or {}

    def required_by(self) -> dict[str, list[str]]:
        return required_by(self.deps)

    def validate(self, make_ctx: Callable[[], Context]) -> None:
        """Every resource's properties against its schema and its plugin's own checks."""
        lookup = Placeholders()
        for name in self.order:
            cls = self.registry[self.active[name].type]
            props = self.properties(name, lookup)
            plugin = cls(make_ctx(), name, props)
            plugin.unresolved = True
            plugin.validate()
        self.outputs(lookup, strict=True)

    def outputs(self, lookup: Lookup, *, strict: bool = False) -> list[dict]:
        out = []
        resolver = self.resolver(lookup)
        for name, o in self.template.outputs.items():
            item: dict[str, Any] = {"output_key": name, "description": o.description}
            try:
                enabled = self.template.is_enabled(o.condition, self.conditions, f"outputs.{name}")
                value = resolver.resolve(o.value) if enabled else None
                item["output_value"] = None if value is ELIDED else value
            except FunctionError as exc:
                if strict:
                    raise TemplateError(f"outputs.{name}: {exc}") from exc
                item["output_value"] = None
                item["output_error"] = str(exc)
            except ApiError as exc:
                if strict:
                    raise
                item["output_value"] = None
                item["output_error"] = exc.message
            except Exception as exc:  # noqa: BLE001 - a broken output never breaks the stack
                if strict:
                    raise TemplateError(f"outputs.{name}: {exc}") from exc
                item["output_value"] = None
                item["output_error"] = str(exc)
            out.append(item)
        return out


class _Scope:
    def __init__(self, d: Definition, lookup: Lookup):
        self.d = d
        self.lookup = lookup

    def param(self, name: str) -> Any:
        if name in self.d.pseudo:
            return self.d.pseudo[name]
        if name in self.d.params:
            return self.d.params[name]
        if name in self.d.template.parameters:
            return None  # validate without a value
        raise FunctionError(f"The Parameter ({name}) was not provided.")

    def _known(self, name: str) -> bool:
        if name not in self.d.template.resources:
            raise FunctionError(f'The specified reference "{name}" is incorrect.')
        return name in self.d.active

    def resource_ref(self, name: str) -> Any:
        return self.lookup.ref(name) if self._known(name) else None

    def attribute(self, name: str, attr: str, path: list) -> Any:
        if not self._known(name):
            return None
        cls = self.d.registry[self.d.active[name].type]
        if not cls.accepts_attribute(attr):
            raise FunctionError(f"The Referenced Attribute ({name} {attr}) is incorrect.")
        value = self.lookup.attr(name, attr)
        if value is None or not path:
            return value
        from dockyard.orchestration.functions import _walk_path

        return _walk_path(value, path, f"attribute {attr} of {name}")

    def all_attributes(self, name: str) -> dict:
        return self.lookup.all_attrs(name) if self._known(name) else None

    def file(self, key: str) -> Any:
        if key not in self.d.files:
            raise FunctionError(f'No content found in the "files" section for get_file path: {key}')
        return self.d.files[key]

    def condition(self, name: str) -> bool:
        if name not in self.d.conditions:
            raise FunctionError(f'Invalid condition "{name}"')
        return self.d.conditions[name]


def _is_call(node: dict) -> bool:
    from dockyard.orchestration.versions import ALL_FUNCTIONS

    return len(node) == 1 and next(iter(node)) in ALL_FUNCTIONS


def _provider(type_name: str, files: dict, pseudo: dict, registry: dict, depth: int):
    """The class of a provider template from `files`, its own template checked too."""
    from dockyard.orchestration.template import parse_text

    if depth >= MAX_DEPTH:
        raise TemplateError(f"Recursion depth exceeds {MAX_DEPTH} with template {type_name}")
    if type_name not in files:
        raise TemplateError(
            f'Could not fetch remote template "{type_name}": it is not in the "files" of '
            "the request (the clients add it for a local file)"
        )
    text = files[type_name]
    doc = text if isinstance(text, dict) else parse_text(text)
    Definition.build(doc, files, {}, {}, pseudo, registry, strict=False, depth=depth + 1)
    return for_template(type_name, doc)


def pseudo_params(stack_name: str, stack_id: str, project_id: str) -> dict[str, str]:
    return dict(zip(PSEUDO, (stack_name, stack_id, project_id), strict=True))
