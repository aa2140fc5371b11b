"""Microversion negotiation and response shapes for the negotiated version."""

from datetime import UTC, datetime

import pytest

from dockyard.api.context import RequestContext
from dockyard.api.errors import BadRequest
from dockyard.compute import views
from dockyard.compute.microversion import MAX, MIN, NotAcceptable, Version, negotiate
from dockyard.compute.models import Flavor, KeyPair, Server


class H(dict):
    def get(self, key, default=None):
        return super().get(key.lower(), default)


def ctx(admin=False) -> RequestContext:
    return RequestContext(
        request_id="r",
        user_id="u",
        user_name="u",
        user_domain_id="default",
        roles=frozenset({"admin", "member"} if admin else {"member"}),
        expires_at=datetime.now(UTC),
        audit_ids=(),
        methods=("password",),
        project_id="p",
    )


def test_negotiation_headers():
    assert negotiate(H()) == MIN
    assert negotiate(H({"openstack-api-version": "compute 2.60"})) == Version(2, 60)
    assert negotiate(H({"x-openstack-nova-api-version": "2.47"})) == Version(2, 47)
    # the modern header wins; other services in it are ignored
    both = {
        "openstack-api-version": "image 2.5, compute 2.96",
        "x-openstack-nova-api-version": "2.1",
    }
    assert negotiate(H(both)) == Version(2, 96)
    assert negotiate(H({"openstack-api-version": "compute latest"})) == MAX
    with pytest.raises(NotAcceptable, match="maximum is 2.96"):
        negotiate(H({"openstack-api-version": "compute 2.200"}))
    with pytest.raises(BadRequest):
        negotiate(H({"x-openstack-nova-api-version": "two"}))


def flavor(**kw) -> Flavor:
    base = dict(
        id="2",
        name="m1.small",
        ram=2048,
        vcpus=1,
        disk=20,
        ephemeral=0,
        swap=0,
        rxtx_factor=1.0,
        is_public=True,
        disabled=False,
        description=None,
        extra_specs={"k": "v"},
    )
    base.update(kw)
    return Flavor(**base)


LINKS = views.Links("http://h/compute/v2.1")


def test_flavor_shapes_by_version():
    old = views.flavor_detail(flavor(), Version(2, 1), LINKS)
    assert old["swap"] == "" and "description" not in old and "extra_specs" not in old
    mid = views.flavor_detail(flavor(), Version(2, 55), LINKS)
    assert "description" in mid and "extra_specs" not in mid
    new = views.flavor_detail(flavor(), Version(2, 75), LINKS)
    assert new["swap"] == 0 and new["extra_specs"] == {"k": "v"}
    assert new["links"][1]["href"] == "http://h/compute/flavors/2"


def server(**kw) -> Server:
    now = datetime.now(UTC)
    base = dict(
        id="s1",
        number=1,
        name="web",
        project_id="p",
        user_id="u",
        image_id="img",
        flavor_id="2",
        flavor={
            "id": "2",
            "name": "m1.small",
            "ram": 2048,
            "vcpus": 1,
            "disk": 20,
            "ephemeral": 0,
            "swap": 0,
            "extra_specs": {},
        },
        vm_state="active",
        task_state=None,
        power_state=1,
        host="local",
        meta={},
        security_groups=["default"],
        addresses={"private": [{"addr": "10.0.0.5", "mac": "m"}]},
        locked=False,
        availability_zone="nova",
        reservation_id="r-1",
        launch_index=0,
        hostname="web",
        tags=[],
        created_at=now,
        updated_at=now,
        fault=None,
    )
    base.update(kw)
    return Server(**base)


def test_server_shape_21_vs_296():
    s = server()
    v21 = views.server_detail(s, Version(2, 1), ctx(), LINKS)
    assert v21["flavor"] == {
        "id": "2",
        "links": [{"rel": "bookmark", "href": "http://h/compute/flavors/2"}],
    }
    for absent in (
        "locked",
        "description",
        "tags",
        "host_status",
        "OS-EXT-SRV-ATTR:host",
        "pinned_availability_zone",
        "locked_reason",
    ):
        assert absent not in v21
    v296 = views.server_detail(s, Version(2, 96), ctx(), LINKS)
    assert v296["flavor"]["original_name"] == "m1.small" and "id" not in v296["flavor"]
    assert v296["addresses"] == {
        "private": [
            {
                "version": 4,
                "addr": "10.0.0.5",
                "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": "m",
            }
        ]
    }
    assert v296["OS-EXT-SRV-ATTR:hostname"] == "web"  # everyone sees it from 2.90
    assert "OS-EXT-SRV-ATTR:host" not in v296  # admin only
    assert v296["pinned_availability_zone"] is None and v296["locked"] is False
    admin = views.server_detail(s, Version(2, 96), ctx(admin=True), LINKS)
    assert admin["OS-EXT-SRV-ATTR:host"] == "local" and admin["host_status"] == "UP"
    assert admin["OS-EXT-SRV-ATTR:instance_name"] == "instance-00000001"


def test_fault_only_when_error():
    f = {"code": 500, "message": "No valid host was found. x", "created": "t"}
    assert "fault" not in views.server_detail(server(fault=f), Version(2, 96), ctx(), LINKS)
    err = views.server_detail(server(fault=f, vm_state="error"), Version(2, 96), ctx(), LINKS)
    assert err["fault"]["message"].startswith("No valid host") and err["status"] == "ERROR"
    assert "progress" not in err


def test_keypair_type_from_22():
    k = KeyPair(name="k", public_key="ssh-ed25519 AAAA", fingerprint="aa", type="ssh", user_id="u")
    assert "type" not in views.keypair_body(k, Version(2, 1))
    assert views.keypair_body(k, Version(2, 2))["type"] == "ssh"
