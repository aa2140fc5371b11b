"""The registry of resource types."""

from __future__ import annotations

from dockyard.orchestration.resources.base import Resource


def registry() -> dict[str, type[Resource]]:
    from dockyard.orchestration.resources import docker as docker_res
    from dockyard.orchestration.resources import heat, neutron
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
    ]
    found = {t.type_name: t for t in types}
    ResourceGroup.registry = found
    return found
