"""Networking API v2.0 over HTTP against a real dockyard and dockerd, on SQLite and PostgreSQL."""

from __future__ import annotations

import ipaddress
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import BACKENDS, make_database_url
from tests.support.cloud import new_cloud, unique_cidr
from tests.support.docker import docker_client

N = "/networking/v2.0"


@pytest.fixture(params=BACKENDS, scope="module")
def cloud(request, tmp_path_factory, pg_databases):
    """The shared `cloud` fixture, with the test label on Docker objects and a range of its own."""
    url = make_database_url(request.param, pg_databases)
    c = new_cloud(tmp_path_factory.mktemp(f"dockyard-net-{request.param}"), url, docker=True)
    c.start()
    yield c
    c.stop()
    c.cleanup()


@pytest.fixture(scope="module")
def admin(cloud):
    return cloud.client(cloud.token("admin"))


@pytest.fixture(scope="module")
def demo(cloud):
    return cloud.client(cloud.token("demo"))


def _member_of_new_project(cloud, admin):
    name = f"proj-{uuid.uuid4().hex[:6]}"
    r = admin.post("/identity/v3/projects", json={"project": {"name": name}})
    assert r.status_code == 201, r.text
    pid = r.json()["project"]["id"]
    r = admin.post(
        "/identity/v3/users",
        json={
            "user": {"name": f"user-{name}", "password": "pw-b-secret", "default_project_id": pid}
        },
    )
    assert r.status_code == 201, r.text
    uid = r.json()["user"]["id"]
    rid = admin.get("/identity/v3/roles", params={"name": "member"}).json()["roles"][0]["id"]
    r = admin.put(f"/identity/v3/projects/{pid}/users/{uid}/roles/{rid}")
    assert r.status_code in (200, 204), r.text
    return cloud.client(cloud.token(f"user-{name}", "pw-b-secret", project=name))


@pytest.fixture(scope="module")
def other(cloud, admin):
    """A member of a second project (B)."""
    return _member_of_new_project(cloud, admin)


