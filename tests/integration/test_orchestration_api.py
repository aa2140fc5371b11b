"""Orchestration API over HTTP (SQLite and PostgreSQL): shapes, redirects, lifecycle, errors."""

from __future__ import annotations

import time

import httpx
import pytest

TPL = {
    "heat_template_version": "2017-09-01",
    "parameters": {
        "val": {"type": "string", "default": "hello"},
        "pw": {"type": "string", "hidden": True, "default": "s3cret"},
    },
    "resources": {
        "test": {"type": "OS::Heat::TestResource", "properties": {"value": {"get_param": "val"}}},
        "rnd": {
            "type": "OS::Heat::RandomString",
            "depends_on": "test",
            "properties": {"length": 12},
        },
    },  # fmt: skip
    "outputs": {
        "output_value": {"value": {"get_attr": ["test", "output"]}, "description": "the value"},
        "rnd": {"value": {"get_resource": "rnd"}},
    },
}


@pytest.fixture(scope="module")
def admin(cloud):
    token = cloud.token("admin")
    with cloud.client(token) as c:
        r = c.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": token})
        project = r.json()["token"]["project"]["id"]
        c.base_url = f"{cloud.url}/orchestration/v1/{project}"
        c.project = project
        yield c


def wait_status(c: httpx.Client, url: str, want: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack = c.get(url).json()["stack"]
        if not stack["stack_status"].endswith("IN_PROGRESS"):
            assert stack["stack_status"] == want, stack
            return stack
        time.sleep(0.2)
    raise AssertionError(f"{url} still in progress")


def create(c: httpx.Client, name: str, template: dict, **extra) -> str:
    r = c.post("/stacks", json={"stack_name": name, "template": template, **extra})
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith(f"/stacks/{name}/{r.json()['stack']['id']}")
    return f"/stacks/{name}/{r.json()['stack']['id']}"


def test_versions_and_tenant_checks(cloud, admin):
    r = httpx.get(cloud.url + "/orchestration/")
    assert r.status_code == 300 and r.json()["versions"][0]["id"] == "v1.0"
    r = admin.get(f"{cloud.url}/orchestration/v1/{admin.project}/stacks", headers={})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    demo = cloud.client(cloud.token("demo"))
    r = demo.get(f"/orchestration/v1/{admin.project}/stacks")
    assert r.status_code == 403 and r.json()["error"]["type"] == "Forbidden"
    r = httpx.get(f"{admin.base_url}stacks")
    assert r.status_code == 401


def test_stack_lifecycle(admin):
    url = create(admin, "api-life", TPL, disable_rollback=True, tags="a,b", timeout_mins=5)
    stack = wait_status(admin, url, "CREATE_COMPLETE")
    assert stack["parameters"]["pw"] == "******"
    assert stack["parameters"]["OS::stack_name"] == "api-life"
    assert stack["tags"] == ["a", "b"] and stack["timeout_mins"] == 5
    outs = {o["output_key"]: o["output_value"] for o in stack["outputs"]}
    assert outs["output_value"] == "hello" and len(outs["rnd"]) == 12
    # name lookups redirect, with the sub-path and query kept
    r = admin.get("/stacks/api-life/resources?with_detail=true")
    assert r.status_code == 302
    assert r.headers["Location"].endswith(f"{url}/resources?with_detail=true")
    assert admin.get("/stacks/no-such").status_code == 404
    assert admin.get("/stacks/no-such").json()["error"]["type"] == "EntityNotFound"
    # resources
    res = admin.get(url + "/resources").json()["resources"]
    by = {r["resource_name"]: r for r in res}
    assert by["test"]["resource_status"] == "CREATE_COMPLETE"
    assert by["test"]["required_by"] == ["rnd"]
    assert by["test"]["physical_resource_id"].startswith("api-life-test-")
    assert admin.get(url + "/resources?type=OS::Nova::Server").json() == {"resources": []}
    assert admin.get(url + "/resources?bogus=1").status_code == 400
    detail = admin.get(url + "/resources/test").json()["resource"]
    assert detail["attributes"]["output"] == "hello"
    assert admin.post(url + "/resources/test/signal").status_code == 400
    # events: oldest first when asked, marker exclusive
    ev = admin.get(url + "/events?sort_dir=asc").json()["events"]
    assert ev[0]["resource_status_reason"] == "Stack CREATE started"
    assert ev[-1]["resource_status"] == "CREATE_COMPLETE" and ev[-1]["resource_name"] == "api-life"
    rest = admin.get(url + f"/events?sort_dir=asc&marker={ev[1]['id']}").json()["events"]
    assert [e["id"] for e in rest] == [e["id"] for e in ev[2:]]
    one = admin.get(url + "/resources/test/events").json()["events"]
    assert {e["resource_status"] for e in one} == {"CREATE_IN_PROGRESS", "CREATE_COMPLETE"}
    # outputs, template, environment
    assert admin.get(url + "/outputs").json()["outputs"][0]["output_key"] == "output_value"
    out = admin.get(url + "/outputs/output_value").json()["output"]
    assert out["output_value"] == "hello" and out["description"] == "the value"
    assert admin.get(url + "/outputs/nope").status_code == 404
    assert admin.get(url + "/template").json() == TPL
    # mark unhealthy then an update (PATCH, parameter merge) replaces/updates
    r = admin.patch(
        url + "/resources/test",
        json={"mark_unhealthy": True, "resource_status_reason": "resource deleted"},
    )
    assert r.status_code == 200
    t = admin.get(url + "/resources/test").json()["resource"]
    assert (t["resource_status"], t["resource_status_reason"]) == ("CHECK_FAILED",
                                                                   "resource deleted")  # fmt: skip
    r = admin.patch(url, json={"parameters": {"val": "patched"}})
    assert r.status_code == 202, r.text
    wait_status(admin, url, "UPDATE_COMPLETE")
    assert admin.get(url + "/outputs/output_value").json()["output"]["output_value"] == "patched"
    assert admin.get(url + "/resources/test").json()["resource"]["resource_status"] == (
        "CREATE_COMPLETE"
    )
    # in-place update (value is update_allowed) keeps the physical id
    pid = admin.get(url + "/resources/test").json()["resource"]["physical_resource_id"]
    r = admin.put(url, json={"template": TPL, "parameters": {"val": "put"}})
    assert r.status_code == 202
    wait_status(admin, url, "UPDATE_COMPLETE")
    t = admin.get(url + "/resources/test").json()["resource"]
    assert t["physical_resource_id"] == pid and t["resource_status"] == "UPDATE_COMPLETE"
    # suspend / resume / check
    assert admin.post(url + "/actions", json={"suspend": None}).status_code == 200
    wait_status(admin, url, "SUSPEND_COMPLETE")
    r = admin.put(url, json={"template": TPL})
    assert r.status_code == 400 and "suspended" in r.json()["error"]["message"]
    assert admin.post(url + "/actions", json={"resume": None}).status_code == 200
    wait_status(admin, url, "RESUME_COMPLETE")
    assert admin.post(url + "/actions", json={"check": None}).status_code == 200
    stack = wait_status(admin, url, "CHECK_COMPLETE")
    assert "not fully supported" in stack["stack_status_reason"]
    assert admin.post(url + "/actions", json={"a": 1, "b": 2}).status_code == 400
    # delete by name: 302 to the stack, then 204, then the id still shows DELETE_COMPLETE
    r = admin.delete("/stacks/api-life")
    assert r.status_code == 302
    assert admin.delete(url).status_code == 204
    stack = wait_status(admin, url, "DELETE_COMPLETE")
    assert stack["deletion_time"] and "outputs" not in stack
    assert admin.get("/stacks/api-life").status_code == 404
    assert all(s["stack_name"] != "api-life" for s in admin.get("/stacks").json()["stacks"])


def test_failure_rollback_and_timeout(admin):
    failing = {
        "heat_template_version": "2016-10-14",
        "resources": {
            "ok": {"type": "OS::Heat::TestResource"},
            "bad": {"type": "OS::Heat::TestResource", "depends_on": "ok",
                    "properties": {"fail": True}},
        },
    }  # fmt: skip
    url = create(admin, "api-fail", failing)
    stack = wait_status(admin, url, "CREATE_FAILED")
    assert stack["stack_status_reason"] == (
        "Resource CREATE failed: ValueError: resources.bad: Test Resource failed bad"
    )
    url = create(admin, "api-rollback", failing, disable_rollback=False)
    wait_status(admin, url, "ROLLBACK_COMPLETE")
    res = admin.get(url + "/resources").json()["resources"]
    assert {r["resource_status"] for r in res} == {"DELETE_COMPLETE"}
    slow = {"heat_template_version": "2016-10-14",
            "resources": {"s": {"type": "OS::Heat::TestResource",
                                "properties": {"action_wait_secs": {"create": 600}}}}}  # fmt: skip
    url = create(admin, "api-supersede", slow, timeout_mins=1)
    time.sleep(0.5)
    r = admin.get(url).json()["stack"]
    assert r["stack_status"] == "CREATE_IN_PROGRESS"
    assert admin.delete(url).status_code == 204  # delete supersedes the running create
    wait_status(admin, url, "DELETE_COMPLETE")


def test_validation_errors(admin):
    def post(tpl, **kw):
        return admin.post("/stacks", json={"stack_name": "api-bad", "template": tpl, **kw})

    cyc = {"heat_template_version": "2015-10-15", "resources": {
        "a": {"type": "OS::Heat::None", "depends_on": "b"},
        "b": {"type": "OS::Heat::None", "depends_on": "a"}}}  # fmt: skip
    r = post(cyc)
    assert r.status_code == 400 and "a -> b -> a" in r.json()["error"]["message"]
    r = post({"heat_template_version": "2015-10-15", "resources": {"a": {"type": "Nope::X"}}})
    assert r.status_code == 400 and "Nope::X" in r.json()["error"]["message"]
    r = post(TPL, parameters={"nope": 1})
    assert r.status_code == 400 and r.json()["error"]["type"] == "UnknownUserParameter"
    num = {"heat_template_version": "2015-10-15", "parameters": {"n": {"type": "number"}}}
    r = post(num, parameters={"n": "abc"})
    assert r.status_code == 400 and "'n'" in r.json()["error"]["message"]
    r = post("heat_template_version: 2015-10-15\ndescription: " + "x" * 600000)
    assert r.status_code == 400 and "exceeds maximum allowed size" in r.json()["error"]["message"]
    immutable = {"heat_template_version": "2016-10-14",
                 "parameters": {"p": {"type": "string", "immutable": True}}}  # fmt: skip
    url = create(admin, "api-immutable", immutable, parameters={"p": "a"})
    wait_status(admin, url, "CREATE_COMPLETE")
    r = admin.patch(url, json={"parameters": {"p": "b"}})
    assert r.status_code == 400 and r.json()["error"]["type"] == "ImmutableParameterModified"
    custom = {"heat_template_version": "2015-10-15", "parameters": {
        "img": {"type": "string", "constraints": [{"custom_constraint": "glance.image"}]},
        "net": {"type": "string", "default": "x",
                "constraints": [{"custom_constraint": "neutron.network"}]}}}  # fmt: skip
    r = post(custom, parameters={"img": "no-such-image"})
    assert r.status_code == 400
    assert "Parameter 'img' is invalid" in r.json()["error"]["message"]
    r = admin.post("/stacks", json={"stack_name": "1bad", "template": TPL})
    assert r.status_code == 400 and "Invalid stack name" in r.json()["error"]["message"]
    docker = {"heat_template_version": "2015-10-15", "resources": {"c": {
        "type": "DockerInc::Docker::Container",
        "properties": {"image": "x", "docker_endpoint": "tcp://127.0.0.1:2375"}}}}  # fmt: skip
    r = post(docker)
    assert r.status_code == 400 and "docker_endpoint" in r.json()["error"]["message"]
    create(admin, "api-dup", {"heat_template_version": "2015-10-15"})
    r = admin.post("/stacks", json={"stack_name": "api-dup", "template": TPL})
    assert r.status_code == 409 and r.json()["error"]["type"] == "StackExists"


def test_validate_types_and_versions(admin):
    r = admin.post("/validate", json={"template": {
        "heat_template_version": "2016-04-08",
        "parameters": {"test_val": {"type": "string"}},
        "parameter_groups": [{"label": "g", "parameters": ["test_val"]}],
        "resources": {"t": {"type": "OS::Heat::TestResource",
                            "properties": {"value": {"get_param": "test_val"}}}}}})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["Parameters"]["test_val"] == {
        "Type": "String", "Description": "", "NoEcho": "false", "Label": "test_val"}  # fmt: skip
    assert body["ParameterGroups"][0]["parameters"] == ["test_val"]
    names = admin.get("/resource_types").json()["resource_types"]
    assert "DockerInc::Docker::Container" in names and "OS::Heat::TestResource" in names
    t = admin.get("/resource_types/OS::Heat::TestResource").json()
    assert t["support_status"]["status"] == "SUPPORTED"
    assert t["properties"]["wait_secs"]["default"] == 0
    d = admin.get("/resource_types/DockerInc::Docker::Container").json()
    assert d["support_status"]["status"] == "UNSUPPORTED" and "network_ip" in d["attributes"]
    hot = admin.get("/resource_types/OS::Heat::TestResource/template?template_type=hot").json()
    assert hot["resources"]["TestResource"]["type"] == "OS::Heat::TestResource"
    assert admin.get("/resource_types/No::Such").status_code == 404
    v = admin.get("/template_versions").json()["template_versions"]
    assert {"version": "heat_template_version.2016-04-08", "type": "hot", "aliases": []} in v
    f = admin.get("/template_versions/heat_template_version.2016-04-08/functions").json()
    assert {"functions": "get_file", "description": "A function for including a file inline."} in (
        f["template_functions"]
    )
    assert admin.get("/template_versions/heat_template_version.1999/functions").status_code == 404


def test_project_isolation(cloud, admin):
    url = create(admin, "api-private", {"heat_template_version": "2015-10-15"})
    demo_token = cloud.token("demo")
    with cloud.client(demo_token) as c:
        r = c.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": demo_token})
        demo_project = r.json()["token"]["project"]["id"]
        base = f"/orchestration/v1/{demo_project}"
        assert c.get(base + "/stacks").json()["stacks"] == []
        assert c.get(base + "/stacks/api-private").status_code == 404
        assert c.get(base + url).status_code == 404


def test_neutron_resources_through_networking(cloud, admin):
    import random

    cidr = f"10.{random.randint(200, 249)}.{random.randint(0, 255)}.0/24"
    tpl = {
        "heat_template_version": "2016-10-14",
        "resources": {
            "net": {"type": "OS::Neutron::Net", "properties": {"name": "heat-net"}},
            "sub": {"type": "OS::Neutron::Subnet",
                    "properties": {"network": {"get_resource": "net"}, "cidr": cidr}},
            "sg": {"type": "OS::Neutron::SecurityGroup", "properties": {
                "name": "heat-sg", "rules": [
                    {"protocol": "tcp", "port_range_min": 80, "port_range_max": 80},
                    {"remote_mode": "remote_group_id"}]}},
            "port": {"type": "OS::Neutron::Port", "depends_on": "sub",
                     "properties": {"network": {"get_resource": "net"},
                                    "security_groups": [{"get_resource": "sg"}]}},
        },
        "outputs": {"ip": {"value": {"get_attr": ["port", "fixed_ips", 0, "ip_address"]}},
                    "net": {"value": {"get_resource": "net"}}},
    }  # fmt: skip
    url = create(admin, "api-neutron", tpl)
    stack = wait_status(admin, url, "CREATE_COMPLETE")
    outs = {o["output_key"]: o["output_value"] for o in stack["outputs"]}
    assert outs["ip"].startswith(cidr.rsplit(".", 1)[0] + ".")
    nets = admin.get(f"{cloud.url}/networking/v2.0/networks?id={outs['net']}").json()["networks"]
    assert nets[0]["name"] == "heat-net" and len(nets[0]["subnets"]) == 1
    ports = admin.get(f"{cloud.url}/networking/v2.0/ports?network_id={outs['net']}").json()
    assert [p["fixed_ips"][0]["ip_address"] for p in ports["ports"]] == [outs["ip"]]
    [sg] = admin.get(f"{cloud.url}/networking/v2.0/security-groups?name=heat-sg").json()[
        "security_groups"
    ]
    assert ports["ports"][0]["security_groups"] == [sg["id"]]
    ingress = [r for r in sg["security_group_rules"] if r["direction"] == "ingress"]
    assert {(r["protocol"], r["port_range_min"], r["remote_group_id"]) for r in ingress} == {
        ("tcp", 80, None), (None, None, sg["id"])}  # fmt: skip
    assert admin.delete(url).status_code == 204
    wait_status(admin, url, "DELETE_COMPLETE")
    nets = admin.get(f"{cloud.url}/networking/v2.0/networks?id={outs['net']}").json()["networks"]
    assert nets == []
    assert (
        admin.get(f"{cloud.url}/networking/v2.0/security-groups?name=heat-sg").json()[
            "security_groups"
        ]
        == []
    )


def test_software_configs_and_deployments(admin):
    r = admin.post("/software_configs", json={"name": "cfg", "group": "script",
                                              "config": "#!/bin/sh\necho hi"})  # fmt: skip
    assert r.status_code == 200, r.text
    cfg = r.json()["software_config"]
    assert admin.get(f"/software_configs/{cfg['id']}").json()["software_config"]["group"] == (
        "script"
    )
    r = admin.post(
        "/software_deployments",
        json={"action": "ACTION0", "config_id": cfg["id"], "server_id": "srv"},
    )
    assert r.status_code == 200
    dep = r.json()["software_deployment"]
    meta = admin.get("/software_deployments/metadata/srv").json()["metadata"]
    assert meta[0]["group"] == "script" and meta[0]["config"].startswith("#!/bin/sh")
    r = admin.put(
        f"/software_deployments/{dep['id']}",
        json={"action": "ACTION1", "status": "COMPLETE", "status_reason": "done"},
    )
    assert r.json()["software_deployment"]["action"] == "ACTION1"
    ids = [d["id"] for d in admin.get("/software_deployments").json()["software_deployments"]]
    assert dep["id"] in ids
    assert admin.delete(f"/software_deployments/{dep['id']}").status_code == 204
    assert admin.delete(f"/software_configs/{cfg['id']}").status_code == 204
    assert admin.get(f"/software_configs/{cfg['id']}").status_code == 404


def test_external_id_none_override_and_preview(admin):
    ext = {"heat_template_version": "2016-10-14", "resources": {
        "t": {"type": "OS::Heat::TestResource", "external_id": "foobar"}}}  # fmt: skip
    url = create(admin, "api-ext", ext)
    wait_status(admin, url, "CREATE_COMPLETE")
    assert admin.get(url + "/resources/t").json()["resource"]["physical_resource_id"] == "foobar"
    changed = {"heat_template_version": "2016-10-14", "resources": {
        "t": {"type": "OS::Heat::TestResource", "external_id": "other"}}}  # fmt: skip
    assert admin.put(url, json={"template": changed}).status_code == 202
    stack = wait_status(admin, url, "UPDATE_FAILED")
    assert "external_id" in stack["stack_status_reason"]
    # an environment mapping a type to OS::Heat::None: any properties are fine
    tpl = {"heat_template_version": "2014-10-16", "resources": {
        "r": {"type": "OS::Heat::RandomString", "properties": {"length": 4}}}}  # fmt: skip
    env = {"resource_registry": {"OS::Heat::RandomString": "OS::Heat::None"}}
    r = admin.post("/validate", json={"template": tpl, "environment": env})
    assert r.status_code == 200, r.text
    assert r.json()["Environment"]["resource_registry"] == {
        "OS::Heat::RandomString": "OS::Heat::None", "resources": {}}  # fmt: skip
    r = admin.post("/stacks/preview", json={"stack_name": "api-preview", "template": tpl})
    res = r.json()["stack"]["resources"][0]
    assert res["resource_identity"]["path"] == "/resources/r"
    assert all(s["stack_name"] != "api-preview" for s in admin.get("/stacks").json()["stacks"])


NESTED = """
heat_template_version: 2016-10-14
parameters:
  val: {type: string, default: inner}
resources:
  t: {type: OS::Heat::TestResource, properties: {value: {get_param: val}}}
outputs:
  out: {value: {get_attr: [t, output]}}
"""


def test_nested_stacks(admin):
    tpl = {
        "heat_template_version": "2016-10-14",
        "resources": {
            "prov": {"type": "mynested.yaml", "properties": {"val": "from-parent"}},
            "inline": {"type": "OS::Heat::Stack",
                       "properties": {"template": NESTED, "parameters": {"val": "x"}}},
        },
        "outputs": {"prov": {"value": {"get_attr": ["prov", "out"]}},
                    "inline": {"value": {"get_attr": ["inline", "outputs", "out"]}}},
    }  # fmt: skip
    r = admin.post("/stacks", json={"stack_name": "api-nest", "template": tpl, "files": {}})
    assert r.status_code == 400 and "mynested.yaml" in r.json()["error"]["message"]
    bad = {"mynested.yaml": NESTED.replace("OS::Heat::TestResource", "No::Such")}
    r = admin.post("/stacks", json={"stack_name": "api-nest", "template": tpl, "files": bad})
    assert r.status_code == 400 and "No::Such" in r.json()["error"]["message"]
    url = create(admin, "api-nest", tpl, files={"mynested.yaml": NESTED})
    stack = wait_status(admin, url, "CREATE_COMPLETE")
    outs = {o["output_key"]: o["output_value"] for o in stack["outputs"]}
    assert outs == {"prov": "from-parent", "inline": "x"}
    res = {r["resource_name"]: r for r in admin.get(url + "/resources").json()["resources"]}
    child_id = res["prov"]["physical_resource_id"]
    child = admin.get(f"/stacks/{child_id}", follow_redirects=True).json()["stack"]
    assert child["parent"] == stack["id"] and child["stack_status"] == "CREATE_COMPLETE"
    names = [s["stack_name"] for s in admin.get("/stacks").json()["stacks"]]
    assert child["stack_name"] not in names
    assert child["stack_name"] in [
        s["stack_name"] for s in admin.get("/stacks?show_nested=true").json()["stacks"]
    ]
    deep = admin.get(url + "/resources?nested_depth=1").json()["resources"]
    assert {r["resource_name"] for r in deep} == {"prov", "inline", "t"}
    # updating the parent's properties updates the child in place
    tpl["resources"]["prov"]["properties"]["val"] = "changed"
    assert (
        admin.put(url, json={"template": tpl, "files": {"mynested.yaml": NESTED}}).status_code
        == 202
    )
    wait_status(admin, url, "UPDATE_COMPLETE")
    assert admin.get(url + "/outputs/prov").json()["output"]["output_value"] == "changed"
    assert admin.delete(url).status_code == 204
    wait_status(admin, url, "DELETE_COMPLETE")
    child = admin.get(f"/stacks/{child_id}", follow_redirects=True).json()["stack"]
    assert child["stack_status"] == "DELETE_COMPLETE"


def test_resource_group_of_nested_templates(admin):
    tpl = {
        "heat_template_version": "2016-10-14",
        "resources": {"rg": {"type": "OS::Heat::ResourceGroup", "properties": {
            "count": 2,
            "resource_def": {"type": "node.yaml", "properties": {"val": "n%index%"}}}}},
        "outputs": {"outs": {"value": {"get_attr": ["rg", "out"]}}},
    }  # fmt: skip
    url = create(admin, "api-rg-nested", tpl, files={"node.yaml": NESTED})
    stack = wait_status(admin, url, "CREATE_COMPLETE")
    assert stack["outputs"][0]["output_value"] == ["n0", "n1"]
    nested = [s for s in admin.get("/stacks?show_nested=true").json()["stacks"]
              if s["parent"] == stack["id"]]  # fmt: skip
    assert len(nested) == 2 and {s["stack_status"] for s in nested} == {"CREATE_COMPLETE"}
    assert admin.delete(url).status_code == 204
    wait_status(admin, url, "DELETE_COMPLETE")
    left = [s for s in admin.get("/stacks?show_nested=true").json()["stacks"]
            if s["parent"] == stack["id"]]  # fmt: skip
    assert left == []


def test_cancel_update_rolls_back(admin):
    def tpl(value, wait=0):
        props = {"value": value, "action_wait_secs": {"update": wait}}
        return {"heat_template_version": "2016-10-14",
                "resources": {"t": {"type": "OS::Heat::TestResource", "properties": props}},
                "outputs": {"v": {"value": {"get_attr": ["t", "output"]}}}}  # fmt: skip

    url = create(admin, "api-cancel", tpl("one"))
    wait_status(admin, url, "CREATE_COMPLETE")
    assert admin.post(url + "/actions", json={"cancel_update": None}).status_code == 400
    assert admin.put(url, json={"template": tpl("two", wait=60)}).status_code == 202
    r = admin.put(url, json={"template": tpl("three")})
    assert r.status_code == 409 and r.json()["error"]["type"] == "ActionInProgress"
    time.sleep(0.5)
    assert admin.post(url + "/actions", json={"cancel_update": None}).status_code == 200
    stack = wait_status(admin, url, "ROLLBACK_COMPLETE")
    assert {o["output_key"]: o["output_value"] for o in stack["outputs"]} == {"v": "one"}
    assert admin.get(url + "/template").json() == tpl("one")
    res = admin.get(url + "/resources/t").json()["resource"]
    assert not res["resource_status"].endswith("IN_PROGRESS"), res


def test_concurrent_creates_of_one_name(admin):
    import concurrent.futures

    tpl = {"heat_template_version": "2015-10-15"}
    body = {"stack_name": "api-race", "template": tpl}
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: admin.post("/stacks", json=body).status_code, range(6)))
    assert sorted(codes) == [201] + [409] * 5
    live = [s for s in admin.get("/stacks").json()["stacks"] if s["stack_name"] == "api-race"]
    assert len(live) == 1
    # the name is free again once the stack is deleted
    url = f"/stacks/api-race/{live[0]['id']}"
    assert admin.delete(url).status_code == 204
    wait_status(admin, url, "DELETE_COMPLETE")
    r = admin.post("/stacks", json=body)
    assert r.status_code == 201, [
        (x["id"], x["stack_status"], x["deletion_time"], x["stack_status_reason"])
        for x in admin.get("/stacks?show_deleted=true").json()["stacks"]
        if x["stack_name"] == "api-race"
    ]
