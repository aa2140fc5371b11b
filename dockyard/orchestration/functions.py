"""Intrinsic functions as pure functions over a snippet and a Scope that answers lookups.

`Resolver(version, scope).resolve(snippet, where)` returns the snippet with every function
call replaced by its value. A single-key mapping whose key is a function of the template's
version is a call; a function of another version is refused naming the version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from dockyard.orchestration.errors import TemplateError
from dockyard.orchestration.versions import ALL_FUNCTIONS, Version


class FunctionError(ValueError):
    """A function was called wrongly; the resolver adds where it happened."""


class _Elided:
    def __repr__(self) -> str:
        return "<elided>"


# wallaby's two-argument `if` with a false condition: the enclosing item disappears
ELIDED = _Elided()


class Scope(Protocol):
    def param(self, name: str) -> Any: ...
    def resource_ref(self, name: str) -> Any: ...
    def attribute(self, name: str, attr: str, path: list) -> Any: ...
    def all_attributes(self, name: str) -> dict: ...
    def file(self, key: str) -> Any: ...
    def condition(self, name: str) -> bool: ...


def _walk_path(value: Any, path: list, what: str) -> Any:
    for key in path:
        if isinstance(value, dict):
            if key not in value:
                raise FunctionError(f'"{key}" not found in {what}')
            value = value[key]
        elif isinstance(value, list):
            try:
                value = value[int(key)]
            except (ValueError, IndexError) as exc:
                raise FunctionError(f'index "{key}" not found in {what}') from exc
        elif value is None:
            return None
        else:
            raise FunctionError(f'path component "{key}" is invalid for {what}')
    return value


def _json_text(value: Any, version: Version) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list) and version.at_least("2015-10-15"):
        return json.dumps(value)
    raise FunctionError(f"items to join must be strings, not {type(value).__name__}")


def _as_list(value: Any, fn: str) -> list:
    if not isinstance(value, list):
        raise FunctionError(f'Arguments to "{fn}" must be a list')
    return value


def _replace_all(template: str, params: dict, version: Version, fn: str) -> str:
    if not isinstance(template, str):
        raise FunctionError(f'"{fn}" template must be a string')
    if not isinstance(params, dict):
        raise FunctionError(f'"{fn}" params must be a map')
    text = {}
    for k, v in params.items():
        if not isinstance(k, str):
            raise FunctionError(f'"{fn}" param keys must be strings')
        if (
            v is not None
            and not isinstance(v, str | int | float)
            and not version.at_least("2015-10-15")
        ):
            raise FunctionError(f'"{fn}" params must be strings or numbers')
        text[k] = _json_text(v, version) if not isinstance(v, str) else v
        if fn != "str_replace" and k not in template:
            raise FunctionError(f'"{fn}" parameter "{k}" is not present in the template.')
        if fn == "str_replace_vstrict" and text[k] == "":
            raise FunctionError(f'"{fn}" parameter "{k}" has an empty value.')
    if not text:
        return template
    keys = sorted(text, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(k) for k in keys))
    return pattern.sub(lambda m: text[m.group(0)], template)


def _digest(args: Any) -> str:
    args = _as_list(args, "digest")
    if len(args) != 2 or not isinstance(args[0], str) or not isinstance(args[1], str):
        raise FunctionError('Arguments to "digest" must be [algorithm, value] strings')
    algo, value = args
    if algo not in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512"):
        raise FunctionError(f'Algorithm "{algo}" is not supported by "digest"')
    return hashlib.new(algo, value.encode()).hexdigest()


def _str_split(args: Any) -> Any:
    args = _as_list(args, "str_split")
    if len(args) not in (2, 3):
        raise FunctionError('Arguments to "str_split" must be [delimiter, string, (index)]')
    delim, text = args[0], args[1]
    if not isinstance(delim, str) or not isinstance(text, str):
        raise FunctionError('"str_split" needs a string delimiter and string')
    parts = text.split(delim)
    if len(args) == 3:
        try:
            return parts[int(args[2])]
        except (ValueError, IndexError) as exc:
            raise FunctionError(f'Incorrect index to "str_split" ({args[2]})') from exc
    return parts


def _map_merge(args: Any) -> dict:
    out: dict = {}
    for m in _as_list(args, "map_merge"):
        if m is None:
            continue
        if not isinstance(m, dict):
            raise FunctionError('Incorrect arguments to "map_merge": all items must be maps')
        out.update(m)
    return out


def _map_replace(args: Any) -> dict:
    args = _as_list(args, "map_replace")
    if len(args) != 2 or not isinstance(args[0], dict) or not isinstance(args[1], dict):
        raise FunctionError('Arguments to "map_replace" must be [map, {keys: {}, values: {}}]')
    data, spec = args
    extra = set(spec) - {"keys", "values"}
    if extra:
        raise FunctionError(f'Incorrect arguments to "map_replace": unknown {sorted(extra)}')
    keys = spec.get("keys") or {}
    values = spec.get("values") or {}
    out: dict = {}
    for k, v in data.items():
        nk = keys.get(k, k)
        if nk in out or (nk != k and nk in data and nk not in keys):
            raise FunctionError(f"key replacement {nk} collides with a key in the input map")
        nv = values[v] if isinstance(v, str | int | float | bool) and v in values else v
        out[nk] = nv
    return out


def _filter(args: Any) -> list:
    args = _as_list(args, "filter")
    if len(args) != 2 or not isinstance(args[1], list | type(None)):
        raise FunctionError('Arguments to "filter" must be [values_to_remove, list]')
    remove = args[0] or []
    return [x for x in (args[1] or []) if x not in remove]


def _list_concat(args: Any, unique: bool) -> list:
    out: list = []
    for item in _as_list(args, "list_concat"):
        if item is None:
            continue
        if not isinstance(item, list):
            raise FunctionError('Incorrect arguments to "list_concat": all items must be lists')
        for x in item:
            if unique and x in out:
                continue
            out.append(x)
    return out


def _contains(args: Any) -> bool:
    args = _as_list(args, "contains")
    if len(args) != 2 or not isinstance(args[1], list | str | dict):
        raise FunctionError('Arguments to "contains" must be [value, sequence]')
    return args[0] in args[1]


def _make_url(args: Any) -> str:
    if not isinstance(args, dict):
        raise FunctionError('Arguments to "make_url" must be a map')
    known = {"scheme", "username", "password", "host", "port", "path", "query", "fragment"}
    extra = set(args) - known
    if extra:
        raise FunctionError(f'Unknown arguments to "make_url": {sorted(extra)}')
    url = ""
    if args.get("scheme"):
        url += f"{args['scheme']}://"
    user = args.get("username")
    if user:
        url += quote(str(user), safe="")
        if args.get("password"):
            url += ":" + quote(str(args["password"]), safe="")
        url += "@"
    host = str(args.get("host") or "")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    url += host
    if args.get("port") not in (None, ""):
        try:
            port = int(args["port"])
        except ValueError as exc:
            raise FunctionError(f'Invalid URL port "{args["port"]}"') from exc
        if not 0 < port < 65536:
            raise FunctionError(f'Invalid URL port "{port}"')
        url += f":{port}"
    path = str(args.get("path") or "")
    if path and not path.startswith("/"):
        path = "/" + path
    url += quote(path, safe="/:@")
    query = args.get("query")
    if query:
        if not isinstance(query, dict):
            raise FunctionError('"query" of "make_url" must be a map')
        url += "?" + urlencode(query)
    if args.get("fragment"):
        url += "#" + quote(str(args["fragment"]), safe="")
    return url


def _repeat_substitute(node: Any, mapping: dict[str, Any]) -> Any:
    if isinstance(node, str):
        for ph, val in mapping.items():
            if node == ph:
                return val
        for ph, val in mapping.items():
            if ph in node:
                node = node.replace(ph, val if isinstance(val, str) else json.dumps(val))
        return node
    if isinstance(node, list):
        return [_repeat_substitute(x, mapping) for x in node]
    if isinstance(node, dict):
        return {
            _repeat_substitute(k, mapping): _repeat_substitute(v, mapping) for k, v in node.items()
        }
    return node


class Resolver:
    """Resolves the functions of one template version against a scope."""

    def __init__(self, version: Version, scope: Scope):
        self.version = version
        self.scope = scope
        self._table: dict[str, Callable[[Any], Any]] = {
            "get_param": self._get_param,
            "get_resource": self._get_resource,
            "get_attr": self._get_attr,
            "get_file": self._get_file,
            "list_join": self._list_join,
            "str_replace": lambda a: self._str_replace(a, "str_replace"),
            "str_replace_strict": lambda a: self._str_replace(a, "str_replace_strict"),
            "str_replace_vstrict": lambda a: self._str_replace(a, "str_replace_vstrict"),
            "str_split": lambda a: _str_split(self.resolve(a)),
            "digest": lambda a: _digest(self.resolve(a)),
            "repeat": self._repeat,
            "map_merge": lambda a: _map_merge(self.resolve(a)),
            "map_replace": lambda a: _map_replace(self.resolve(a)),
            "yaql": self._yaql,
            "if": self._if,
            "filter": lambda a: _filter(self.resolve(a)),
            "make_url": lambda a: _make_url(self.resolve(a)),
            "list_concat": lambda a: _list_concat(self.resolve(a), False),
            "list_concat_unique": lambda a: _list_concat(self.resolve(a), True),
            "contains": lambda a: _contains(self.resolve(a)),
            "equals": self._equals,
            "not": self._not,
            "and": lambda a: self._andor(a, "and"),
            "or": lambda a: self._andor(a, "or"),
            "resource_facade": self._facade,
            "Fn::ResourceFacade": self._facade,
            "Ref": self._ref,
            "Fn::GetAtt": self._getatt_cfn,
            "Fn::GetAZs": lambda a: ["nova"],
            "Fn::Select": self._select,
            "Fn::Join": self._join_cfn,
            "Fn::Split": self._split_cfn,
            "Fn::Replace": self._replace_cfn,
            "Fn::Base64": lambda a: self.resolve(a),
            "Fn::MemberListToMap": self._member_list_to_map,
        }

    # ---- the walk -------------------------------------------------------------------

    def resolve(self, node: Any) -> Any:
        if isinstance(node, dict):
            if len(node) == 1:
                ((key, arg),) = node.items()
                if key in self.version.functions:
                    return self._table[key](arg)
                if key in ALL_FUNCTIONS:
                    raise FunctionError(
                        f'"{key}" is not supported by heat_template_version {self.version.date}'
                    )
            out = {}
            for k, v in node.items():
                rk = self.resolve(k) if isinstance(k, dict) else k
                rv = self.resolve(v)
                if rv is ELIDED:
                    continue
                out[rk] = rv
            return out
        if isinstance(node, list):
            return [x for x in (self.resolve(v) for v in node) if x is not ELIDED]
        return node

    def resolve_at(self, node: Any, where: str) -> Any:
        """resolve(), with errors raised as 400s naming where in the template they are."""
        try:
            value = self.resolve(node)
        except FunctionError as exc:
            raise TemplateError(f"{where}: {exc}") from exc
        return None if value is ELIDED else value

    # ---- functions ------------------------------------------------------------------

    def _get_param(self, arg: Any) -> Any:
        arg = self.resolve(arg)
        if isinstance(arg, str):
            return self.scope.param(arg)
        if isinstance(arg, list) and arg and isinstance(arg[0], str):
            return _walk_path(self.scope.param(arg[0]), arg[1:], f"parameter {arg[0]}")
        raise FunctionError('Function "get_param" must be a string or [name, path...]')

    def _get_resource(self, arg: Any) -> Any:
        arg = self.resolve(arg)
        if not isinstance(arg, str):
            raise FunctionError('Argument to "get_resource" must be a string')
        return self.scope.resource_ref(arg)

    def _get_attr(self, arg: Any) -> Any:
        arg = self.resolve(arg)
        if not isinstance(arg, list) or not arg or not isinstance(arg[0], str):
            raise FunctionError('Arguments to "get_attr" must be [resource_name, attribute, ...]')
        if len(arg) == 1:
            if not self.version.at_least("2015-10-15"):
                raise FunctionError('Arguments to "get_attr" must be [resource_name, attribute]')
            return self.scope.all_attributes(arg[0])
        if len(arg) > 2 and not self.version.at_least("2014-10-16"):
            raise FunctionError('Arguments to "get_attr" must be [resource_name, attribute]')
        if not isinstance(arg[1], str):
            raise FunctionError('Attribute name in "get_attr" must be a string')
        return self.scope.attribute(arg[0], arg[1], list(arg[2:]))

    def _get_file(self, arg: Any) -> Any:
        arg = self.resolve(arg)
        if not isinstance(arg, str):
            raise FunctionError('Argument to "get_file" must be a string')
        return self.scope.file(arg)

    def _list_join(self, arg: Any) -> str:
        arg = _as_list(self.resolve(arg), "list_join")
        if len(arg) < 2 or not isinstance(arg[0], str):
            raise FunctionError('Arguments to "list_join" must be [delimiter, list, ...]')
        lists = arg[1:]
        if len(lists) > 1 and not self.version.at_least("2015-10-15"):
            raise FunctionError('"list_join" takes exactly one list in this template version')
        items: list[str] = []
        for lst in lists:
            if lst is None:
                continue
            if not isinstance(lst, list):
                raise FunctionError('Arguments to "list_join" must be lists of strings')
            items.extend(_json_text(x, self.version) for x in lst)
        return arg[0].join(items)

    def _str_replace(self, arg: Any, fn: str) -> str:
        arg = self.resolve(arg)
        if not isinstance(arg, dict) or set(arg) != {"template", "params"}:
            raise FunctionError(f'Arguments to "{fn}" must be a map with template and params')
        return _replace_all(arg["template"], arg["params"], self.version, fn)

    def _repeat(self, arg: Any) -> list:
        if not isinstance(arg, dict) or "for_each" not in arg or "template" not in arg:
            raise FunctionError('"repeat" needs "for_each" and "template"')
        extra = set(arg) - {"for_each", "template", "permutations"}
        if extra or ("permutations" in arg and not self.version.at_least("2017-09-01")):
            raise FunctionError(f'Unknown arguments to "repeat": {sorted(extra or {"perm"})}')
        for_each = self.resolve(arg["for_each"])
        if not isinstance(for_each, dict) or not for_each:
            raise FunctionError('"for_each" of "repeat" must be a non-empty map')
        lists: dict[str, list] = {}
        for ph, values in for_each.items():
            if isinstance(values, dict) and self.version.at_least("2016-10-14"):
                values = list(values)
            if not isinstance(values, list):
                raise FunctionError(f'The values of "for_each" ({ph}) must be a list')
            lists[ph] = values
        permutations = self.resolve(arg.get("permutations", True))
        combos: list[dict] = [{}]
        if permutations:
            for ph, values in lists.items():
                combos = [{**c, ph: v} for c in combos for v in values]
        else:
            lengths = {len(v) for v in lists.values()}
            if len(lengths) != 1:
                raise FunctionError('"repeat" lists must have the same length without permutations')
            n = lengths.pop()
            combos = [{ph: values[i] for ph, values in lists.items()} for i in range(n)]
        return [self.resolve(_repeat_substitute(arg["template"], c)) for c in combos]

    def _yaql(self, arg: Any) -> Any:
        raise FunctionError('"yaql" is not supported by this cloud; use the other functions')

    def condition_value(self, expr: Any) -> bool:
        """A condition expression: a condition name, a boolean or a condition function."""
        if isinstance(expr, bool):
            return expr
        if isinstance(expr, str):
            low = expr.lower()
            if low in ("true", "false"):
                return low == "true"
            return self.scope.condition(expr)
        if isinstance(expr, dict) and len(expr) == 1:
            ((key, _),) = expr.items()
            if key in ("contains", "yaql") and key not in self.version.condition_functions:
                raise FunctionError(
                    f'"{key}" is not a condition function of heat_template_version '
                    f"{self.version.date}"
                )
            if key in ("equals", "not", "and", "or", "contains", "get_param", "yaql"):
                value = self._table[key](expr[key])
                if key == "get_param":
                    if isinstance(value, str) and value.lower() in ("true", "false"):
                        return value.lower() == "true"
                    if not isinstance(value, bool):
                        raise FunctionError(f"Invalid condition value {value!r}")
                return bool(value)
        raise FunctionError(f"Invalid condition {expr!r}")

    def _if(self, arg: Any) -> Any:
        if not isinstance(arg, list) or len(arg) not in (2, 3):
            raise FunctionError(
                'Arguments to "if" must be [condition, value_if_true, value_if_false]'
            )
        if len(arg) == 2 and not self.version.at_least("2021-04-16"):
            raise FunctionError(
                'Arguments to "if" must be [condition, value_if_true, value_if_false]'
            )
        if self.condition_value(arg[0]):
            return self.resolve(arg[1])
        return self.resolve(arg[2]) if len(arg) == 3 else ELIDED

    def _equals(self, arg: Any) -> bool:
        arg = self.resolve(arg)
        if not isinstance(arg, list) or len(arg) != 2:
            raise FunctionError('Arguments to "equals" must be [value_1, value_2]')
        return arg[0] == arg[1]

    def _not(self, arg: Any) -> bool:
        if isinstance(arg, list):
            if len(arg) != 1:
                raise FunctionError('Arguments to "not" must be a single condition')
            arg = arg[0]
        return not self.condition_value(arg)

    def _andor(self, arg: Any, fn: str) -> bool:
        if not isinstance(arg, list) or len(arg) < 2:
            raise FunctionError(f'Arguments to "{fn}" must be a list of at least 2 conditions')
        values = [self.condition_value(a) for a in arg]
        return all(values) if fn == "and" else any(values)

    def _facade(self, arg: Any) -> Any:
        raise FunctionError('"resource_facade" is only available in nested stacks')

    def _ref(self, arg: Any) -> Any:
        arg = self.resolve(arg)
        if not isinstance(arg, str):
            raise FunctionError('Argument to "Ref" must be a string')
        try:
            return self.scope.param(arg)
        except FunctionError:
            return self.scope.resource_ref(arg)

    def _getatt_cfn(self, arg: Any) -> Any:
        arg = self.resolve(arg)
        if not isinstance(arg, list) or len(arg) != 2:
            raise FunctionError('Arguments to "Fn::GetAtt" must be [resource, attribute]')
        return self.scope.attribute(arg[0], arg[1], [])

    def _select(self, arg: Any) -> Any:
        arg = _as_list(self.resolve(arg), "Fn::Select")
        if len(arg) != 2:
            raise FunctionError('Arguments to "Fn::Select" must be [index, collection]')
        index, coll = arg
        if coll is None:
            return ""
        if isinstance(coll, str):
            with contextlib.suppress(ValueError):
                coll = json.loads(coll)
        try:
            if isinstance(coll, list):
                return coll[int(index)]
            if isinstance(coll, dict):
                return coll.get(index, "")
        except (ValueError, IndexError):
            return ""
        raise FunctionError('"Fn::Select" collection must be a list or map')

    def _join_cfn(self, arg: Any) -> str:
        arg = _as_list(self.resolve(arg), "Fn::Join")
        if len(arg) != 2 or not isinstance(arg[1], list):
            raise FunctionError('Arguments to "Fn::Join" must be [delimiter, list]')
        return str(arg[0]).join("" if x is None else str(x) for x in arg[1])

    def _split_cfn(self, arg: Any) -> list:
        arg = _as_list(self.resolve(arg), "Fn::Split")
        if len(arg) != 2:
            raise FunctionError('Arguments to "Fn::Split" must be [delimiter, string]')
        return str(arg[1]).split(str(arg[0]))

    def _replace_cfn(self, arg: Any) -> str:
        arg = _as_list(self.resolve(arg), "Fn::Replace")
        if len(arg) != 2 or not isinstance(arg[0], dict):
            raise FunctionError('Arguments to "Fn::Replace" must be [{map}, string]')
        return _replace_all(arg[1], arg[0], self.version, "str_replace")

    def _member_list_to_map(self, arg: Any) -> dict:
        arg = _as_list(self.resolve(arg), "Fn::MemberListToMap")
        if len(arg) != 3:
            raise FunctionError('Arguments to "Fn::MemberListToMap" must be [key, value, list]')
        key_name, value_name, items = arg
        pairs: dict[str, dict] = {}
        for item in items:
            name, _, val = str(item).partition("=")
            idx, _, field = name.rpartition(".")
            pairs.setdefault(idx, {})[field] = val
        return {p.get(key_name): p.get(value_name) for p in pairs.values()}
