"""HOT parsing, versions, intrinsic functions, parameters, conditions, dependencies (pure)."""

from __future__ import annotations

import hashlib

import pytest

from dockyard.orchestration import versions
from dockyard.orchestration.errors import TemplateError
from dockyard.orchestration.functions import FunctionError, Resolver
from dockyard.orchestration.resources import registry
from dockyard.orchestration.stack import Definition, Placeholders
from dockyard.orchestration.template import Template, find_cycle, parse_text, topological


class FakeScope:
    def __init__(self, params=None, refs=None, attrs=None, files=None, conditions=None):
        self.params = params or {}
        self.refs = refs or {}
        self.attrs = attrs or {}
        self.files = files or {}
        self.conditions = conditions or {}

    def param(self, name):
        if name not in self.params:
            raise FunctionError(f"The Parameter ({name}) could not be found.")
        return self.params[name]

    def resource_ref(self, name):
        return self.refs[name]

    def attribute(self, name, attr, path):
        value = self.attrs[name][attr]
        for p in path:
            value = value[p] if isinstance(value, dict) else value[int(p)]
        return value

    def all_attributes(self, name):
        return self.attrs[name]

    def file(self, key):
        return self.files[key]

    def condition(self, name):
        return self.conditions[name]


def resolve(snippet, version="2021-04-16", **scope):
    return Resolver(versions.lookup(version), FakeScope(**scope)).resolve(snippet)


def test_yaml_dates_stay_strings_and_aliases_work():
    doc = parse_text("heat_template_version: 2016-10-14\nresources: {}\n")
    assert doc["heat_template_version"] == "2016-10-14"
    assert Template({"heat_template_version": "pike"}).version.date == "2017-09-01"
    assert Template({"heat_template_version": "wallaby"}).version.date == "2021-04-16"


def test_bad_documents_are_refused_with_heat_messages():
    with pytest.raises(TemplateError, match="not a JSON object or YAML mapping"):
        parse_text("- a\n- b\n")
    with pytest.raises(TemplateError, match="Template format version not found"):
        Template({"resources": {}})
    with pytest.raises(TemplateError, match="The template version is invalid") as e:
        Template({"heat_template_version": "2012-01-01"})
    assert e.value.kind == "InvalidTemplateVersion"
    with pytest.raises(TemplateError, match="section is invalid: bogus"):
        Template({"heat_template_version": "2015-10-15", "bogus": {}})
    with pytest.raises(TemplateError, match="section is invalid: conditions"):
        Template({"heat_template_version": "2016-04-08", "conditions": {}})
    with pytest.raises(TemplateError, match="exceeds maximum allowed size"):
        parse_text("heat_template_version: 2015-10-15\ndescription: " + "x" * 600000)


def test_functions_follow_the_version_table():
    v2013 = versions.lookup("2013-05-23")
    assert "Fn::Join" in v2013.functions and "repeat" not in v2013.functions
    v2014 = versions.lookup("2014-10-16")
    assert "Fn::Join" not in v2014.functions and "Fn::Select" in v2014.functions
    assert "Fn::Select" not in versions.lookup("2015-10-15").functions
    assert "str_split" in versions.lookup("2015-10-15").functions
    assert "map_merge" in versions.lookup("2016-04-08").functions
    newton = versions.lookup("2016-10-14")
    assert {"if", "map_replace", "yaql"} <= newton.functions
    assert {"equals", "not", "and", "or", "get_param"} == set(newton.condition_functions)
    assert "filter" in versions.lookup("2017-02-24").functions
    assert "make_url" in versions.lookup("pike").functions
    assert "contains" in versions.lookup("pike").condition_functions
    with pytest.raises(FunctionError, match="not supported by heat_template_version 2015-04-30"):
        resolve({"map_merge": [{"a": 1}]}, "2015-04-30")
    listed = versions.listed_functions(versions.lookup("2016-04-08"), False)
    assert {
        "functions": "get_file",
        "description": "A function for including a file inline.",
    } in listed
    assert all(f["functions"] != "equals" for f in listed)
    with_cond = versions.listed_functions(newton, True)
    assert any(f["functions"] == "equals" for f in with_cond)


