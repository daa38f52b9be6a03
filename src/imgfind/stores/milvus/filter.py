"""imgfind filters (see :mod:`imgfind.filters`) as Milvus boolean expressions.

Keys become field references (``width``, ``metadata["breed"]``,
``exif["GPS"]["Lat"]``); values become literals written by this module
(strings JSON-quoted, numbers and booleans spelled out), never pasted text.
Every comparison is guarded by ``F is not null`` so that it is true or false,
never unknown; ``$not`` / ``$ne`` / ``$nin`` then match items that lack the
field, as in the SQLite store.

Differences from SQLite that Milvus imposes (documented in docs/scale-out.md):
JSON ``true``/``false`` compare equal to ``1``/``0``; ``$contains`` on a JSON
field with ``%`` or ``_`` in the value raises :class:`UnsupportedFilter`
(Milvus' LIKE cannot escape them inside JSON).

>>> compile_milvus({"breed": "lab"})
'(metadata["breed"] is not null and metadata["breed"] == "lab")'
>>> compile_milvus({"width": {"$gte": 100}, "format": {"$exists": False}})
'(width is not null and width >= 100) and format is null'
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ...errors import InvalidFilter, UnsupportedFilter

__all__ = ["BACKEND", "compile_milvus"]

BACKEND = "milvus"
COLUMNS: dict[str, str] = {
    "id": "text", "source": "text", "format": "text", "width": "int", "height": "int",
    "sha256": "text", "taken": "text", "added": "text", "updated": "text", "stored": "int",
}
_NOT_NULL = {"id", "source", "added", "updated", "stored"}
_JSON_COLUMNS = ("metadata", "exif", "file")
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}(\.[A-Za-z0-9_-]{1,128}){0,15}$")
_FIELD_OPS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists",
              "$contains", "$not"}
_CMP = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_MAX_IN = 10_000
TRUE, FALSE = "__true__", "__false__"


class _Field:
    def __init__(self, key: Any):
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise InvalidFilter(
                f"bad filter key {key!r}: use letters, digits, '_' and '-', with dots "
                "between parts (e.g. 'breed', 'exif.Make', 'file.size')")
        parts = key.split(".")
        if len(parts) == 1 and key in COLUMNS:
            self.key, self.kind, self.expr = key, COLUMNS[key], key
            self.nullable = key not in _NOT_NULL
            return
        if parts[0] in _JSON_COLUMNS:
            if len(parts) == 1:
                raise InvalidFilter(f"filter key {key!r} names a whole JSON object: name a "
                                    f"field inside it, e.g. '{key}.name'")
            column, parts = parts[0], parts[1:]
        else:
            column = "metadata"
        self.key, self.kind, self.nullable = key, "json", True
        self.expr = column + "".join(f"[{json.dumps(p)}]" for p in parts)

    def guard(self, test: str) -> str:
        return f"({self.expr} is not null and {test})" if self.nullable else test


def _lit(value: Any, op: str) -> str:
    """A Milvus literal for a JSON scalar, escaped by construction."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidFilter(f"{op} needs a finite number, got {value!r}")
        return repr(value)
    if isinstance(value, str):
        if any(ord(c) < 0x20 for c in value):
            raise UnsupportedFilter(f"{op}: the {BACKEND} store cannot match strings holding "
                                    "control characters", op, BACKEND)
        return json.dumps(value, ensure_ascii=False)
    raise InvalidFilter(f"{op} needs a string, number, boolean or null, got "
                        f"{type(value).__name__}: use $in for lists and dotted keys for "
                        "nested fields")


def _and(parts: list[str]) -> str:
    if FALSE in parts:
        return FALSE
    parts = [p for p in parts if p != TRUE]
    if not parts:
        return TRUE
    return parts[0] if len(parts) == 1 else " and ".join(f"({p})" if " or " in p else p
                                                          for p in parts)


def _or(parts: list[str]) -> str:
    if TRUE in parts:
        return TRUE
    parts = [p for p in parts if p != FALSE]
    if not parts:
        return FALSE
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


def _not(expr: str) -> str:
    if expr in (TRUE, FALSE):
        return FALSE if expr == TRUE else TRUE
    return f"not ({expr})"


def compile_milvus(where: dict | None) -> str:
    """A filter dict as a Milvus expression ("" matches everything).

    Raises :class:`InvalidFilter` for a bad filter and :class:`UnsupportedFilter`
    for one Milvus cannot express.
    """
    if where is None:
        return ""
    expr = _doc(where)
    if expr == TRUE:
        return ""
    if expr == FALSE:
        return 'id == "" and id != ""'
    return expr


