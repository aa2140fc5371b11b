"""DockerInc::Docker::Container without Docker: the Engine API body, who may ask for what,
which docker_endpoint values are accepted."""

from __future__ import annotations

import pytest

from dockyard.api.errors import Forbidden
from dockyard.config import Settings
from dockyard.docker.heat_containers import container_body
from dockyard.orchestration.errors import TemplateError
from dockyard.orchestration.resources.base import Context, validate_properties
from dockyard.orchestration.resources.docker import DockerContainer, normalize_endpoint


class FakeServices:
    def __init__(self, owned=()):
        self.owned = set(owned)
        self.network_checked = 0

    def owned_docker_endpoints(self, ctx):
        return self.owned

    def check_network(self, ctx):
        self.network_checked += 1


def plugin(props, admin=False, allowed="", owned=()):
    ctx = Context(
        project_id="p" * 32, user_id="u", user_name="u", roles=["admin" if admin else "member"],
        stack_id="sid", stack_name="s", settings=Settings(heat_allowed_endpoints=allowed),
        services=FakeServices(owned),
    )  # fmt: skip
    full = validate_properties(DockerContainer.properties_schema, props, "resources.c.properties")
    return DockerContainer(ctx, "c", full, incarnation="inc")


def test_engine_api_body_from_properties():
    p = plugin({
        "image": "img", "cmd": ["sh", "-c", "x"], "env": ["A=1"], "port_specs": [80, "53/udp"],
        "port_bindings": {80: 8080, "53/udp": None}, "links": {"db1": "mysql", "cache": ""},
        "memory": 1024, "cpu_shares": 2, "cpu_set": "0", "read_only": True, "dns": ["1.1.1.1"],
        "restart_policy": {"Name": "on-failure", "MaximumRetryCount": 3}, "volumes_from": "a,b",
        "cap_drop": ["NET_RAW"], "stdin_once": True, "name": "web",
    }, admin=True)  # fmt: skip
    body = container_body(p.properties, {"l": "1"}, ["v:/data:rw"], {"/data": {}})
    host = body["HostConfig"]
    assert body["Image"] == "img" and body["Cmd"] == ["sh", "-c", "x"] and body["Env"] == ["A=1"]
    assert body["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}  # not 53/udp/tcp
    assert host["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "53/udp": [{"HostIp": "", "HostPort": ""}],
    }
    assert host["Links"] == ["cache", "db1:mysql"]
    assert (host["Memory"], host["CpuShares"], host["CpusetCpus"]) == (1024, 2, "0")
    assert host["ReadonlyRootfs"] is True and host["Dns"] == ["1.1.1.1"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["VolumesFrom"] == ["a", "b"] and host["CapDrop"] == ["NET_RAW"]
    assert host["Binds"] == ["v:/data:rw"] and body["StdinOnce"] is True
    assert body["Labels"] == {"l": "1"} and "Privileged" not in host


def test_devices_skipped_when_privileged_and_defaulted():
    p = plugin({"image": "i", "devices": [{"path_on_host": "/dev/fuse"}]}, admin=True)
    host = container_body(p.properties, {}, [], {})["HostConfig"]
    assert host["Devices"] == [
        {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}
    ]
    p = plugin({"image": "i", "privileged": True, "devices": [{"path_on_host": "/dev/fuse"}]},
               admin=True)  # fmt: skip
    assert "Devices" not in container_body(p.properties, {}, [], {})["HostConfig"]
    with pytest.raises(TemplateError, match="does not match pattern"):
        plugin({"image": "i", "devices": [{"path_on_host": "/etc/passwd"}]}, admin=True)


@pytest.mark.parametrize(
    "props",
    [
        {"privileged": True},
        {"volumes": {"/etc": "/x"}},
        {"cap_add": ["SYS_ADMIN"]},
        {"devices": [{"path_on_host": "/dev/fuse"}]},
        {"volumes_from": "other"},
        {"name": "dockyard-1234"},
        {"port_bindings": {80: 80}},
    ],
)
def test_members_cannot_ask_for_host_powers(props):
    with pytest.raises(Forbidden):
        plugin({"image": "i", **props}).validate()
    plugin({"image": "i", **props}, admin=True).validate()


def test_named_volumes_and_high_ports_are_fine_for_members():
    p = plugin({"image": "i", "volumes": {"data": "/data"}, "port_bindings": {80: 8080}})
    p.validate()
    assert p.ctx.services.network_checked == 1  # no endpoint: the project's network
    with pytest.raises(TemplateError, match="neither a host path nor a volume name"):
        plugin({"image": "i", "volumes": {"../x": "/data"}}).validate()


def test_docker_endpoint_only_when_allowed_or_owned():
    with pytest.raises(TemplateError, match="not the Docker endpoint of a server"):
        plugin({"image": "i", "docker_endpoint": "tcp://127.0.0.1:2375"}).validate()
    with pytest.raises(TemplateError, match="is not a Docker endpoint"):
        plugin({"image": "i", "docker_endpoint": "ssh://host"}).validate()
    plugin({"image": "i", "docker_endpoint": "tcp://10.0.0.5:2375/"},
           allowed="tcp://10.0.0.5:2375").validate()  # fmt: skip
    plugin({"image": "i", "docker_endpoint": "http://10.9.0.7:2375"},
           owned={"tcp://10.9.0.7:2375"}).validate()  # fmt: skip
    with pytest.raises(TemplateError):
        plugin({"image": "i", "docker_endpoint": "tcp://10.9.0.7:2376"},
               owned={"tcp://10.9.0.7:2375"}).validate()  # fmt: skip
    assert normalize_endpoint("tcp://[FE80::1]:2375") == "tcp://[fe80::1]:2375"
    assert normalize_endpoint("unix:///var/run/docker.sock") == "unix:///var/run/docker.sock"
    assert normalize_endpoint("tcp://host") is None


def test_replacement_order_and_attributes_without_a_container():
    assert plugin({"image": "i", "name": "web"}, admin=True).replace_delete_first()
    p = plugin({"image": "i"})
    assert not p.replace_delete_first()
    assert p.needs_replace({}, {"env"})  # every change replaces, as upstream
    assert p.attribute("network_ip") is None and p.reference() == "c"


def test_placement_through_the_scheduler():
    calls = []

    class NoValidHost(Exception):
        pass

    class Sched(FakeServices):
        def pick_host(self, ctx, memory):
            calls.append(memory)
            if len(calls) == 1:
                raise NoValidHost("No valid host was found. local: Docker engine does not answer")
            return "h2", "tcp://10.1.2.3:2376", {"ca": "/ca.pem"}, 2

    p = plugin({"image": "i", "memory": 64 * 2**20})
    p.ctx.services = Sched()
    saved = []
    p.persist = lambda: saved.append(dict(p.data))
    p._place()
    assert calls == [64 * 2**20, 64 * 2**20]  # refused once (engine not probed yet), then placed
    assert p.data["host"] == "h2" and p._url() == "tcp://10.1.2.3:2376" and saved
    q = plugin(
        {"image": "i", "docker_endpoint": "tcp://10.0.0.5:2375"}, allowed="tcp://10.0.0.5:2375"
    )
    q.ctx.services = Sched()
    q._place()
    assert "host" not in q.data and q._url() == "tcp://10.0.0.5:2375"


def test_placement_failure_names_the_reasons():
    class NoValidHost(Exception):
        pass

    class Never(FakeServices):
        def pick_host(self, ctx, memory):
            raise NoValidHost("No valid host was found. h1: needs 99999 MB, has 100")

    from dockyard.orchestration.errors import ResourceFailure

    p = plugin({"image": "i"})
    p.ctx.services = Never()
    p.placement_wait = 0
    with pytest.raises(ResourceFailure, match="needs 99999 MB"):
        p._place()


def test_endpoint_from_an_unknown_attribute_waits_for_create():
    # at validation a get_attr is null: str_replace gives "tcp://:2375", checked at create
    p = plugin({"image": "img", "docker_endpoint": "tcp://:2375"})
    p.unresolved = True
    p.validate()
    p.unresolved = False
    with pytest.raises(TemplateError, match="not a Docker endpoint"):
        p.validate()