def test_string_functions():
    assert resolve({"list_join": [",", ["a", "b"], ["c"]]}) == "a,b,c"
    assert resolve({"list_join": [",", ["a", {"k": 1}]]}) == 'a,{"k": 1}'
    with pytest.raises(FunctionError, match="exactly one list"):
        resolve({"list_join": [",", ["a"], ["b"]]}, "2015-04-30")
    s = {"str_replace": {"template": "$a-$ab", "params": {"$a": "x", "$ab": "y"}}}
    assert resolve(s) == "x-y"
    assert resolve({"str_replace": {"template": "v=V", "params": {"V": [1]}}}) == "v=[1]"
    with pytest.raises(FunctionError, match="not present"):
        resolve({"str_replace_strict": {"template": "abc", "params": {"z": "1"}}})
    with pytest.raises(FunctionError, match="empty value"):
        resolve({"str_replace_vstrict": {"template": "abc", "params": {"a": ""}}})
    assert resolve({"str_split": [",", "a,b,c"]}) == ["a", "b", "c"]
    assert resolve({"str_split": [",", "a,b,c", 1]}) == "b"
    assert resolve({"digest": ["sha256", "x"]}) == hashlib.sha256(b"x").hexdigest()
    url = {
        "make_url": {"scheme": "http", "host": "::1", "port": 80, "path": "a", "query": {"q": 1}}
    }
    assert resolve(url) == "http://[::1]:80/a?q=1"


def test_collection_functions():
    rep = {"repeat": {"for_each": {"%x%": ["a", "b"], "%y%": [1, 2]}, "template": "%x%%y%"}}
    assert resolve(rep) == ["a1", "a2", "b1", "b2"]
    zipped = {"repeat": {"for_each": {"<x>": ["a", "b"], "<y>": ["1", "2"]},
                         "template": {"k": "<x><y>"}, "permutations": False}}  # fmt: skip
    assert resolve(zipped) == [{"k": "a1"}, {"k": "b2"}]
    assert resolve({"map_merge": [{"a": 1}, {"a": 2, "b": 3}]}) == {"a": 2, "b": 3}
    mr = {"map_replace": [{"k1": "v1", "k2": "v2"}, {"keys": {"k1": "K1"}, "values": {"v2": "V2"}}]}
    assert resolve(mr) == {"K1": "v1", "k2": "V2"}
    assert resolve({"filter": [[None, 3], [1, None, 3, 4]]}) == [1, 4]
    assert resolve({"list_concat": [[1], None, [2, 1]]}) == [1, 2, 1]
    assert resolve({"list_concat_unique": [[1], [2, 1]]}) == [1, 2]
    assert resolve({"contains": ["a", ["a", "b"]]}) is True


def test_lookups_and_if_with_elision():
    scope = dict(
        params={"p": {"a": [10, 20]}},
        refs={"r": "id-1"},
        attrs={"r": {"net": {"ip": "1.2.3.4"}}},
        files={"f.txt": "content"},
        conditions={"yes": True, "no": False},
    )
    assert resolve({"get_param": ["p", "a", 1]}, **scope) == 20
    assert resolve({"get_resource": "r"}, **scope) == "id-1"
    assert resolve({"get_attr": ["r", "net", "ip"]}, **scope) == "1.2.3.4"
    assert resolve({"get_attr": ["r"]}, **scope) == {"net": {"ip": "1.2.3.4"}}
    assert resolve({"get_file": "f.txt"}, **scope) == "content"
    assert resolve({"if": ["yes", 1, 2]}, **scope) == 1
    assert resolve({"if": [{"not": "yes"}, 1, 2]}, **scope) == 2
    assert resolve({"a": {"if": ["no", 1]}, "b": [1, {"if": ["no", 2]}]}, **scope) == {"b": [1]}
    with pytest.raises(FunctionError):
        resolve({"if": ["no", 1]}, "2018-08-31", **scope)
    with pytest.raises(FunctionError, match="yaql"):
        resolve({"yaql": {"expression": "1", "data": {}}})
    old = versions.lookup("2013-05-23")
    r = Resolver(old, FakeScope(**scope))
    assert r.resolve({"Fn::Join": ["-", ["a", "b"]]}) == "a-b"
    with pytest.raises(FunctionError):
        r.resolve({"get_attr": ["r", "net", "ip"]})


