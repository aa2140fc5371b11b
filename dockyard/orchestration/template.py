"""A HOT template: parsing, section checks, resource definitions, conditions, dependencies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from dockyard.orchestration.errors import (
    TemplateError,
    circular,
    invalid_section,
    invalid_version,
)
from dockyard.orchestration.functions import FunctionError, Resolver
from dockyard.orchestration.parameters import Parameter, parse_groups, parse_parameters
from dockyard.orchestration.versions import VERSIONS, Version, lookup

MAX_TEMPLATE_BYTES = 524288
MAX_RESOURCES = 1000
DELETION_POLICIES = {"Delete", "Retain", "Snapshot"}


class _Loader(yaml.SafeLoader):
    """YAML without timestamps (so `2016-10-14` stays a string), as Heat parses templates."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_text(text: str | bytes) -> dict:
    """A template (or environment) document from JSON or YAML text."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if len(text.encode()) > MAX_TEMPLATE_BYTES:
        raise TemplateError(
            f"Template size ({len(text.encode())} bytes) exceeds maximum allowed size "
            f"({MAX_TEMPLATE_BYTES} bytes).",
            kind="RequestLimitExceeded",
        )
    try:
        doc = json.loads(text) if text.lstrip().startswith("{") else yaml.load(text, _Loader)
    except (ValueError, yaml.YAMLError) as exc:
        raise TemplateError(f"Error parsing template: {exc}", kind="InvalidTemplate") from exc
    if not isinstance(doc, dict):
        raise TemplateError("The template is not a JSON object or YAML mapping.")
    return doc


def check_size(template: dict) -> None:
    size = len(json.dumps(template, default=str))
    if size > MAX_TEMPLATE_BYTES:
        raise TemplateError(
            f"Template size ({size} bytes) exceeds maximum allowed size "
            f"({MAX_TEMPLATE_BYTES} bytes).",
            kind="RequestLimitExceeded",
        )


@dataclass
class ResourceDef:
    name: str
    type: str
    properties: dict
    metadata: dict = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    deletion_policy: str = "Delete"
    update_policy: dict = field(default_factory=dict)
    condition: Any = True
    external_id: Any = None
    description: str = ""


@dataclass
class OutputDef:
    name: str
    value: Any
    description: str = "No description given"
    condition: Any = True


def references(node: Any) -> set[str]:
    """Resource names a snippet refers to through get_resource / get_attr / Ref / Fn::GetAtt."""
    found: set[str] = set()

    def walk(n: Any) -> None:
        if isinstance(n, dict):
            if len(n) == 1:
                ((k, v),) = n.items()
                if k == "get_resource" and isinstance(v, str):
                    found.add(v)
                elif k in ("get_attr", "Fn::GetAtt") and isinstance(v, list) and v:
                    if isinstance(v[0], str):
                        found.add(v[0])
                elif k == "Ref" and isinstance(v, str):
                    found.add("Ref:" + v)
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    walk(node)
    return found


class Template:
    """A parsed, structurally valid HOT template of one version."""

    def __init__(self, doc: dict):
        if not isinstance(doc, dict):
            raise TemplateError("The template is not a JSON object or YAML mapping.")
        self.doc = doc
        if "heat_template_version" not in doc:
            if "AWSTemplateFormatVersion" in doc or "HeatTemplateFormatVersion" in doc:
                raise invalid_version("CFN templates are not supported; use a HOT template")
            raise TemplateError("Template format version not found.", kind="InvalidTemplate")
        version = lookup(doc["heat_template_version"])
        if version is None:
            known = ", ".join(f'"heat_template_version.{v.date}"' for v in VERSIONS)
            raise invalid_version(
                f'"heat_template_version.{doc["heat_template_version"]}". Should be one of: {known}'
            )
        self.version: Version = version
        for key in doc:
            if key not in version.sections:
                raise invalid_section(key)
        self.description = str(doc.get("description") or "No description")
        self.parameters: dict[str, Parameter] = parse_parameters(doc.get("parameters"), version)
        self.parameter_groups = parse_groups(doc.get("parameter_groups"), self.parameters)
        self.conditions: dict = doc.get("conditions") or {}
        if not isinstance(self.conditions, dict):
            raise TemplateError('The "conditions" section must be a map')
        self.resources = self._resources(doc.get("resources"))
        self.outputs = self._outputs(doc.get("outputs"))

    # ---- sections -------------------------------------------------------------------

    def _resources(self, section: Any) -> dict[str, ResourceDef]:
        if section is None:
            return {}
        if not isinstance(section, dict):
            raise TemplateError('The "resources" section must be a map')
        if len(section) > MAX_RESOURCES:
            raise TemplateError(
                f"Maximum resources per stack exceeded ({MAX_RESOURCES}).",
                kind="RequestLimitExceeded",
            )
        out: dict[str, ResourceDef] = {}
        for name, spec in section.items():
            where = f"resources.{name}"
            if not isinstance(spec, dict):
                raise TemplateError(f'"{where}" must be a map with a "type"')
            extra = set(spec) - self.version.resource_keys
            if extra:
                raise TemplateError(
                    f'"{sorted(extra)[0]}" is not a valid keyword inside a resource definition'
                )
            rtype = spec.get("type")
            if not isinstance(rtype, str) or not rtype:
                raise TemplateError(f'Resource {name}: "type" must be a string')
            props = spec.get("properties") or {}
            if not isinstance(props, dict):
                raise TemplateError(f'"properties" of resource {name} must be a map')
            metadata = spec.get("metadata") or {}
            if not isinstance(metadata, dict):
                raise TemplateError(f'"metadata" of resource {name} must be a map')
            deps = spec.get("depends_on") or []
            if isinstance(deps, str):
                deps = [deps]
            if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
                raise TemplateError(f'"depends_on" of resource {name} must be a name or list')
            policy = spec.get("deletion_policy", "Delete")
            if isinstance(policy, str) and self.version.at_least("2016-10-14"):
                policy = policy.capitalize()
            if policy not in DELETION_POLICIES:
                raise TemplateError(
                    f'Invalid deletion policy "{policy}" of resource {name}; '
                    f"allowed: {', '.join(sorted(DELETION_POLICIES))}"
                )
            out[name] = ResourceDef(
                name=name,
                type=rtype,
                properties=props,
                metadata=metadata,
                depends_on=list(deps),
                deletion_policy=policy,
                update_policy=spec.get("update_policy") or {},
                condition=spec.get("condition", True),
                external_id=spec.get("external_id"),
                description=str(spec.get("description", "")),
            )
        return out

    def _outputs(self, section: Any) -> dict[str, OutputDef]:
        if section is None:
            return {}
        if not isinstance(section, dict):
            raise TemplateError('The "outputs" section must be a map')
        out: dict[str, OutputDef] = {}
        for name, spec in section.items():
            if not isinstance(spec, dict) or "value" not in spec:
                raise TemplateError(f"Each output definition must contain a value key ({name}).")
            extra = set(spec) - self.version.output_keys
            if extra:
                raise TemplateError(f'"{sorted(extra)[0]}" is not a valid keyword of output {name}')
            out[name] = OutputDef(
                name,
                spec["value"],
                str(spec.get("description") or "No description given"),
                spec.get("condition", True),
            )
        return out

    # ---- conditions -----------------------------------------------------------------

    def evaluate_conditions(self, params: dict[str, Any]) -> dict[str, bool]:
        """Every named condition's value; conditions may use params and each other only."""
        results: dict[str, bool] = {}
        busy: list[str] = []
        tpl = self

        class _CondScope:
            def param(self, name: str) -> Any:
                if name not in params:
                    raise FunctionError(f"The Parameter ({name}) could not be found.")
                return params[name]

            def resource_ref(self, name: str) -> Any:
                raise FunctionError("Conditions cannot reference resources")

            def attribute(self, name: str, attr: str, path: list) -> Any:
                raise FunctionError("Conditions cannot reference resources")

            def all_attributes(self, name: str) -> dict:
                raise FunctionError("Conditions cannot reference resources")

            def file(self, key: str) -> Any:
                raise FunctionError("Conditions cannot include files")

            def condition(self, name: str) -> bool:
                if name in results:
                    return results[name]
                if name not in tpl.conditions:
                    raise FunctionError(f'Invalid condition "{name}"')
                if name in busy:
                    raise FunctionError(f'Circular definition of condition "{name}"')
                busy.append(name)
                results[name] = resolver.condition_value(tpl.conditions[name])
                busy.remove(name)
                return results[name]

        resolver = Resolver(self.version, _CondScope())
        for name in self.conditions:
            try:
                _CondScope().condition(name)
            except FunctionError as exc:
                raise TemplateError(f"conditions.{name}: {exc}") from exc
        return results

    def is_enabled(self, value: Any, conditions: dict[str, bool], where: str) -> bool:
        if value is True or value is None:
            return True
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value not in conditions:
            if value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise TemplateError(f'{where}: Invalid condition "{value}"')
        try:
            return Resolver(self.version, _NamesOnly(conditions)).condition_value(value)
        except FunctionError as exc:
            raise TemplateError(f"{where}: {exc}") from exc

    def active_resources(self, conditions: dict[str, bool]) -> dict[str, ResourceDef]:
        return {
            n: r
            for n, r in self.resources.items()
            if self.is_enabled(r.condition, conditions, f"resources.{n}.condition")
        }

    # ---- dependencies ---------------------------------------------------------------

    def dependencies(self, active: dict[str, ResourceDef]) -> dict[str, set[str]]:
        """resource -> the resources it needs first; 400 on unknown names or a cycle."""
        deps: dict[str, set[str]] = {}
        params = set(self.parameters)
        for name, r in active.items():
            needed: set[str] = set()
            for ref in references([r.properties, r.metadata]):
                if ref.startswith("Ref:"):
                    ref = ref[4:]
                    if ref in params or ref not in self.resources:
                        continue
                if ref not in self.resources:
                    raise TemplateError(
                        f'The specified reference "{ref}" (in {name}) is incorrect.',
                        kind="InvalidTemplateReference",
                    )
                if ref in active:
                    needed.add(ref)
            for d in r.depends_on:
                if d not in self.resources:
                    raise TemplateError(
                        f'The specified reference "{d}" (in {name}) is incorrect.',
                        kind="InvalidTemplateReference",
                    )
                if d in active:
                    needed.add(d)
            deps[name] = needed
        cycle = find_cycle(deps)
        if cycle:
            raise circular(cycle)
        return deps


