"""Every heat_template_version: its aliases, functions, condition functions and sections."""

from __future__ import annotations

from dataclasses import dataclass

_BASE = (
    "get_param",
    "get_resource",
    "get_attr",
    "list_join",
    "str_replace",
    "resource_facade",
    "get_file",
)
_CFN = (
    "Ref",
    "Fn::GetAZs",
    "Fn::Select",
    "Fn::Join",
    "Fn::Split",
    "Fn::Replace",
    "Fn::Base64",
    "Fn::MemberListToMap",
    "Fn::ResourceFacade",
    "Fn::GetAtt",
)

DESCRIPTIONS = {
    "get_param": "A function for resolving parameter references.",
    "get_resource": "A function for resolving resource references.",
    "get_attr": "A function for resolving resource attributes.",
    "str_replace": "A function for performing string substitutions.",
    "str_replace_strict": "A function for performing string substitutions.",
    "str_replace_vstrict": "A function for performing string substitutions.",
    "list_join": "A function for joining strings.",
    "repeat": "A function for iterating over a list of items.",
    "resource_facade": "A function for retrieving data in a parent provider template.",
    "digest": "A function for performing digest operations.",
    "str_split": "A function for splitting delimited strings into a list.",
    "map_merge": "A function for merging maps.",
    "map_replace": "A function for performing substitutions on maps.",
    "make_url": "A function for performing substitutions on maps.",
    "yaql": "A function for executing a yaql expression.",
    "if": "A function to return corresponding value based on condition evaluation.",
    "filter": "A function for filtering out values from lists.",
    "list_concat": "A function for extending lists.",
    "list_concat_unique": "A function for extending lists with unique items.",
    "contains": "A function for checking whether specific value is in sequence.",
    "equals": "A function for comparing whether two values are equal.",
    "not": "A function that acts as a NOT operator on a condition.",
    "and": "A function that acts as a AND operator on conditions.",
    "or": "A function that acts as a OR operator on conditions.",
    "get_file": "A function for including a file inline.",
    "Fn::Select": "A function for selecting an item from a list or map.",
    "Ref": "A function for resolving parameters or resource references.",
    "Fn::GetAZs": "A function for retrieving the availability zones.",
    "Fn::Join": "A function for joining strings.",
    "Fn::Split": "A function for splitting strings.",
    "Fn::Replace": "A function for performing string substitutions.",
    "Fn::Base64": "A placeholder function for converting to base64.",
    "Fn::MemberListToMap": (
        "A function to convert lists with enumerated keys and values to mapping."
    ),
    "Fn::ResourceFacade": "A function for retrieving data in a parent provider template.",
    "Fn::GetAtt": "A function for resolving resource attributes.",
}


@dataclass(frozen=True)
class Version:
    date: str
    alias: str | None
    functions: frozenset[str]
    condition_functions: frozenset[str]
    sections: frozenset[str]
    resource_keys: frozenset[str]
    output_keys: frozenset[str]

    @property
    def key(self) -> str:
        return f"heat_template_version.{self.date}"

    def describe(self, name: str) -> str:
        text = DESCRIPTIONS.get(name, "")
        if name == "list_join" and self.date >= "2015-10-15":
            return "A function for joining one or more lists of strings."
        if name == "repeat" and self.date >= "2016-10-14":
            return "A function for iterating over a list of items or a dict of keys."
        return text

    def at_least(self, date: str) -> bool:
        return self.date >= date


_SECTIONS = {"heat_template_version", "description", "parameter_groups", "parameters"}
_SECTIONS |= {"resources", "outputs"}
_RES_KEYS = {
    "type",
    "properties",
    "metadata",
    "depends_on",
    "deletion_policy",
    "update_policy",
    "description",
}


def _build() -> list[Version]:
    out: list[Version] = []
    funcs = set(_BASE) | set(_CFN)
    conds: set[str] = set()
    sections = set(_SECTIONS)
    res_keys = set(_RES_KEYS)
    out_keys = {"description", "value"}
    steps = [
        ("2013-05-23", None, {}, set()),
        ("2014-10-16", None, {"remove": set(_CFN) - {"Fn::Select"}}, set()),
        ("2015-04-30", None, {"add": {"repeat", "digest"}}, set()),
        ("2015-10-15", None, {"remove": {"Fn::Select"}, "add": {"str_split"}}, set()),
        ("2016-04-08", None, {"add": {"map_merge"}}, set()),
        ("2016-10-14", "newton", {"add": {"yaql", "map_replace", "if"}}, set()),
        ("2017-02-24", "ocata", {"add": {"filter", "str_replace_strict"}}, set()),
        (
            "2017-09-01",
            "pike",
            {
                "add": {
                    "make_url",
                    "list_concat",
                    "list_concat_unique",
                    "str_replace_vstrict",
                    "contains",
                }
            },
            set(),
        ),
        ("2018-03-02", "queens", {}, set()),
        ("2018-08-31", "rocky", {}, set()),
        ("2021-04-16", "wallaby", {}, set()),
    ]
    for date, alias, change, _ in steps:
        funcs -= change.get("remove", set())
        funcs |= change.get("add", set())
        if date == "2016-10-14":
            conds = {"equals", "get_param", "not", "and", "or"}
            sections.add("conditions")
            res_keys |= {"external_id", "condition"}
            out_keys.add("condition")
            # the boolean operators are usable inside `if` and conditions alike
            funcs |= {"equals", "not", "and", "or"}
        if date == "2017-09-01":
            conds |= {"yaql", "contains"}
        out.append(
            Version(
                date,
                alias,
                frozenset(funcs),
                frozenset(conds),
                frozenset(sections),
                frozenset(res_keys),
                frozenset(out_keys),
            )
        )
    return out


VERSIONS: list[Version] = _build()
_BY_NAME: dict[str, Version] = {}
for _v in VERSIONS:
    _BY_NAME[_v.date] = _v
    if _v.alias:
        _BY_NAME[_v.alias] = _v
ALL_FUNCTIONS: frozenset[str] = frozenset().union(*(v.functions for v in VERSIONS))
LATEST = VERSIONS[-1]


def lookup(value: object) -> Version | None:
    """The version named by a heat_template_version value (date or alias), or None."""
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    return _BY_NAME.get(str(value))


def listed_functions(version: Version, with_condition: bool) -> list[dict]:
    """GET /template_versions/{v}/functions: the functions of a version, described."""
    names = set(version.functions) - {"equals", "not", "and", "or"}
    if with_condition:
        names |= version.condition_functions
    return [{"functions": n, "description": version.describe(n)} for n in sorted(names)]


def template_versions() -> list[dict]:
    items = [
        {"version": v.key, "type": "hot", "aliases": [f"heat_template_version.{v.alias}"]}
        if v.alias
        else {"version": v.key, "type": "hot", "aliases": []}
        for v in VERSIONS
    ]
    items.append({"version": "AWSTemplateFormatVersion.2010-09-09", "type": "cfn", "aliases": []})
    items.append({"version": "HeatTemplateFormatVersion.2012-12-12", "type": "cfn", "aliases": []})
    return items