def _network(client, name: str, cidr: str | None = None, **extra) -> tuple[dict, dict | None]:
    r = client.post(f"{N}/networks", json={"network": {"name": name, **extra}})
    assert r.status_code == 201, r.text
    net = r.json()["network"]
    sub = None
    if cidr:
        r = client.post(
            f"{N}/subnets",
            json={"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4}},
        )
        assert r.status_code == 201, r.text
        sub = r.json()["subnet"]
    return net, sub


def _free_cidr(cloud) -> str:
    return unique_cidr()


def _ports(client, **params) -> list[dict]:
    r = client.get(f"{N}/ports", params=params)
    assert r.status_code == 200, r.text
    return r.json()["ports"]


def test_discovery_without_and_with_token(cloud, demo):
    import httpx

    r = httpx.get(cloud.url + "/networking/")
    assert r.status_code == 200
    assert r.json()["versions"][0]["id"] == "v2.0"
    r = demo.get(f"{N}/extensions")
    aliases = {e["alias"] for e in r.json()["extensions"]}
    assert {"security-group", "quotas", "port-security"} <= aliases
    assert demo.get(f"{N}/networks").status_code == 200
    assert httpx.get(cloud.url + f"{N}/networks").status_code == 401


def test_bootstrap_demo_network_and_default_group(cloud, demo, admin):
    nets = demo.get(f"{N}/networks", params={"name": "private"}).json()["networks"]
    assert len(nets) == 1
    (subnet_id,) = nets[0]["subnets"]
    sub = demo.get(f"{N}/subnets/{subnet_id}").json()["subnet"]
    cidr = ipaddress.ip_network(cloud.extra_env["DOCKYARD_NETWORK_DEMO_CIDR"])
    assert sub["cidr"] == str(cidr)
    assert sub["gateway_ip"] == str(cidr.network_address + 1)
    assert sub["allocation_pools"] == [
        {"start": str(cidr.network_address + 2), "end": str(cidr.broadcast_address - 1)}
    ]
    assert sub["dns_nameservers"] == [] and sub["host_routes"] == []
    # exactly one `default` group per project, even for admin (who could see all projects)
    for client in (demo, admin):
        groups = client.get(f"{N}/security-groups", params={"name": "default"}).json()
        assert len(groups["security_groups"]) == 1
        rules = groups["security_groups"][0]["security_group_rules"]
        gid = groups["security_groups"][0]["id"]
        assert sorted((r["direction"], r["ethertype"], r["remote_group_id"]) for r in rules) == [
            ("egress", "IPv4", None),
            ("egress", "IPv6", None),
            ("ingress", "IPv4", gid),
            ("ingress", "IPv6", gid),
        ]
    # the Docker network behind it exists with that subnet
    client = docker_client()

    def subnet_of_docker() -> str | None:
        try:
            dnet = client.networks.get(f"dockyard-net-{nets[0]['id']}")
        except Exception:  # noqa: BLE001 - not made yet
            return None
        return dnet.attrs["IPAM"]["Config"][0]["Subnet"]

    from tests.support.network import eventually

    assert eventually(lambda: subnet_of_docker() == str(cidr), 10)


def test_network_lifecycle_backs_a_docker_network(cloud, demo):
    cidr = _free_cidr(cloud)
    net, sub = _network(demo, "life", cidr)
    assert net["status"] == "ACTIVE" and net["mtu"] == 1500
    assert demo.get(f"{N}/networks/{net['id']}").json()["network"]["subnets"] == [sub["id"]]
    dnet = docker_client().networks.get(f"dockyard-net-{net['id']}")
    assert dnet.attrs["IPAM"]["Config"][0]["Subnet"] == cidr
    assert dnet.attrs["IPAM"]["Config"][0]["Gateway"] == sub["gateway_ip"]
    assert dnet.attrs["Labels"]["dockyard.network_id"] == net["id"]
    assert dnet.attrs["Labels"]["dockyard.project_id"] == net["project_id"]
    r = demo.put(f"{N}/networks/{net['id']}", json={"network": {"name": "life2"}})
    assert r.json()["network"]["name"] == "life2"
    # the name-or-id lookup clients do: GET by name is a 404 in Neutron's shape, then ?name=
    r = demo.get(f"{N}/networks/life2")
    assert r.status_code == 404
    assert r.json()["NeutronError"]["type"] == "NetworkNotFound"
    assert [n["id"] for n in demo.get(f"{N}/networks?name=life2").json()["networks"]] == [net["id"]]
    assert demo.delete(f"{N}/networks/{net['id']}").status_code == 204
    assert demo.get(f"{N}/networks/{net['id']}").status_code == 404
    assert demo.get(f"{N}/subnets/{sub['id']}").status_code == 404
    assert not docker_client().networks.list(names=[f"dockyard-net-{net['id']}"])


def test_port_addresses_and_refusals_leave_nothing(cloud, demo):
    cidr = _free_cidr(cloud)
    net, sub = _network(demo, "refuse", cidr)
    r = demo.post(f"{N}/ports", json={"port": {"network_id": net["id"], "name": "p1"}})
    assert r.status_code == 201, r.text
    port = r.json()["port"]
    (fixed,) = port["fixed_ips"]
    pool = sub["allocation_pools"][0]
    ip = ipaddress.ip_address(fixed["ip_address"])
    assert ipaddress.ip_address(pool["start"]) <= ip <= ipaddress.ip_address(pool["end"])
    assert fixed["subnet_id"] == sub["id"]
    assert port["status"] == "DOWN" and port["device_owner"] == ""
    assert len(port["security_groups"]) == 1

    def count() -> int:
        return len(_ports(demo, network_id=net["id"]))

    body = {"network_id": net["id"], "fixed_ips": [{"ip_address": fixed["ip_address"]}]}
    r = demo.post(f"{N}/ports", json={"port": body})
    assert r.status_code == 409 and r.json()["NeutronError"]["type"] == "IpAddressInUse"
    r = demo.post(
        f"{N}/ports",
        json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "192.0.2.77"}]}},
    )
    assert r.status_code == 400
    r = demo.post(
        f"{N}/ports",
        json={
            "port": {
                "network_id": net["id"],
                "fixed_ips": [{"subnet_id": sub["id"], "ip_address": sub["gateway_ip"]}],
            }
        },
    )
    assert r.status_code == 409
    assert count() == 1
    # a chosen address in the subnet is honoured
    wanted = str(ipaddress.ip_network(cidr).network_address + 200)
    r = demo.post(
        f"{N}/ports",
        json={"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": wanted}]}},
    )
    assert r.status_code == 201
    p2 = r.json()["port"]
    assert p2["fixed_ips"][0]["ip_address"] == wanted
    assert [p["id"] for p in _ports(demo, fixed_ips=f"ip_address={wanted}")] == [p2["id"]]
    # overlapping subnet on the same network: 400, nothing added
    r = demo.post(
        f"{N}/subnets",
        json={"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4}},
    )
    assert r.status_code == 400 and "overlaps" in r.json()["NeutronError"]["message"]
    assert demo.get(f"{N}/networks/{net['id']}").json()["network"]["subnets"] == [sub["id"]]
    # a network with ports cannot be deleted
    r = demo.delete(f"{N}/networks/{net['id']}")
    assert r.status_code == 409 and r.json()["NeutronError"]["type"] == "NetworkInUse"
    assert demo.get(f"{N}/networks/{net['id']}").status_code == 200
    assert docker_client().networks.list(names=[f"dockyard-net-{net['id']}"])
    # a server's port goes with the server, not on its own
    r = demo.post(
        f"{N}/ports",
        json={
            "port": {"network_id": net["id"], "device_id": "srv-1", "device_owner": "compute:nova"}
        },
    )
    bound = r.json()["port"]
    assert bound["status"] == "ACTIVE"
    r = demo.delete(f"{N}/ports/{bound['id']}")
    assert r.status_code == 409 and r.json()["NeutronError"]["type"] == "PortInUse"
    r = demo.put(f"{N}/ports/{bound['id']}", json={"port": {"device_id": "", "device_owner": ""}})
    assert r.status_code == 200
    assert demo.delete(f"{N}/ports/{bound['id']}").status_code == 204
    # deleting the port frees its address for the next one
    assert demo.delete(f"{N}/ports/{port['id']}").status_code == 204
    r = demo.post(f"{N}/ports", json={"port": {"network_id": net["id"]}})
    assert r.json()["port"]["fixed_ips"][0]["ip_address"] == fixed["ip_address"]
    for p in _ports(demo, network_id=net["id"]):
        assert demo.delete(f"{N}/ports/{p['id']}").status_code == 204
    assert demo.delete(f"{N}/networks/{net['id']}").status_code == 204


def test_subnet_overlapping_another_network_is_refused(cloud, demo):
    cidr = _free_cidr(cloud)
    net1, _ = _network(demo, "ov1", cidr)
    net2, _ = _network(demo, "ov2")
    r = demo.post(
        f"{N}/subnets",
        json={"subnet": {"network_id": net2["id"], "cidr": cidr, "ip_version": 4}},
    )
    assert r.status_code == 400
    assert demo.get(f"{N}/networks/{net2['id']}").json()["network"]["subnets"] == []
    for n in (net1, net2):
        assert demo.delete(f"{N}/networks/{n['id']}").status_code == 204


def test_concurrent_allocations_never_share_an_address(cloud, demo):
    net, sub = _network(demo, "busy", _free_cidr(cloud))

    def make(_: int) -> tuple[int, str]:
        r = demo.post(f"{N}/ports", json={"port": {"network_id": net["id"]}})
        ip = r.json()["port"]["fixed_ips"][0]["ip_address"] if r.status_code == 201 else ""
        return r.status_code, ip

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(make, range(40)))
    assert [code for code, _ in results] == [201] * 40
    ips = [ip for _, ip in results]
    assert len(set(ips)) == 40
    for p in _ports(demo, network_id=net["id"]):
        demo.delete(f"{N}/ports/{p['id']}")
    assert demo.delete(f"{N}/networks/{net['id']}").status_code == 204


