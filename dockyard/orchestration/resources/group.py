"""OS::Heat::ResourceGroup: `count` copies of one resource definition, managed inline.

Members are plugin instances of the member type whose state lives in the group's `data`
(physical id, data and incarnation per index), so they resume after a crash like any
resource. `%index%` (or `index_var`) in the definition becomes the member's index.
"""

from __future__ import annotations

import json
import time
from typing import Any

from dockyard.orchestration.errors import ResourceFailure, TemplateError
from dockyard.orchestration.resources.base import Prop, Resource, validate_properties


class ResourceGroup(Resource):
    type_name = "OS::Heat::ResourceGroup"
    description = "Creates one or more identically configured nested resources."
    support_status = {"status": "SUPPORTED", "version": "2014.1", "message": None,
                      "previous_status": None}  # fmt: skip
    properties_schema = {
        "count": Prop("integer", "The number of resources to create.", default=1,
                      update_allowed=True, constraints=[{"range": {"min": 0}}]),
        "index_var": Prop("string", "A variable that this resource will use to replace with "
                          "the current index of a given resource in the group.",
                          default="%index%", constraints=[{"length": {"min": 3}}]),
        "resource_def": Prop(
            "map",
            "Resource definition for the resources in the group.",
            required=True,
            update_allowed=True,
            schema={
                "type": Prop("string", "The type of the resources in the group.", required=True),
                "properties": Prop("map", "Property values for the resources in the group."),
                "metadata": Prop("map", "Supplied metadata for the resources in the group."),
            },
        ),
        "removal_policies": Prop("list", "Policies for removal of resources on update.",
                                 default=[], update_allowed=True),
    }  # fmt: skip
    attributes_schema = {
        "refs": {"description": "A list of resource IDs for the resources in the group.",
                 "type": "list"},
        "refs_map": {"description": "A map of resource names to IDs for the resources in the "
                     "group.", "type": "map"},
        "removed_rsrc_list": {"description": "A list of removed resource names.", "type": "list"},
        "attributes": {"description": "A map of resource names to the specified attribute of "
                       "each individual resource.", "type": "map"},
    }  # fmt: skip
    poll_interval = 0.25
    registry: dict[str, type[Resource]] = {}

    @classmethod
    def accepts_attribute(cls, name: str) -> bool:
        return True  # refs, resource.<n>, or any attribute of the members

    # ---- members --------------------------------------------------------------------

    def _member_type(self) -> type[Resource]:
        from dockyard.orchestration.resources import lookup_type

        rtype = (self.properties.get("resource_def") or {}).get("type")
        cls = lookup_type(self.registry, rtype) if isinstance(rtype, str) else None
        if cls is None or cls is ResourceGroup:
            raise TemplateError(
                f"Property error: resources.{self.name}.properties.resource_def.type: "
                f"The Resource Type ({rtype}) could not be found."
            )
        return cls

    def _member_props(self, index: int) -> dict:
        rdef = self.properties.get("resource_def") or {}
        var = self.properties.get("index_var") or "%index%"
        raw = json.loads(json.dumps(rdef.get("properties") or {}).replace(var, str(index)))
        cls = self._member_type()
        return validate_properties(
            cls.properties_schema,
            raw,
            f"resources.{self.name}.properties.resource_def.properties",
            cls.any_properties,
        )

    def _member(self, index: int, state: dict | None = None) -> Resource:
        state = state or self.data.get("members", {}).get(str(index), {})
        return self._member_type()(
            self.ctx,
            f"{self.name}-{index}",
            state.get("properties") or self._member_props(index),
            physical_id=state.get("physical_id"),
            data=state.get("data"),
            incarnation=state.get("incarnation") or f"{self.incarnation}-{index}",
        )

    def _save(self, index: int, member: Resource) -> None:
        self.data.setdefault("members", {})[str(index)] = {
            "physical_id": member.physical_id,
            "data": member.data,
            "incarnation": member.incarnation,
            "properties": member.properties,
        }

    def validate(self) -> None:
        cls = self._member_type()
        for i in range(min(int(self.properties.get("count") or 0), 1)):
            member = cls(self.ctx, f"{self.name}-{i}", self._member_props(i))
            member.unresolved = self.unresolved
            member.validate()

    # ---- steps ----------------------------------------------------------------------

    def create(self) -> str:
        self.data.setdefault("members", {})
        for i in range(int(self.properties.get("count") or 0)):
            self._create_member(i)
        return self.physical_id or f"{self.ctx.stack_name}-{self.name}-{self.incarnation[:8]}"

    def _create_member(self, i: int) -> None:
        state = self.data.get("members", {}).get(str(i))
        if state and state.get("physical_id"):
            return
        m = self._member(i, {"properties": self._member_props(i)})
        m.physical_id = m.create()
        self._save(i, m)

    def check_create(self) -> bool:
        done = True
        for key in sorted(self.data.get("members", {}), key=int):
            m = self._member(int(key))
            if not m.check_create():
                done = False
            self._save(int(key), m)
        return done

    def delete(self) -> None:
        for key in list(self.data.get("members", {})):
            m = self._member(int(key))
            m.delete()
            self._save(int(key), m)

    def check_delete(self) -> bool:
        members = self.data.get("members", {})
        for key in list(members):
            m = self._member(int(key))
            if not m.check_delete():
                return False
            members.pop(key)
        return True

    def needs_replace(self, new_properties: dict, changed: set[str]) -> bool:
        return "index_var" in changed

    def update(self, new_properties: dict, changed: set[str]) -> None:
        old_def = self.properties.get("resource_def")
        self.properties = new_properties
        count = int(new_properties.get("count") or 0)
        members = self.data.setdefault("members", {})
        removed = [k for k in members if int(k) >= count]
        if "resource_def" in changed and new_properties.get("resource_def") != old_def:
            removed = list(members)  # every member gets the new definition
        for key in removed:
            m = self._member(int(key))
            m.delete()
            deadline = time.monotonic() + 600
            while not m.check_delete():
                if time.monotonic() > deadline:
                    raise ResourceFailure(f"member {key} of {self.name} was not deleted")
                time.sleep(m.poll_interval)
            members.pop(key)
            self.data.setdefault("removed", []).append(key)
        for i in range(count):
            self._create_member(i)

    def check_update(self) -> bool:
        return self.check_create()

    # ---- attributes -----------------------------------------------------------------

    def _ordered(self) -> list[Resource]:
        return [self._member(int(k)) for k in sorted(self.data.get("members", {}), key=int)]

    def attribute(self, name: str) -> Any:
        members = self._ordered()
        if name == "refs":
            return [m.reference() for m in members]
        if name == "refs_map":
            return {m.name: m.reference() for m in members}
        if name == "removed_rsrc_list":
            return list(self.data.get("removed", []))
        if name.startswith("resource."):
            key = name.split(".", 1)[1]
            state = self.data.get("members", {}).get(key)
            if state is None:
                return None
            m = self._member(int(key))
            attr = name.split(".", 2)[2] if name.count(".") >= 2 else None
            return m.attribute(attr) if attr else m.all_attributes()
        if name == "attributes":
            return {m.name: m.all_attributes() for m in members}
        return [m.attribute(name) for m in members]

    def all_attributes(self) -> dict:
        return {k: self.attribute(k) for k in ("refs", "refs_map", "removed_rsrc_list")}
