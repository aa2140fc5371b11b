"""The interface compute calls (dockyard.network.ports), on a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from dockyard.api.context import RequestContext
from dockyard.api.errors import BadRequest, Conflict, NotFound
from dockyard.db import Database
from dockyard.docker.networks import endpoint_config
from dockyard.network import networks as nets
from dockyard.network.backend import subnet_of
from dockyard.network.models import IPAllocation, Port
from dockyard.network.ports import (
    COMPUTE_OWNER,
    FixedIP,
    allocate_port,
    apply_security_groups,
    auto_network_id,
    change_fixed_ips,
    create_port,
    ports_for_device,
    release_ports,
)
from dockyard.network.secgroups import default_group_id

SETTINGS = SimpleNamespace(container_labels="dockyard.test=1", network_demo_cidr="10.0.0.0/24")


def ctx(project: str, admin: bool = False) -> RequestContext:
    return RequestContext(
        request_id="req-unit",
        user_id=f"user-{project}",
        user_name=f"user-{project}",
        user_domain_id="default",
        roles=frozenset({"admin", "member"} if admin else {"member"}),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        audit_ids=(),
        methods=("password",),
        project_id=project,
    )


@pytest.fixture
def db(tmp_path):
    d = Database(f"sqlite:///{tmp_path / 'ports.db'}")
    d.migrate()
    with d.session() as s:
        nets.bootstrap(s, SETTINGS, "demo", "admin")
    yield d
    d.dispose()


def _net(s, project: str, name: str, cidr: str | None, shared: bool = False):
    net = nets.new_network(s, SETTINGS, project_id=project, name=name, shared=shared)
    if cidr:
        nets.new_subnet(s, net, project, nets.SubnetRequest(cidr=cidr))
    return net


def test_bootstrap_is_idempotent_and_made_once(db):
    with db.session() as s:
        nets.bootstrap(s, SETTINGS, "demo", "admin")
        (private,) = [n for n in s.scalars(nets.select(nets.Network))]
        assert private.name == "private" and private.project_id == "demo"
        assert private.docker_labels["dockyard.test"] == "1"
        assert subnet_of(s, private.id).cidr == "10.0.0.0/24"
        nets.delete_network(s, SimpleNamespace(remove=lambda _id: None), private)
    with db.session() as s:
        nets.bootstrap(s, SETTINGS, "demo", "admin")
        assert list(s.scalars(nets.select(nets.Network))) == []


def test_allocate_on_auto_network_and_release(db):
    demo = ctx("demo")
    with db.session() as s:
        b = allocate_port(s, demo, device_id="server-1")
        assert b.network_name == "private" and b.ip_address == "10.0.0.2"
        assert b.mac_address == "02:42:0a:00:00:02"
        assert b.security_group_ids == (default_group_id("demo"),)
        assert b.network_spec.cidr == "10.0.0.0/24" and b.network_spec.gateway == "10.0.0.1"
        assert b.docker_network == f"dockyard-net-{b.network_id}"
        b2 = allocate_port(s, demo, device_id="server-1", fixed_ip="10.0.0.50")
        assert b2.ip_address == "10.0.0.50"
        with pytest.raises(Conflict):
            allocate_port(s, demo, device_id="server-2", fixed_ip="10.0.0.50")
    with db.session() as s:
        assert [x.ip_address for x in ports_for_device(s, "server-1")] == ["10.0.0.2", "10.0.0.50"]
        assert s.get(Port, b.port_id).device_owner == COMPUTE_OWNER
        kwargs = endpoint_config(b, aliases=["web"])
        assert kwargs["network"] == b.docker_network and kwargs["mac_address"] == b.mac_address
        ec = kwargs["networking_config"][b.docker_network]
        assert ec["IPAMConfig"]["IPv4Address"] == "10.0.0.2" and ec["Aliases"] == ["web"]
    with db.session() as s:
        release_ports(s, "server-1")
    with db.session() as s:
        assert ports_for_device(s, "server-1") == []
        assert s.scalars(nets.select(IPAllocation)).all() == []


def test_claiming_a_user_port_and_unbinding_it(db):
    demo = ctx("demo")
    with db.session() as s:
        private = auto_network_id(s, demo)
        net = s.get(nets.Network, private)
        port = create_port(
            s, demo, net, project_id="demo", fixed_ips=[FixedIP(ip_address="10.0.0.9")]
        )
        port_id = port.id
    with db.session() as s:
        b = allocate_port(s, demo, device_id="server-9", port_id=port_id)
        assert b.port_id == port_id and b.ip_address == "10.0.0.9"
        with pytest.raises(Conflict):
            allocate_port(s, demo, device_id="server-10", port_id=port_id)
        with pytest.raises(NotFound):
            allocate_port(s, ctx("other"), device_id="server-11", port_id=port_id)
    with db.session() as s:
        release_ports(s, "server-9")
    with db.session() as s:
        kept = s.get(Port, port_id)
        assert kept is not None and kept.device_id == "" and kept.device_owner == ""
        assert s.get(
            IPAllocation, (s.scalars(nets.select(IPAllocation.subnet_id)).one(), "10.0.0.9")
        )


def test_auto_network_rules(db):
    with db.session() as s:
        # own only network
        assert s.get(nets.Network, auto_network_id(s, ctx("demo"))).name == "private"
        # several own networks: the one named private
        _net(s, "demo", "extra", "10.5.0.0/24")
        assert s.get(nets.Network, auto_network_id(s, ctx("demo"))).name == "private"
        # none of its own: the shared one
        with pytest.raises(BadRequest, match="No network"):
            auto_network_id(s, ctx("b"))
        shared = _net(s, "admin", "common", "10.6.0.0/24", shared=True)
        assert auto_network_id(s, ctx("b")) == shared.id
        # ambiguous
        _net(s, "b", "one", None)
        _net(s, "b", "two", None)
        with pytest.raises(BadRequest, match="Multiple possible networks"):
            auto_network_id(s, ctx("b"))


def test_other_projects_private_network_is_not_found(db):
    with db.session() as s:
        private = auto_network_id(s, ctx("demo"))
        with pytest.raises(NotFound):
            allocate_port(s, ctx("b"), device_id="x", network_id=private)
        # an admin may put a server on it
        b = allocate_port(s, ctx("admin", admin=True), device_id="x", network_id=private)
        assert b.security_group_ids == (default_group_id("admin"),)


def test_groups_by_name_and_apply(db):
    demo = ctx("demo")
    with db.session() as s, pytest.raises(NotFound):
        allocate_port(s, demo, device_id="g", security_groups=["nope"])
    with db.session() as s:
        b = allocate_port(s, demo, device_id="g", security_groups=[])
        assert b.security_group_ids == ()
        b = apply_security_groups(s, demo, b.port_id, ["default"])
        assert b.security_group_ids == (default_group_id("demo"),)


def test_changing_an_unbound_ports_address_moves_its_mac(db):
    demo = ctx("demo")
    with db.session() as s:
        net = s.get(nets.Network, auto_network_id(s, demo))
        port = create_port(s, demo, net, project_id="demo")
        assert port.mac_address == "02:42:0a:00:00:02"
        change_fixed_ips(s, port, [FixedIP(ip_address="10.0.0.42")])
        assert port.mac_address == "02:42:0a:00:00:2a"
        assert [a.ip_address for a in s.scalars(nets.select(IPAllocation))] == ["10.0.0.42"]
        port.device_id = "server-x"
        with pytest.raises(Conflict):
            change_fixed_ips(s, port, [FixedIP(ip_address="10.0.0.43")])
