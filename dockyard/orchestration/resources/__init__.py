"""The registry of resource types."""

from __future__ import annotations

from dockyard.orchestration.resources.base import Resource


def registry() -> dict[str, type[Resource]]:
    from dockyard.orchestration.resources import docker as docker_res
    from dockyard.orchestration.resources import heat, nested, neutron, nova
    from dockyard.orchestration.resources.group import ResourceGroup

    types: list[type[Resource]] = [
        docker_res.DockerContainer,
        heat.RandomString,
        heat.Value,
        heat.NoneResource,
        heat.TestResource,
        ResourceGroup,
        neutron.Net,
        neutron.Subnet,
        neutron.Port,
        neutron.SecurityGroup,
        nested.HeatStack,
        nova.Server,
        nova.KeyPair,
        nova.ServerGroup,
    ]
    found = {t.type_name: t for t in types}
    ResourceGroup.registry = found
    return found


def lookup_type(types: dict[str, type[Resource]], type_name: str) -> type[Resource] | None:
    """The class of a type: registered, or a provider template (schema-less view of it)."""
    from dockyard.orchestration.resources import nested

    cls = types.get(type_name)
    if cls is None and nested.is_template_type(type_name):
        cls = nested.generic(type_name)
    return cls
