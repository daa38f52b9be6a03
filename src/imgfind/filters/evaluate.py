"""The filter tree evaluated in Python on one item's fields: the semantics, executable.

A store whose engine cannot express a condition exactly (Milvus Lite compares
JSON ``true`` equal to ``1`` and cannot escape LIKE wildcards in JSON) asks its
engine for a superset and keeps the rows :func:`matches` accepts. The rules are
those of :mod:`imgfind.filters.tree`: numbers and strings never compare across,
JSON booleans are not numbers, JSON null counts as absent, negations match items
lacking the field, ``$contains`` is membership in an array or a substring of a
string.

>>> from imgfind.filters.tree import parse
>>> row = {"metadata": {"vip": True, "tags": ["dog"]}, "width": 640}
>>> matches(parse({"vip": 1}), row), matches(parse({"vip": True, "width": {"$gt": 500}}), row)
(False, True)
>>> matches(parse({"tags": {"$contains": "dog"}, "breed": {"$ne": "pug"}}), row)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .tree import Compare, Field, Node, Not, Or

__all__ = ["matches"]

_MISSING = object()


def _get(row: Mapping[str, Any], f: Field) -> Any:
    if f.root == "column":
        col = row.get(f.path[0], _MISSING)
        return int(col) if isinstance(col, bool) else col
    value: Any = row.get(f.root) or {}
    for part in f.path:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _eq(x: Any, v: Any) -> bool:
    if v is None:
        return x is _MISSING or x is None
    if isinstance(v, bool):
        return isinstance(x, bool) and x == v
    if _num(v):
        return _num(x) and x == v
    return isinstance(x, str) and x == v


def _cmp(x: Any, op: str, v: Any) -> bool:
    if isinstance(v, str):
        ok = isinstance(x, str)
    else:
        ok = _num(x)
    if not ok:
        return False
    return {"$gt": x > v, "$gte": x >= v, "$lt": x < v, "$lte": x <= v}[op]


def _contains(x: Any, v: Any) -> bool:
    if isinstance(x, list):
        if isinstance(v, bool):
            return any(isinstance(e, bool) and e == v for e in x)
        if _num(v):
            return any(_num(e) and e == v for e in x)
        return any(isinstance(e, str) and e == v for e in x)
    return isinstance(x, str) and isinstance(v, str) and v in x


def _compare(node: Compare, row: Mapping[str, Any]) -> bool:
    x = _get(row, node.field)
    op, v = node.op, node.value
    column_bool = node.field.root == "column" and isinstance(v, bool)
    if op == "$eq":
        return _eq(x, int(v) if column_bool else v)
    if op == "$ne":
        return not _eq(x, int(v) if column_bool else v)
    if op in ("$in", "$nin"):
        hit = any(_eq(x, int(e) if node.field.root == "column" and isinstance(e, bool) else e)
                  for e in v)
        return hit if op == "$in" else not hit
    if op == "$exists":
        return (x is not _MISSING and x is not None) == v
    if op == "$contains":
        return _contains(x, v)
    return _cmp(x, op, v)


def matches(node: Node, row: Mapping[str, Any]) -> bool:
    """Whether one item (a mapping with the item's columns and its ``metadata``,
    ``exif`` and ``file`` objects) satisfies the filter tree."""
    if isinstance(node, Compare):
        return _compare(node, row)
    if isinstance(node, Not):
        return not matches(node.child, row)
    if isinstance(node, Or):
        return any(matches(c, row) for c in node.children)
    return all(matches(c, row) for c in node.children)
