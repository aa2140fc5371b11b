"""Security-group rule validation and the list filters of the API."""

from __future__ import annotations

import pytest

from dockyard.api.errors import BadRequest
from dockyard.network.secgroups import normalize_rule
from dockyard.network.views import apply_filters


def rule(**kw):
    args = dict(
        direction="ingress",
        ethertype="IPv4",
        protocol="tcp",
        port_range_min=80,
        port_range_max=80,
        remote_ip_prefix=None,
        remote_group_id=None,
    )
    args.update(kw)
    return normalize_rule(**args)


def test_valid_rules_normalise():
    assert rule().protocol == "tcp"
    assert rule(protocol="6").protocol == "tcp"
    assert rule(protocol=None, port_range_min=None, port_range_max=None).protocol is None
    assert rule(protocol="any", port_range_min=None, port_range_max=None).protocol is None
    assert rule(port_range_max=None).port_range_max == 80
    assert rule(remote_ip_prefix="10.0.0.7/24").remote_ip_prefix == "10.0.0.0/24"
    icmp = rule(protocol="icmp", port_range_min=8, port_range_max=None)
    assert (icmp.port_range_min, icmp.port_range_max) == (8, None)


@pytest.mark.parametrize(
    "bad",
    [
        {"direction": "up"},
        {"ethertype": "IPX"},
        {"protocol": "sctp-ish"},
        {"protocol": "300"},
        {"port_range_min": 0},
        {"port_range_min": 90, "port_range_max": 80},
        {"protocol": None},
        {"remote_ip_prefix": "::/0"},
        {"remote_ip_prefix": "not-a-net"},
        {"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "g"},
        {"protocol": "icmp", "port_range_min": None, "port_range_max": 3},
        {"protocol": "icmp", "port_range_min": 256, "port_range_max": None},
    ],
)
def test_invalid_rules_are_400(bad):
    with pytest.raises(BadRequest):
        rule(**bad)


ITEMS = [
    {"id": "1", "name": "a", "shared": True, "subnets": ["s1"], "fixed_ips": []},
    {
        "id": "2",
        "name": "b",
        "shared": False,
        "subnets": [],
        "fixed_ips": [{"ip_address": "10.0.0.5", "subnet_id": "s1"}],
    },
    {"id": "3", "name": "c", "shared": False, "subnets": ["s2"], "fixed_ips": []},
]


def ids(params):
    return [i["id"] for i in apply_filters(ITEMS, params)]


def test_filters():
    assert ids([("name", "a")]) == ["1"]
    assert ids([("name", "a"), ("name", "c")]) == ["1", "3"]  # repeated keys mean OR
    assert ids([("shared", "True")]) == ["1"]
    assert ids([("shared", "false"), ("name", "c")]) == ["3"]
    assert ids([("subnets", "s2")]) == ["3"]
    assert ids([("fixed_ips", "ip_address=10.0.0.5")]) == ["2"]
    assert ids([("limit", "2")]) == ["1", "2"]
    assert ids([("marker", "1"), ("limit", "1")]) == ["2"]
    assert apply_filters(ITEMS, [("fields", "id"), ("name", "b")]) == [{"id": "2"}]
