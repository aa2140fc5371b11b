"""OS::Nova::Server's update planning without a cloud: what changes in place, what replaces."""

from __future__ import annotations

import pytest

from dockyard.config import Settings
from dockyard.orchestration.errors import TemplateError
from dockyard.orchestration.resources.base import Context, validate_properties
from dockyard.orchestration.resources.nova import Server

BASE = {"image": "img", "flavor": "m1.tiny", "networks": [{"network": "private"}]}


def server(**props) -> Server:
    ctx = Context(
        project_id="p", user_id="u", user_name="u", roles=["member"], stack_id="sid",
        stack_name="s", settings=Settings(),
    )  # fmt: skip
    full = validate_properties(Server.properties_schema, {**BASE, **props}, "resources.s")
    return Server(ctx, "s", full)


def replaces(old: dict, new: dict) -> bool:
    a, b = server(**old), server(**new)
    changed = {k for k in b.properties if a.properties.get(k) != b.properties.get(k)}
    return a.needs_replace(b.properties, changed)


@pytest.mark.parametrize(
    ("old", "new", "replace"),
    [
        ({}, {"name": "x", "metadata": {"a": "1"}, "tags": ["t"]}, False),
        ({}, {"flavor": "m1.small"}, False),  # RESIZE
        ({}, {"flavor": "m1.small", "flavor_update_policy": "REPLACE"}, True),
        ({}, {"image": "other"}, False),  # REBUILD
        ({}, {"image": "other", "image_update_policy": "REPLACE"}, True),
        ({}, {"user_data": "x"}, True),
        ({}, {"user_data": "x", "user_data_update_policy": "IGNORE"}, False),
        ({}, {"networks": [{"network": "other"}]}, True),
        ({}, {"key_name": "k"}, True),
    ],
)
def test_what_replaces_the_server(old, new, replace):
    assert replaces(old, new) is replace


@pytest.mark.parametrize(
    "nets",
    [
        [{"network": "a", "port": "p"}],
        [{}],
        [{"allocate_network": "auto"}, {"network": "a"}],
    ],
)
def test_each_network_names_one_thing(nets):
    with pytest.raises(TemplateError, match="networks"):
        server(networks=nets).validate()
