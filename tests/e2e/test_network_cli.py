"""The real `openstack network|subnet|port|security group` commands against dockyard."""

from __future__ import annotations

import ipaddress

import pytest

from tests.support.cloud import new_cloud, unique_cidr
from tests.support.docker import docker_client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    c = new_cloud(tmp_path_factory.mktemp("dockyard-net-cli"), docker=True)
    c.start()
    yield c
    c.stop()
    c.cleanup()


def _docker_subnet(network_id: str) -> str | None:
    nets = docker_client().networks.list(names=[f"dockyard-net-{network_id}"])
    if not nets:
        return None
    nets[0].reload()
    return nets[0].attrs["IPAM"]["Config"][0]["Subnet"]


def test_network_subnet_port_lifecycle(cloud):
    cidr = "192.168.77.0/24"
    if any(
        ipaddress.ip_network(c.get("Subnet", "0.0.0.0/32")).overlaps(ipaddress.ip_network(cidr))
        for n in docker_client().networks.list()
        for c in (n.attrs.get("IPAM") or {}).get("Config") or []
        if n.name.startswith("dockyard-net-")
    ):
        cidr = unique_cidr()  # another test run on this host holds the range
    net = cloud.cli_json("network create", "clinet", cloud="dockyard")
    assert net["name"] == "clinet" and net["status"] == "ACTIVE"
    sub = cloud.cli_json(
        "subnet create", "--network", "clinet", "--subnet-range", cidr, "clisub", cloud="dockyard"
    )
    assert sub["cidr"] == cidr
    net_cidr = ipaddress.ip_network(cidr)
    assert sub["gateway_ip"] == str(net_cidr.network_address + 1)
    assert _docker_subnet(net["id"]) == cidr
    listed = cloud.cli_json("network list", cloud="dockyard")
    assert [n["Subnets"] for n in listed if n["ID"] == net["id"]] == [[sub["id"]]]
    assert any(s["ID"] == sub["id"] for s in cloud.cli_json("subnet list", cloud="dockyard"))
    port = cloud.cli_json("port create", "--network", "clinet", "cliport", cloud="dockyard")
    (fixed,) = port["fixed_ips"]
    ip = ipaddress.ip_address(fixed["ip_address"])
    pool = sub["allocation_pools"][0]
    assert ipaddress.ip_address(pool["start"]) <= ip <= ipaddress.ip_address(pool["end"])
    shown = cloud.cli_json("port show", "cliport", cloud="dockyard")
    assert shown["id"] == port["id"] and shown["mac_address"] == port["mac_address"]
    assert any(p["ID"] == port["id"] for p in cloud.cli_json("port list", cloud="dockyard"))
    shown = cloud.cli_json("network show", "clinet", cloud="dockyard")
    assert shown["id"] == net["id"]
    # a network with a port refuses to go
    r = cloud.cli("network delete", "clinet", cloud="dockyard")
    assert r.returncode != 0
    assert cloud.cli("port delete", "cliport", cloud="dockyard").returncode == 0
    assert cloud.cli("subnet show", "clisub", "-f", "json", cloud="dockyard").returncode == 0
    r = cloud.cli("network delete", "clinet", cloud="dockyard")
    assert r.returncode == 0, r.stderr
    assert _docker_subnet(net["id"]) is None
    assert cloud.cli("network show", "clinet", cloud="dockyard").returncode != 0


def test_security_group_commands(cloud):
    # as admin, the lookup of `default` finds exactly the admin project's group
    rule = cloud.cli_json(
        "security group rule create", "--protocol", "tcp", "--dst-port", "22", "default"
    )
    assert rule["port_range_min"] == 22 and rule["protocol"] == "tcp"
    group = cloud.cli_json("security group create", "clisg", cloud="dockyard")
    shown = cloud.cli_json("security group show", "clisg", cloud="dockyard")
    assert shown["id"] == group["id"] and len(shown["rules"]) == 2
    r = cloud.cli_json(
        "security group rule create",
        "--protocol",
        "icmp",
        "--remote-group",
        "default",
        "clisg",
        cloud="dockyard",
    )
    assert r["remote_group_id"] and r["protocol"] == "icmp"
    rules = cloud.cli_json("security group rule list", "clisg", cloud="dockyard")
    assert len(rules) == 3
    assert cloud.cli("security group rule delete", r["id"], cloud="dockyard").returncode == 0
    groups = cloud.cli_json("security group list", cloud="dockyard")
    assert sorted(g["Name"] for g in groups) == ["clisg", "default"]
    assert cloud.cli("security group delete", "clisg", cloud="dockyard").returncode == 0


def test_projects_see_only_their_networks(cloud):
    admin_net = cloud.cli_json("network create", "adminonly")
    demo_view = cloud.cli_json("network list", cloud="dockyard")
    assert admin_net["id"] not in [n["ID"] for n in demo_view]
    r = cloud.cli("network show", admin_net["id"], cloud="dockyard")
    assert r.returncode != 0
    r = cloud.cli("port create", "--network", admin_net["id"], "sneaky", cloud="dockyard")
    assert r.returncode != 0
    shared = cloud.cli_json("network create", "--share", "everyone")
    demo_view = cloud.cli_json("network list", cloud="dockyard")
    assert shared["id"] in [n["ID"] for n in demo_view]
    for name in ("adminonly", "everyone"):
        assert cloud.cli("network delete", name).returncode == 0


def test_availability_zone_list(cloud):
    zones = cloud.cli_json("availability zone list", "--long")
    seen = {(z["Zone Name"], z.get("Service Name") or z.get("Zone Resource")) for z in zones}
    names = {z["Zone Name"] for z in zones}
    assert names == {"nova"}, zones
    assert len(seen) >= 2, zones  # compute and network both answer