class _NamesOnly:
    def __init__(self, conditions: dict[str, bool]):
        self.conditions = conditions

    def param(self, name: str) -> Any:
        raise FunctionError("only condition names may be used here")

    def resource_ref(self, name: str) -> Any:
        raise FunctionError("only condition names may be used here")

    def attribute(self, name: str, attr: str, path: list) -> Any:
        raise FunctionError("only condition names may be used here")

    def all_attributes(self, name: str) -> dict:
        raise FunctionError("only condition names may be used here")

    def file(self, key: str) -> Any:
        raise FunctionError("only condition names may be used here")

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            raise FunctionError(f'Invalid condition "{name}"')
        return self.conditions[name]


def find_cycle(deps: dict[str, set[str]]) -> list[str] | None:
    """A dependency cycle as [a, b, ..., a], or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(deps, WHITE)
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        color[n] = GREY
        stack.append(n)
        for m in sorted(deps.get(n, ())):
            if color.get(m, BLACK) == GREY:
                return stack[stack.index(m) :] + [m]
            if color.get(m) == WHITE:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        color[n] = BLACK
        return None

    for n in sorted(deps):
        if color[n] == WHITE:
            found = visit(n)
            if found:
                return found
    return None


def topological(deps: dict[str, set[str]]) -> list[str]:
    """A creation order (prerequisites first); deterministic."""
    done: list[str] = []
    placed: set[str] = set()
    remaining = dict(deps)
    while remaining:
        ready = sorted(n for n, d in remaining.items() if d <= placed)
        if not ready:
            raise circular(find_cycle(remaining) or sorted(remaining))
        for n in ready:
            done.append(n)
            placed.add(n)
            del remaining[n]
    return done


def required_by(deps: dict[str, set[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {n: [] for n in deps}
    for n, needs in deps.items():
        for m in needs:
            out.setdefault(m, []).append(n)
    return {k: sorted(v) for k, v in out.items()}
