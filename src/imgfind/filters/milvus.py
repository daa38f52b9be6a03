"""The filter tree (:mod:`.tree`) as a Milvus boolean expression.

Keys become field references (``width``, ``metadata["breed"]``,
``exif["GPS"]["Lat"]``); values become literals written here (strings
JSON-quoted, numbers and booleans spelled out), never pasted text. Every
comparison on a nullable field is guarded by ``F is not null`` so it is true
or false, never unknown, and ``not (...)`` then matches items that lack the
field, as the tree's semantics require.

Where Milvus Lite cannot say exactly what imgfind means, the expression is a
*superset* and the plan is marked inexact; the store then keeps only the rows
:func:`imgfind.filters.evaluate.matches` accepts (documented in
docs/scale-out.md):

* Milvus Lite compares JSON ``true``/``false`` equal to ``1``/``0``: a JSON
  condition on a boolean, or on a number range holding 0 or 1, is inexact;
* Milvus Lite cannot escape LIKE wildcards inside JSON: ``$contains`` with
  ``%``, ``_`` or ``\\`` in the value is inexact;
* string literals have no escape for control characters: a condition on such
  a string is left entirely to the Python check.

Inexact conditions are loosened by polarity: under an even number of negations
a condition becomes its looser form, under an odd number it becomes "false",
so the whole expression always selects a superset of the true matches.

>>> compile_milvus({"breed": "lab"})
'(metadata["breed"] is not null and metadata["breed"] == "lab")'
>>> compile_milvus({"width": {"$gte": 100}, "format": {"$exists": False}})
'(width is not null and width >= 100) and format is null'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import UnsupportedFilter
from .compiler import Compiler
from .tree import And, Compare, Field, Node, Not, Or, parse

__all__ = ["MilvusCompiler", "MilvusPlan", "compile_milvus", "plan_milvus"]

TRUE, FALSE = "__true__", "__false__"
_NEVER = 'id == "" and id != ""'
_NOT_NULL = {"id", "source", "added", "updated", "stored"}   # non-nullable Milvus fields
_CMP = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


@dataclass(frozen=True)
class MilvusPlan:
    """``expr`` for Milvus ("" = everything); when not ``exact`` it selects a superset
    and rows must also pass ``matches(node, row)``."""

    expr: str
    node: Node
    exact: bool


def plan_milvus(where: dict | Node | None) -> MilvusPlan:
    """Parse (unless already a tree) and compile a filter for Milvus.

    Raises :class:`~imgfind.errors.InvalidFilter` for a bad filter and
    :class:`~imgfind.errors.UnsupportedFilter` for the ``ocr`` key (no OCR text in this
    store); every operator compiles (exactly, or as a superset the store narrows).
    """
    node = where if isinstance(where, (And, Or, Not, Compare)) else parse(where)
    c = MilvusCompiler()
    expr = c.compile(node)
    return MilvusPlan("" if expr == TRUE else _NEVER if expr == FALSE else expr, node,
                      c.exact)


def compile_milvus(where: dict | Node | None) -> str:
    """The Milvus expression of a filter ("" matches everything); see :func:`plan_milvus`."""
    return plan_milvus(where).expr


def _boolish(v: Any) -> bool:
    """A value Milvus Lite confuses across JSON booleans and numbers."""
    return isinstance(v, bool) or (isinstance(v, (int, float)) and v in (0, 1))


def _range_has_bool(op: str, v: Any) -> bool:
    if isinstance(v, str):
        return False
    lo = {"$gt": v < 1, "$gte": v <= 1}
    hi = {"$lt": v > 0, "$lte": v >= 0}
    return lo.get(op, False) or hi.get(op, False)


def _ref(f: Field) -> str:
    if f.root == "column":
        return f.path[0]
    return f.root + "".join(f"[{json.dumps(p)}]" for p in f.path)


def _nullable(f: Field) -> bool:
    return f.root != "column" or f.path[0] not in _NOT_NULL


def _guard(f: Field, test: str) -> str:
    return f"({_ref(f)} is not null and {test})" if _nullable(f) else test


def _and(parts: list[str]) -> str:
    if FALSE in parts:
        return FALSE
    parts = [p for p in parts if p != TRUE]
    if not parts:
        return TRUE
    return parts[0] if len(parts) == 1 else " and ".join(
        f"({p})" if " or " in p and not p.startswith("(") else p for p in parts)


def _or(parts: list[str]) -> str:
    if TRUE in parts:
        return TRUE
    parts = [p for p in parts if p != FALSE]
    if not parts:
        return FALSE
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


def _not(expr: str) -> str:
    return FALSE if expr == TRUE else TRUE if expr == FALSE else f"not ({expr})"


class MilvusCompiler(Compiler[str]):
    backend = "milvus"

    def __init__(self) -> None:
        self.exact = True
        self._neg = False      # inside an odd number of negations

    def _leaf(self, loose: str, inexact: bool, negated: bool = False) -> str:
        """A condition, or for an inexact one its superset-keeping stand-in."""
        if not inexact:
            return loose
        self.exact = False
        return FALSE if self._neg != negated else loose

    def visit_and(self, node: And) -> str:
        return _and([self.compile(c) for c in node.children])

    def visit_or(self, node: Or) -> str:
        return _or([self.compile(c) for c in node.children])

    def visit_not(self, node: Not) -> str:
        self._neg = not self._neg
        try:
            return _not(self.compile(node.child))
        finally:
            self._neg = not self._neg

    def visit_compare(self, node: Compare) -> str:
        f, op, v = node.field, node.op, node.value
        if f.root == "column" and f.path[0] == "ocr":
            raise UnsupportedFilter(
                f"the {self.backend} store keeps no OCR text, so it cannot filter on 'ocr'; "
                "use a collection in the sqlite store for OCR", op, self.backend)
        if any(isinstance(x, str) and any(ord(c) < 0x20 for c in x)
               for x in (v if isinstance(v, tuple) else (v,))):
            # No portable escape for control characters in Milvus string literals: leave
            # this condition to the Python check.
            negated = op in ("$ne", "$nin")
            expr = self._leaf(TRUE, True, negated=negated)
            return _not(expr) if negated else expr
        json_ = f.kind == "json"
        if op in ("$eq", "$ne"):
            expr = self._leaf(self._eq(f, v), json_ and _boolish(v), negated=op == "$ne")
            return expr if op == "$eq" else _not(expr)
        if op in _CMP:
            return self._leaf(_guard(f, f"{_ref(f)} {_CMP[op]} {self._lit(v, op)}"),
                              json_ and _range_has_bool(op, v))
        if op in ("$in", "$nin"):
            expr = self._leaf(self._in(f, v), json_ and any(_boolish(x) for x in v),
                              negated=op == "$nin")
            return expr if op == "$in" else _not(expr)
        if op == "$exists":
            if not _nullable(f):
                return TRUE if v else FALSE
            return f"{_ref(f)} is not null" if v else f"{_ref(f)} is null"
        return self._contains(f, v)

    def _lit(self, value: Any, op: str) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return repr(value)
        return json.dumps(value, ensure_ascii=False)

    def _eq(self, f: Field, value: Any) -> str:
        if value is None:
            return f"{_ref(f)} is null" if _nullable(f) else FALSE
        if f.kind == "int" and isinstance(value, bool):
            value = int(value)
        return _guard(f, f"{_ref(f)} == {self._lit(value, '$eq')}")

    def _in(self, f: Field, values: tuple[Any, ...]) -> str:
        if f.kind == "json":
            return _or([self._eq(f, v) for v in values])
        plain = [int(v) if isinstance(v, bool) else v for v in values if v is not None]
        terms = [self._eq(f, None)] if None in values else []
        if plain:
            lits = ", ".join(self._lit(v, "$in") for v in plain)
            terms.append(_guard(f, f"{_ref(f)} in [{lits}]"))
        return _or(terms)

    def _contains(self, f: Field, value: Any) -> str:
        ref = _ref(f)
        if f.kind != "json":
            pattern = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return _guard(f, f"{ref} like {self._lit('%' + pattern + '%', '$contains')}")
        if not isinstance(value, str):
            return self._leaf(
                _guard(f, f"json_contains({ref}, {self._lit(value, '$contains')})"),
                _boolish(value))
        lit = self._lit(value, "$contains")
        # Wildcards stay wildcards (a superset); a backslash becomes '_' (any character).
        like = self._lit("%" + value.replace("\\", "_") + "%", "$contains")
        return self._leaf(_guard(f, f"(json_contains({ref}, {lit}) or {ref} like {like})"),
                          any(c in value for c in "%_\\"))