def _defn(doc, params=None, env=None):
    return Definition.build(
        doc, {}, env or {}, params or {}, {"OS::stack_name": "s", "OS::stack_id": "i",
                                           "OS::project_id": "p"}, registry(),
    )  # fmt: skip


def test_parameters_types_constraints_and_hidden():
    doc = {
        "heat_template_version": "2017-02-24",
        "parameters": {
            "n": {"type": "number", "constraints": [{"range": {"min": 1, "max": 5}}]},
            "s": {"type": "string", "default": "ab",
                  "constraints": [{"allowed_pattern": "[a-z]+", "description": "lowercase"}]},
            "l": {"type": "comma_delimited_list", "default": "a,b"},
            "b": {"type": "boolean", "default": "yes"},
            "j": {"type": "json", "default": '{"k": 1}'},
            "m": {"type": "number", "default": 4, "constraints": [{"modulo": {"step": 2,
                                                                               "offset": 0}}]},
            "h": {"type": "string", "hidden": True, "default": "pw"},
        },
    }  # fmt: skip
    d = _defn(doc, {"n": "3"})
    assert d.params == {"n": 3, "s": "ab", "l": ["a", "b"], "b": True, "j": {"k": 1}, "m": 4,
                        "h": "pw"}  # fmt: skip
    assert d.template.parameters["h"].display("pw") == "******"
    assert d.template.parameters["l"].display(["a", "b"]) == "a,b"
    with pytest.raises(TemplateError, match="Parameter 'n' is invalid"):
        _defn(doc, {"n": 9})
    with pytest.raises(TemplateError, match="Parameter 's' is invalid: lowercase"):
        _defn(doc, {"n": 1, "s": "AB"})
    with pytest.raises(TemplateError, match=r"The Parameter \(n\) was not provided") as e:
        _defn(doc)
    assert e.value.kind == "UserParameterMissing"
    with pytest.raises(TemplateError, match=r"The Parameter \(zz\) was not defined") as e:
        _defn(doc, {"n": 1, "zz": 1})
    assert e.value.kind == "UnknownUserParameter"
    # environment parameter_defaults override template defaults; env parameters too
    d = _defn(doc, {}, {"parameters": {"n": 2}, "parameter_defaults": {"s": "zz"}})
    assert (d.params["n"], d.params["s"]) == (2, "zz")
    with pytest.raises(TemplateError, match="modulo"):
        Template(
            {
                "heat_template_version": "2016-10-14",
                "parameters": {"m": {"type": "number", "constraints": [{"modulo": {"step": 2}}]}},
            }
        )
    view = d.template.parameters["h"].api_view()
    assert view["NoEcho"] == "true" and view["Default"] == "pw" and view["Type"] == "String"


def test_parameter_groups_are_checked():
    doc = {"heat_template_version": "2015-10-15", "parameters": {"a": {"type": "string"}},
           "parameter_groups": [{"label": "g", "parameters": ["a", "b"]}]}  # fmt: skip
    with pytest.raises(TemplateError, match="grouped parameter b"):
        Template(doc)