def test_projects_are_isolated_unless_shared(cloud, demo, admin, other):
    mine, _ = _network(demo, "secret", _free_cidr(cloud))
    assert other.get(f"{N}/networks/{mine['id']}").status_code == 404
    assert mine["id"] not in [n["id"] for n in other.get(f"{N}/networks").json()["networks"]]
    r = other.post(f"{N}/ports", json={"port": {"network_id": mine["id"]}})
    assert r.status_code == 404
    assert _ports(demo, network_id=mine["id"]) == []
    r = other.post(
        f"{N}/subnets", json={"subnet": {"network_id": mine["id"], "cidr": "10.9.9.0/24"}}
    )
    assert r.status_code == 404
    # members cannot share; admins can, and then B sees it and may attach ports to it
    r = demo.post(f"{N}/networks", json={"network": {"name": "nope", "shared": True}})
    assert r.status_code == 403
    shared, _ = _network(admin, "common", _free_cidr(cloud), shared=True)
    assert other.get(f"{N}/networks/{shared['id']}").status_code == 200
    r = other.post(f"{N}/ports", json={"port": {"network_id": shared["id"]}})
    assert r.status_code == 201, r.text
    port = r.json()["port"]
    assert port["project_id"] != shared["project_id"]
    assert other.delete(f"{N}/networks/{shared['id']}").status_code == 403
    assert other.delete(f"{N}/ports/{port['id']}").status_code == 204
    # B's own default group is B's; demo's is invisible to B
    demo_default = demo.get(f"{N}/security-groups?name=default").json()["security_groups"][0]
    b_default = other.get(f"{N}/security-groups?name=default").json()["security_groups"]
    assert len(b_default) == 1 and b_default[0]["id"] != demo_default["id"]
    assert other.get(f"{N}/security-groups/{demo_default['id']}").status_code == 404
    for client, net in ((admin, shared), (demo, mine)):
        assert client.delete(f"{N}/networks/{net['id']}").status_code == 204


