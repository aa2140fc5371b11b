"""Nested stacks: provider templates (`type: mynested.yaml`, the file coming in `files`)
and OS::Heat::Stack. The child is a real stack (its own rows, events, durable operation)
whose parent is the resource; the resource's physical id is the child stack's id, its
properties are the child's parameters and its attributes the child's outputs."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from dockyard.db.base import utcnow
from dockyard.orchestration.errors import ResourceFailure, TemplateError
from dockyard.orchestration.resources.base import Prop, Resource

SUFFIXES = (".yaml", ".yml", ".template", ".json", ".hot")
_NS = uuid.UUID("9a4c1a53-7d0e-4d71-a7a0-2f6f0e1c5b3e")
_PARAM_PROP = {
    "string": "string",
    "number": "number",
    "comma_delimited_list": "list",
    "json": "map",
    "boolean": "boolean",
}
MAX_DEPTH = 5


def is_template_type(type_name: str) -> bool:
    return type_name.endswith(SUFFIXES) or type_name.startswith(("file:", "http:", "https:"))


class NestedStack(Resource):
    """What both kinds share: make, wait for, update and delete the child stack."""

    poll_interval = 0.3
    attributes_schema: ClassVar[dict[str, dict]] = {}

    @classmethod
    def accepts_attribute(cls, name: str) -> bool:
        return True  # the child's outputs (known only once its template is)

    # subclasses: the child's template and parameters
    def child_template(self, files: dict) -> dict:
        raise NotImplementedError

    def child_parameters(self) -> dict:
        raise NotImplementedError

    def needs_replace(self, new_properties: dict, changed: set[str]) -> bool:
        return False

    def _db(self):
        return self.ctx.services.runtime.db

    def _engine(self):
        return self.ctx.services.engine

    def _parent_files(self, session) -> dict:
        from dockyard.orchestration.models import Stack

        parent = session.get(Stack, self.ctx.stack_id)
        if parent is None:
            return {}
        if parent.action in ("UPDATE", "ROLLBACK") and parent.new_files is not None:
            return dict(parent.new_files or {})
        return dict(parent.files or {})

    def create(self) -> str:
        from dockyard.orchestration import engine as eng
        from dockyard.orchestration.models import Stack

        child_id = str(uuid.uuid5(_NS, self.incarnation or f"{self.ctx.stack_id}/{self.name}"))
        with self._db().session() as s:
            if s.get(Stack, child_id) is None:
                parent = s.get(Stack, self.ctx.stack_id)
                files = self._parent_files(s)
                params = {k: v for k, v in self.child_parameters().items() if v is not None}
                child = Stack(
                    id=child_id,
                    name=f"{self.ctx.stack_name}-{self.name}-{child_id[:8]}",
                    project_id=self.ctx.project_id,
                    user_id=self.ctx.user_id,
                    username=self.ctx.user_name,
                    roles=list(self.ctx.roles),
                    template=self.child_template(files),
                    files=files,
                    environment={"parameters": params},
                    action="CREATE",
                    status="IN_PROGRESS",
                    status_reason="",
                    generation=0,
                    disable_rollback=True,
                    timeout_mins=parent.timeout_mins if parent else None,
                    created_at=utcnow(),
                    parent_id=self.ctx.stack_id,
                    parent_resource=self.name,
                )
                s.add(child)
                s.flush()
                eng.begin_action(s, child, "CREATE")
        self._engine().runner.kick()
        return child_id

    def _child_state(self) -> tuple[str, str, str] | None:
        from dockyard.orchestration.models import Stack

        with self._db().session() as s:
            child = s.get(Stack, self.physical_id) if self.physical_id else None
            return (child.action, child.status, child.status_reason) if child else None

    def _wait(self, action: str) -> bool:
        state = self._child_state()
        if state is None:
            raise ResourceFailure(f"the nested stack of {self.name} is gone")
        got_action, status, reason = state
        if status == "IN_PROGRESS" or got_action != action:
            return False
        if status == "FAILED":
            raise ResourceFailure(reason, "ResourceInError")
        return True

    def check_create(self) -> bool:
        return self._wait("CREATE")

    def update(self, new_properties: dict, changed: set[str]) -> None:
        from dockyard.orchestration import engine as eng
        from dockyard.orchestration.models import Stack

        self.properties = new_properties
        with self._db().session() as s:
            child = s.get(Stack, self.physical_id)
            if child is None:
                raise ResourceFailure(f"the nested stack of {self.name} is gone")
            files = self._parent_files(s)
            params = {k: v for k, v in self.child_parameters().items() if v is not None}
            child.new_template = self.child_template(files)
            child.new_files = files
            child.new_environment = {"parameters": params}
            child.updated_at = utcnow()
            eng.begin_action(s, child, "UPDATE")
        self._engine().runner.kick()

    def check_update(self) -> bool:
        return self._wait("UPDATE")

    def delete(self) -> None:
        from dockyard.orchestration import engine as eng
        from dockyard.orchestration.models import Stack

        if not self.physical_id:
            return
        with self._db().session() as s:
            child = s.get(Stack, self.physical_id)
            if child is None or (child.action == "DELETE" and child.status != "FAILED"):
                return
            eng.begin_action(s, child, "DELETE")
        self._engine().runner.kick()

    def check_delete(self) -> bool:
        state = self._child_state()
        if state is None or state[:2] == ("DELETE", "COMPLETE"):
            return True
        if state[:2] == ("DELETE", "FAILED"):
            raise ResourceFailure(state[2], "ResourceInError")
        return False

    def suspend(self) -> None:
        self._child_action("SUSPEND")

    def check_suspend(self) -> bool:
        return self._wait("SUSPEND")

    def resume(self) -> None:
        self._child_action("RESUME")

    def check_resume(self) -> bool:
        return self._wait("RESUME")

    def _child_action(self, action: str) -> None:
        from dockyard.orchestration import engine as eng
        from dockyard.orchestration.models import Stack

        with self._db().session() as s:
            child = s.get(Stack, self.physical_id)
            if child is not None:
                eng.begin_action(s, child, action)
        self._engine().runner.kick()

    def reference(self) -> Any:
        return self.physical_id or self.name

    def outputs(self) -> dict:
        return {k: v for k, (v, _) in self._outputs().items()}

    def _outputs(self) -> dict[str, tuple[Any, str | None]]:
        from dockyard.orchestration import engine as eng
        from dockyard.orchestration.models import Stack

        if not self.physical_id:
            return {}
        with self._db().session() as s:
            child = s.get(Stack, self.physical_id)
            if child is None:
                return {}
            s.expunge(child)
        engine = self._engine()
        defn = engine.definition(child)
        lookup = eng.Lookup(engine, child, defn, engine.context(child))
        return {
            o["output_key"]: (o.get("output_value"), o.get("output_error"))
            for o in defn.outputs(lookup)
        }

    def attribute(self, name: str) -> Any:
        if name == "OS::stack_id":
            return self.physical_id
        if name == "outputs":
            return self.outputs()
        value, error = self._outputs().get(name, (None, None))
        if error:
            from dockyard.orchestration.functions import FunctionError

            raise FunctionError(f"Error in {self.name} output {name}: {error}")
        return value

    def all_attributes(self) -> dict:
        return self.outputs()


class TemplateResource(NestedStack):
    """A resource whose type is a template in the request's files."""

    any_properties = True  # generic; the class made per template has the real schema
    child_doc: ClassVar[dict | None] = None
    description = "A resource implemented by a nested template."

    def child_template(self, files: dict) -> dict:
        if self.child_doc is not None:
            return self.child_doc
        from dockyard.orchestration.template import parse_text

        if self.type_name not in files:
            raise ResourceFailure(f"Could not fetch remote template {self.type_name!r}")
        text = files[self.type_name]
        return text if isinstance(text, dict) else parse_text(text)

    def child_parameters(self) -> dict:
        return dict(self.properties)