def test_conditions_resources_and_outputs():
    doc = {
        "heat_template_version": "2016-10-14",
        "parameters": {"env": {"type": "string", "default": "prod"}},
        "conditions": {
            "is_prod": {"equals": [{"get_param": "env"}, "prod"]},
            "not_prod": {"not": "is_prod"},
        },
        "resources": {
            "a": {"type": "OS::Heat::Value", "properties": {"value": "A"}},
            "b": {"type": "OS::Heat::Value", "condition": "not_prod",
                  "properties": {"value": "B"}},
        },
        "outputs": {
            "ok": {"value": {"if": ["is_prod", "p", "d"]}},
            "b_ref": {"value": {"get_resource": "b"}},
            "broken": {"value": {"get_attr": ["a", "nope"]}},
        },
    }  # fmt: skip
    d = _defn(doc)
    assert d.conditions == {"is_prod": True, "not_prod": False}
    assert list(d.active) == ["a"]
    outs = {o["output_key"]: o for o in d.outputs(Placeholders())}
    assert outs["ok"]["output_value"] == "p"
    assert outs["b_ref"]["output_value"] is None
    assert "Referenced Attribute" in outs["broken"]["output_error"]
    assert outs["ok"]["description"] == "No description given"
    d = _defn(doc, {"env": "dev"})
    assert sorted(d.active) == ["a", "b"]


def test_dependencies_cycles_and_order():
    doc = {
        "heat_template_version": "2015-10-15",
        "resources": {
            "a": {"type": "OS::Heat::None"},
            "b": {"type": "OS::Heat::Value", "properties": {"value": {"get_resource": "a"}}},
            "c": {"type": "OS::Heat::Value", "depends_on": ["b"],
                  "properties": {"value": {"get_attr": ["a", "show"]}}},
            "d": {"type": "OS::Heat::None"},
        },
    }  # fmt: skip
    d = _defn(doc)
    assert d.deps == {"a": set(), "b": {"a"}, "c": {"a", "b"}, "d": set()}
    assert d.order == ["a", "d", "b", "c"]
    assert d.required_by()["a"] == ["b", "c"]
    cyc = {
        "heat_template_version": "2015-10-15",
        "resources": {
            "x": {"type": "OS::Heat::None", "depends_on": "y"},
            "y": {"type": "OS::Heat::None", "depends_on": "z"},
            "z": {"type": "OS::Heat::None", "depends_on": "x"},
        },
    }
    with pytest.raises(TemplateError, match="Circular Dependency Found: x -> y -> z -> x") as e:
        _defn(cyc)
    assert e.value.kind == "CircularDependencyException"
    bad = {"heat_template_version": "2015-10-15",
           "resources": {"x": {"type": "OS::Heat::None", "depends_on": "nope"}}}  # fmt: skip
    with pytest.raises(TemplateError, match='reference "nope"'):
        _defn(bad)
    unknown = {"heat_template_version": "2015-10-15", "resources": {"x": {"type": "No::Such"}}}
    with pytest.raises(TemplateError, match=r"The Resource Type \(No::Such\) could not be found"):
        _defn(unknown)
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert topological({"b": {"a"}, "a": set()}) == ["a", "b"]


def test_resource_properties_are_validated():
    doc = {
        "heat_template_version": "2015-10-15",
        "resources": {"r": {"type": "OS::Heat::RandomString", "properties": {"length": 0}}},
    }
    d = _defn(doc)
    with pytest.raises(TemplateError, match="out of range"):
        d.properties("r", Placeholders())
    doc["resources"]["r"]["properties"] = {"bogus": 1}
    with pytest.raises(TemplateError, match="Unknown Property bogus"):
        _defn(doc).properties("r", Placeholders())


def test_condition_functions_follow_the_version():
    doc = {"heat_template_version": "2016-10-14",
           "conditions": {"c": {"contains": ["a", ["a"]]}}}  # fmt: skip
    with pytest.raises(TemplateError, match="not a condition function"):
        _defn(doc)
    doc["heat_template_version"] = "2017-09-01"
    assert _defn(doc).conditions == {"c": True}
    doc["conditions"] = {"c": {"and": [True, {"or": [False, {"not": False}]}]}, "d": "c"}
    assert _defn(doc).conditions == {"c": True, "d": True}
    doc["conditions"] = {"c": "d", "d": "c"}
    with pytest.raises(TemplateError, match="Circular"):
        _defn(doc)