def test_default_group_is_made_once_under_concurrent_first_requests(cloud, admin):
    fresh = _member_of_new_project(cloud, admin)

    def first(_: int) -> list[str]:
        r = fresh.get(f"{N}/security-groups", params={"name": "default"})
        assert r.status_code == 200, r.text
        return [g["id"] for g in r.json()["security_groups"]]

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(first, range(8)))
    assert all(len(ids) == 1 for ids in seen)
    assert len({ids[0] for ids in seen}) == 1
    (group,) = fresh.get(f"{N}/security-groups").json()["security_groups"]
    assert len(group["security_group_rules"]) == 4


def test_security_group_rules_validation(cloud, demo):
    r = demo.post(f"{N}/security-groups", json={"security_group": {"name": "sgv"}})
    assert r.status_code == 201
    group = r.json()["security_group"]
    assert {(x["direction"], x["ethertype"]) for x in group["security_group_rules"]} == {
        ("egress", "IPv4"),
        ("egress", "IPv6"),
    }
    rule = {
        "security_group_id": group["id"],
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": "tcp",
        "port_range_min": 22,
        "port_range_max": 22,
        "remote_ip_prefix": "0.0.0.0/0",
    }
    r = demo.post(f"{N}/security-group-rules", json={"security_group_rule": rule})
    assert r.status_code == 201, r.text
    rid = r.json()["security_group_rule"]["id"]
    r = demo.post(f"{N}/security-group-rules", json={"security_group_rule": rule})
    assert r.status_code == 409
    assert r.json()["NeutronError"]["type"] == "SecurityGroupRuleExists"
    for bad in (
        {"protocol": "gre2"},
        {"port_range_min": 90, "port_range_max": 80},
        {"protocol": None},
        {"direction": "sideways"},
        {"remote_ip_prefix": "::/0"},
        {"remote_group_id": group["id"]},
    ):
        r = demo.post(f"{N}/security-group-rules", json={"security_group_rule": {**rule, **bad}})
        assert r.status_code == 400, (bad, r.text)
    listed = demo.get(f"{N}/security-group-rules", params={"security_group_id": group["id"]})
    assert len(listed.json()["security_group_rules"]) == 3
    assert demo.delete(f"{N}/security-group-rules/{rid}").status_code == 204
    # the default group cannot go; a group in use cannot go
    default = demo.get(f"{N}/security-groups?name=default").json()["security_groups"][0]
    r = demo.delete(f"{N}/security-groups/{default['id']}")
    assert r.status_code == 409
    private = demo.get(f"{N}/networks?name=private").json()["networks"][0]
    r = demo.post(
        f"{N}/ports", json={"port": {"network_id": private["id"], "security_groups": [group["id"]]}}
    )
    assert r.status_code == 201
    port = r.json()["port"]
    r = demo.delete(f"{N}/security-groups/{group['id']}")
    assert r.status_code == 409 and r.json()["NeutronError"]["type"] == "SecurityGroupInUse"
    r = demo.put(f"{N}/ports/{port['id']}", json={"port": {"security_groups": []}})
    assert r.json()["port"]["security_groups"] == []
    assert demo.delete(f"{N}/security-groups/{group['id']}").status_code == 204
    assert demo.delete(f"{N}/ports/{port['id']}").status_code == 204


def test_quotas(cloud, admin, demo):
    project = demo.get(f"{N}/networks?name=private").json()["networks"][0]["project_id"]
    r = admin.get(f"{N}/quotas/{project}")
    assert r.json()["quota"]["network"] == 100
    assert demo.put(f"{N}/quotas/{project}", json={"quota": {"network": 1}}).status_code == 403
    used = len(demo.get(f"{N}/networks", params={"project_id": project}).json()["networks"])
    r = admin.put(f"{N}/quotas/{project}", json={"quota": {"network": used}})
    assert r.status_code == 200 and r.json()["quota"]["network"] == used
    r = demo.post(f"{N}/networks", json={"network": {"name": "over"}})
    assert r.status_code == 409 and r.json()["NeutronError"]["type"] == "OverQuota"
    details = demo.get(f"{N}/quotas/{project}/details").json()["quota"]
    assert details["network"] == {"limit": used, "used": used, "reserved": 0}
    assert admin.delete(f"{N}/quotas/{project}").status_code == 204
    assert demo.get(f"{N}/quotas/{project}").json()["quota"]["network"] == 100
