"""The filter language parsed once into a small typed tree, backend-neutral.

:func:`parse` turns a user's ``where`` dict into a :data:`Node` and raises
:class:`~imgfind.errors.InvalidFilter` for anything malformed: bad keys,
unknown operators, values of the wrong type. After parsing, a backend's
compiler (:mod:`imgfind.filters.sql`, ``filters.milvus``) only translates;
it never has to validate again.

The tree has four node types:

* :class:`And` / :class:`Or`: ``children`` (a tuple of nodes). ``And(())``
  matches every item (the empty filter ``{}``); ``Or`` always has children.
* :class:`Not`: one ``child``. Items lacking the field a negated condition
  reads DO match (``NOT`` is null-safe: "not labrador" includes items with
  no breed).
* :class:`Compare`: one condition on one field: ``op`` (one of :data:`OPS`),
  ``field`` (a :class:`Field`) and ``value``, already checked:

  ======================================  =========================================
  op                                      value
  ======================================  =========================================
  ``$eq`` ``$ne``                          str, int, float (finite), bool or None
  ``$gt`` ``$gte`` ``$lt`` ``$lte``        str, int or float (never bool or None)
  ``$in`` ``$nin``                         tuple of the ``$eq`` values (may be empty)
  ``$exists``                             bool
  ``$contains``                           str, int, float or bool (never None)
  ======================================  =========================================

Semantics every backend must keep (the contract suite checks them):
numbers compare with numbers and strings with strings, never across; JSON
booleans are not numbers; JSON null counts as absent (``$eq None`` matches
null or missing, ``$exists`` is false for null); ``$ne`` / ``$nin`` / ``Not``
match items lacking the field; ``$contains`` is membership for an array field
and case-sensitive substring for a string field.

A :class:`Field` is either an item column (``root == "column"``, ``path`` its
one-element name, ``kind`` ``"int"`` or ``"text"``) or a path into one of the
JSON objects (``root`` in ``metadata`` / ``exif`` / ``file``, ``kind ==
"json"``). Keys that name neither a column nor ``exif.`` / ``file.`` /
``metadata.`` read the user metadata: ``breed`` means ``metadata.breed``.

>>> parse({"breed": "labrador", "width": {"$gte": 100}})  # doctest: +NORMALIZE_WHITESPACE
And(children=(Compare(op='$eq', field=Field(key='breed', root='metadata', path=('breed',),
kind='json'), value='labrador'), Compare(op='$gte', field=Field(key='width', root='column',
path=('width',), kind='int'), value=100)))
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import InvalidFilter

__all__ = ["COLUMNS", "OPS", "And", "Compare", "Field", "Node", "Not", "Or", "fields",
           "parse", "parse_key"]

#: Item columns a filter can read, with their type family.
COLUMNS: dict[str, str] = {
    "id": "text", "source": "text", "format": "text", "width": "int", "height": "int",
    "sha256": "text", "taken": "text", "added": "text", "updated": "text", "stored": "int",
    "ocr": "text",
}
#: Columns whose ``$contains`` ignores case (OCR gets case wrong often; "exit" finds EXIT).
CASELESS = frozenset({"ocr"})
JSON_ROOTS = ("metadata", "exif", "file")
#: Every field operator a :class:`Compare` can carry.
OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains")
RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")
MAX_IN = 10_000

_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}(\.[A-Za-z0-9_-]{1,128}){0,15}$")
_FIELD_OPS = {*OPS, "$not"}


@dataclass(frozen=True)
class Field:
    """One filter key resolved: an item column or a path inside a JSON object."""

    key: str                                  # as the user wrote it
    root: Literal["column", "metadata", "exif", "file"]
    path: tuple[str, ...]                     # the column name, or the JSON path parts
    kind: Literal["int", "text", "json"]


@dataclass(frozen=True)
class Compare:
    op: str
    field: Field
    value: Any


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = And | Or | Not | Compare


def parse_key(key: Any) -> Field:
    """A filter key as a :class:`Field`; InvalidFilter for a bad key.

    >>> parse_key("exif.GPS.lat")
    Field(key='exif.GPS.lat', root='exif', path=('GPS', 'lat'), kind='json')
    """
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise InvalidFilter(
            f"bad filter key {key!r}: use letters, digits, '_' and '-', with dots "
            "between parts (e.g. 'breed', 'exif.Make', 'file.size')")
    parts = key.split(".")
    if len(parts) == 1 and key in COLUMNS:
        return Field(key, "column", (key,), "int" if COLUMNS[key] == "int" else "text")
    if parts[0] in JSON_ROOTS:
        if len(parts) == 1:
            raise InvalidFilter(
                f"filter key {key!r} names a whole JSON object: name a field inside it, "
                f"e.g. '{key}.name'")
        return Field(key, parts[0], tuple(parts[1:]), "json")  # type: ignore[arg-type]
    return Field(key, "metadata", tuple(parts), "json")


def parse(where: Any) -> Node:
    """Validate a filter dict and return its tree. ``None`` and ``{}`` give ``And(())``.

    Raises :class:`~imgfind.errors.InvalidFilter` naming what is wrong.

    >>> parse({"$not": {"tags": {"$contains": "dog"}}})  # doctest: +ELLIPSIS
    Not(child=Compare(op='$contains', field=Field(key='tags', ...), value='dog'))
    """
    if where is None:
        return And(())
    return _doc(where)


def fields(node: Node) -> Iterator[Field]:
    """Every field the tree reads, in the order written (repeats included)."""
    if isinstance(node, Compare):
        yield node.field
    elif isinstance(node, Not):
        yield from fields(node.child)
    else:
        for c in node.children:
            yield from fields(c)


def _join(kind: type[And] | type[Or], nodes: Sequence[Node]) -> Node:
    return nodes[0] if len(nodes) == 1 else kind(tuple(nodes))


def _doc(doc: Any) -> Node:
    if not isinstance(doc, dict):
        raise InvalidFilter(f"a filter must be an object (dict), got {type(doc).__name__}")
    parts: list[Node] = []
    for key, cond in doc.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not cond:
                raise InvalidFilter(f"{key} needs a non-empty list of filters")
            subs = tuple(_doc(c) for c in cond)
            parts.append(And(subs) if key == "$and" else Or(subs))
        elif key == "$not":
            parts.append(Not(_doc(cond)))
        elif isinstance(key, str) and key.startswith("$"):
            raise InvalidFilter(f"unknown operator {key!r} at the top of a filter; "
                                "use $and, $or, $not or a field name")
        else:
            parts.append(_field(parse_key(key), cond))
    return And(()) if not parts else _join(And, parts)


def _field(f: Field, cond: Any) -> Node:
    if not isinstance(cond, dict):
        return _op(f, "$eq", cond)
    if not cond:
        raise InvalidFilter(f"empty condition for {f.key!r}")
    parts = []
    for op, value in cond.items():
        if op not in _FIELD_OPS:
            raise InvalidFilter(
                f"unknown operator {op!r}; use one of {', '.join(sorted(_FIELD_OPS))}")
        parts.append(Not(_field(f, value)) if op == "$not" else _op(f, op, value))
    return _join(And, parts)


def _scalar(value: Any, op: str) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidFilter(f"{op} needs a finite number, got {value!r}")
        return value
    raise InvalidFilter(
        f"{op} needs a string, number, boolean or null, got {type(value).__name__}: "
        "use $in for lists and dotted keys for nested fields")


def _check_column_type(f: Field, value: Any, op: str) -> None:
    if f.kind == "int" and isinstance(value, str):
        raise InvalidFilter(f"{op} on {f.key!r} needs a number, got a string")
    if f.kind == "text" and isinstance(value, (int, float)) and not isinstance(value, bool):
        raise InvalidFilter(f"{op} on {f.key!r} needs a string, got a number")


def _eq_value(f: Field, value: Any, op: str) -> Any:
    value = _scalar(value, op)
    if isinstance(value, bool) and f.kind == "text":
        raise InvalidFilter(f"{op} on {f.key!r} needs a string, got a boolean")
    if value is not None and not isinstance(value, bool):
        _check_column_type(f, value, op)
    return value


def _op(f: Field, op: str, value: Any) -> Compare:
    if op in ("$eq", "$ne"):
        return Compare(op, f, _eq_value(f, value, op))
    if op in RANGE_OPS:
        value = _scalar(value, op)
        if value is None or isinstance(value, bool):
            raise InvalidFilter(f"{op} needs a number or a string (e.g. an ISO date), "
                                f"got {value!r}")
        _check_column_type(f, value, op)
        return Compare(op, f, value)
    if op in ("$in", "$nin"):
        if not isinstance(value, (list, tuple)):
            raise InvalidFilter(f"{op} needs a list of values, got {type(value).__name__}")
        if len(value) > MAX_IN:
            raise InvalidFilter(f"{op} takes at most {MAX_IN} values, got {len(value)}")
        return Compare(op, f, tuple(_eq_value(f, v, op) for v in value))
    if op == "$exists":
        if not isinstance(value, bool):
            raise InvalidFilter(f"$exists needs true or false, got {value!r}")
        return Compare(op, f, value)
    # "$contains" is the only operator left (the caller checked op against _FIELD_OPS).
    value = _scalar(value, op)
    if value is None:
        raise InvalidFilter("$contains needs a string or a number, got null")
    if f.kind != "json" and not isinstance(value, str):
        raise InvalidFilter(f"$contains on {f.key!r} needs a string")
    return Compare(op, f, value)