def _doc(doc: Any) -> str:
    if not isinstance(doc, dict):
        raise InvalidFilter(f"a filter must be an object (dict), got {type(doc).__name__}")
    parts = []
    for key, cond in doc.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not cond:
                raise InvalidFilter(f"{key} needs a non-empty list of filters")
            subs = [_doc(c) for c in cond]
            parts.append(_and(subs) if key == "$and" else _or(subs))
        elif key == "$not":
            parts.append(_not(_doc(cond)))
        elif isinstance(key, str) and key.startswith("$"):
            raise InvalidFilter(f"unknown operator {key!r} at the top of a filter; "
                                "use $and, $or, $not or a field name")
        else:
            parts.append(_field(_Field(key), cond))
    return _and(parts)


def _field(f: _Field, cond: Any) -> str:
    if isinstance(cond, dict):
        if not cond:
            raise InvalidFilter(f"empty condition for {f.key!r}")
        parts = []
        for op, value in cond.items():
            if op not in _FIELD_OPS:
                raise InvalidFilter(
                    f"unknown operator {op!r}; use one of {', '.join(sorted(_FIELD_OPS))}")
            parts.append(_op(f, op, value))
        return _and(parts)
    return _op(f, "$eq", cond)


def _check_type(f: _Field, value: Any, op: str) -> None:
    if f.kind == "int" and isinstance(value, str):
        raise InvalidFilter(f"{op} on {f.key!r} needs a number, got a string")
    if f.kind == "text" and isinstance(value, (int, float)) and not isinstance(value, bool):
        raise InvalidFilter(f"{op} on {f.key!r} needs a string, got a number")
    if f.kind == "text" and isinstance(value, bool):
        raise InvalidFilter(f"{op} on {f.key!r} needs a string, got a boolean")


def _eq(f: _Field, value: Any, op: str = "$eq") -> str:
    if value is None:
        return f"{f.expr} is null" if f.nullable else FALSE
    _check_type(f, value, op)
    if f.kind == "int" and isinstance(value, bool):
        value = int(value)
    return f.guard(f"{f.expr} == {_lit(value, op)}")


def _scalar(value: Any, op: str) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    _lit(value, op)   # raises the typed error
    return value


def _op(f: _Field, op: str, value: Any) -> str:
    if op == "$eq":
        return _eq(f, _scalar(value, op))
    if op == "$ne":
        return _not(_eq(f, _scalar(value, op), op))
    if op in _CMP:
        value = _scalar(value, op)
        if value is None or isinstance(value, bool):
            raise InvalidFilter(f"{op} needs a number or a string (e.g. an ISO date), "
                                f"got {value!r}")
        _check_type(f, value, op)
        return f.guard(f"{f.expr} {_CMP[op]} {_lit(value, op)}")
    if op in ("$in", "$nin"):
        if not isinstance(value, (list, tuple)):
            raise InvalidFilter(f"{op} needs a list of values, got {type(value).__name__}")
        if len(value) > _MAX_IN:
            raise InvalidFilter(f"{op} takes at most {_MAX_IN} values, got {len(value)}")
        values = [_scalar(v, op) for v in value]
        if f.kind != "json":
            plain = [v for v in values if v is not None]
            for v in plain:
                _check_type(f, v, op)
            terms = [_eq(f, v, op) for v in values if v is None]
            if plain:
                lits = ", ".join(_lit(int(v) if isinstance(v, bool) else v, op)
                                 for v in plain)
                terms.append(f.guard(f"{f.expr} in [{lits}]"))
        else:
            terms = [_eq(f, v, op) for v in values]
        expr = _or(terms)
        return expr if op == "$in" else _not(expr)
    if op == "$exists":
        if not isinstance(value, bool):
            raise InvalidFilter(f"$exists needs true or false, got {value!r}")
        if not f.nullable:
            return TRUE if value else FALSE
        return f"{f.expr} is not null" if value else f"{f.expr} is null"
    if op == "$contains":
        value = _scalar(value, op)
        if value is None:
            raise InvalidFilter("$contains needs a string or a number, got null")
        if f.kind != "json":
            if not isinstance(value, str):
                raise InvalidFilter(f"$contains on {f.key!r} needs a string")
            pattern = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return f.guard(f"{f.expr} like {_lit('%' + pattern + '%', op)}")
        if not isinstance(value, str):
            return f.guard(f"json_contains({f.expr}, {_lit(value, op)})")
        if any(c in value for c in "%_\\"):
            raise UnsupportedFilter(
                f"$contains on {f.key!r} with '%', '_' or '\\' in the value: the {BACKEND} "
                "store cannot escape them inside JSON fields; use $eq or $in", op, BACKEND)
        return f.guard(f"(json_contains({f.expr}, {_lit(value, op)}) or "
                       f"{f.expr} like {_lit('%' + value + '%', op)})")
    # "$not": the only operator left.
    return _not(_field(f, value))