_GENERIC: dict[str, type[TemplateResource]] = {}


def generic(type_name: str) -> type[TemplateResource]:
    """A schema-less class for a template type (for delete, attributes, views)."""
    cls = _GENERIC.get(type_name)
    if cls is None:
        cls = type("TemplateResource", (TemplateResource,), {"type_name": type_name})
        _GENERIC[type_name] = cls
    return cls


def for_template(type_name: str, doc: dict) -> type[TemplateResource]:
    """The class of a provider template: its parameters are the properties, outputs the
    attributes (Heat's TemplateResource)."""
    from dockyard.orchestration.template import Template

    tpl = Template(doc)
    props = {
        name: Prop(
            _PARAM_PROP[p.type],
            p.description,
            default=p.default if p.has_default else None,
            required=not p.has_default,
            update_allowed=True,
        )
        for name, p in tpl.parameters.items()
    }
    attrs = {name: {"description": o.description} for name, o in tpl.outputs.items()}
    return type(
        "TemplateResource",
        (TemplateResource,),
        {
            "type_name": type_name,
            "properties_schema": props,
            "attributes_schema": attrs,
            "any_properties": False,
            "child_doc": doc,
        },
    )


class HeatStack(NestedStack):
    type_name = "OS::Heat::Stack"
    description = "A resource for managing a nested stack of this cloud."
    support_status = {"status": "SUPPORTED", "version": "2014.1", "message": None,
                      "previous_status": None}  # fmt: skip
    properties_schema = {
        "template": Prop("string", "Template that specifies the stack to be created as a "
                         "resource.", required=True, update_allowed=True),
        "parameters": Prop("map", "Set of parameters passed to this stack.", default={},
                           update_allowed=True),
        "timeout": Prop("integer", "Number of minutes to wait for this stack creation.",
                        update_allowed=True),
        "context": Prop("map", "Context for this stack (only the local region here).",
                        default={}),
    }  # fmt: skip
    attributes_schema = {
        "outputs": {"description": "A dict of key-value pairs output from the stack.",
                    "type": "map"},
        "stack_name": {"description": "Name of the stack.", "type": "string"},
    }  # fmt: skip

    def validate(self) -> None:
        region = (self.properties.get("context") or {}).get("region_name")
        if region and region != self.ctx.settings.region:
            raise TemplateError(
                f"Property error: resources.{self.name}.properties.context: region "
                f"{region} is not this cloud's ({self.ctx.settings.region})"
            )

    def child_template(self, files: dict) -> dict:
        from dockyard.orchestration.template import parse_text

        tpl = self.properties.get("template")
        return tpl if isinstance(tpl, dict) else parse_text(str(tpl))

    def child_parameters(self) -> dict:
        return dict(self.properties.get("parameters") or {})
