"""dockyard's IPAM: subnet arithmetic and allocation in a real (SQLite) database."""

from __future__ import annotations

import ipaddress
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from dockyard.api.errors import BadRequest, Conflict
from dockyard.db import Database
from dockyard.network import ipam
from dockyard.network.models import Network, Port, Subnet

IP = ipaddress.IPv4Address
NET = ipaddress.IPv4Network


def test_parse_cidr_recommends_the_network_form():
    assert ipam.parse_cidr("10.0.0.0/24") == NET("10.0.0.0/24")
    with pytest.raises(BadRequest, match="10.0.0.0/24' is recommended"):
        ipam.parse_cidr("10.0.0.5/24")
    for bad in ("nonsense", "fd00::/64", "10.0.0.0/31"):
        with pytest.raises(BadRequest):
            ipam.parse_cidr(bad)


def test_default_pools_leave_out_the_gateway():
    net = NET("10.0.0.0/24")
    assert ipam.default_pools(net, IP("10.0.0.1")) == [ipam.Pool(IP("10.0.0.2"), IP("10.0.0.254"))]
    assert ipam.default_pools(net, IP("10.0.0.100")) == [
        ipam.Pool(IP("10.0.0.1"), IP("10.0.0.99")),
        ipam.Pool(IP("10.0.0.101"), IP("10.0.0.254")),
    ]
    assert ipam.default_pools(net, IP("10.0.0.254")) == [
        ipam.Pool(IP("10.0.0.1"), IP("10.0.0.253"))
    ]


def test_parse_pools_validates():
    net = NET("10.0.0.0/24")
    gw = IP("10.0.0.1")
    pools = ipam.parse_pools(
        net,
        [{"start": "10.0.0.50", "end": "10.0.0.60"}, {"start": "10.0.0.10", "end": "10.0.0.20"}],
        gw,
    )
    assert [p.start for p in pools] == [IP("10.0.0.10"), IP("10.0.0.50")]
    with pytest.raises(BadRequest, match="overlapping"):
        ipam.parse_pools(
            net,
            [
                {"start": "10.0.0.10", "end": "10.0.0.20"},
                {"start": "10.0.0.15", "end": "10.0.0.30"},
            ],
            gw,
        )
    with pytest.raises(BadRequest, match="beyond"):
        ipam.parse_pools(net, [{"start": "10.0.0.10", "end": "10.0.1.20"}], gw)
    with pytest.raises(BadRequest, match="after the end"):
        ipam.parse_pools(net, [{"start": "10.0.0.20", "end": "10.0.0.10"}], gw)
    with pytest.raises(Conflict):
        ipam.parse_pools(net, [{"start": "10.0.0.1", "end": "10.0.0.10"}], gw)


def test_first_free_walks_pools_in_order():
    pools = [ipam.Pool(IP("10.0.0.2"), IP("10.0.0.3")), ipam.Pool(IP("10.0.0.10"), IP("10.0.0.11"))]
    assert ipam.first_free(pools, set()) == IP("10.0.0.2")
    assert ipam.first_free(pools, {IP("10.0.0.2"), IP("10.0.0.3")}) == IP("10.0.0.10")
    taken = {IP("10.0.0.2"), IP("10.0.0.3"), IP("10.0.0.10"), IP("10.0.0.11")}
    assert ipam.first_free(pools, taken) is None


def test_mac_follows_docker_derivation():
    assert ipam.mac_for_ip("10.0.0.5") == "02:42:0a:00:00:05"
    assert ipam.mac_for_ip("192.168.77.254") == "02:42:c0:a8:4d:fe"


@pytest.fixture
def db(tmp_path):
    d = Database(f"sqlite:///{tmp_path / 'ipam.db'}")
    d.migrate()
    yield d
    d.dispose()


def _subnet(db, cidr="10.1.2.0/29") -> Subnet:
    net = NET(cidr)
    gw = ipam.default_gateway(net)
    with db.session() as s:
        n = Network(project_id="p", name="n")
        s.add(n)
        s.flush()
        sub = Subnet(
            network_id=n.id,
            project_id="p",
            cidr=cidr,
            gateway_ip=str(gw),
            allocation_pools=[p.as_dict() for p in ipam.default_pools(net, gw)],
        )
        s.add(sub)
        s.flush()
        return sub


def _port(s, subnet: Subnet) -> Port:
    pid = uuid.uuid4().hex
    p = Port(id=pid, network_id=subnet.network_id, project_id="p", mac_address=pid)
    s.add(p)
    s.flush()
    return p


def test_allocate_until_exhausted_then_reuse_after_release(db):
    sub = _subnet(db)  # /29: hosts .1-.6, gateway .1, pool .2-.6
    got = []
    with db.session() as s:
        for _ in range(5):
            got.append(ipam.allocate(s, sub, _port(s, sub).id).ip_address)
    assert got == [f"10.1.2.{i}" for i in range(2, 7)]
    with pytest.raises(Conflict, match="No more IP addresses"), db.session() as s:
        ipam.allocate(s, sub, _port(s, sub).id)
    with db.session() as s:
        holder = s.scalars(
            ipam.select(ipam.IPAllocation).where(ipam.IPAllocation.ip_address == "10.1.2.4")
        ).one()
        s.delete(s.get(Port, holder.port_id))
    with db.session() as s:
        assert ipam.allocate(s, sub, _port(s, sub).id).ip_address == "10.1.2.4"


def test_fixed_ip_refusals(db):
    sub = _subnet(db, "10.1.3.0/24")
    with db.session() as s:
        assert ipam.allocate(s, sub, _port(s, sub).id, "10.1.3.200").ip_address == "10.1.3.200"
    for ip, error in (
        ("10.1.3.200", Conflict),  # taken
        ("10.1.3.1", Conflict),  # the gateway
        ("10.1.4.9", BadRequest),  # outside
        ("10.1.3.255", BadRequest),  # broadcast
        ("10.1.3.0", BadRequest),  # network address
    ):
        with pytest.raises(error), db.session() as s:
            ipam.allocate(s, sub, _port(s, sub).id, ip)


def test_concurrent_allocators_never_collide(db):
    sub = _subnet(db, "10.1.4.0/24")

    def one(_: int) -> str:
        with db.session() as s:
            return ipam.allocate(s, sub, _port(s, sub).id).ip_address

    with ThreadPoolExecutor(8) as pool:
        ips = list(pool.map(one, range(64)))
    assert len(set(ips)) == 64
