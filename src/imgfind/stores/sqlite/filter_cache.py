"""Filters answered from memory: per-field value codes by rowid, kept in step with writes.

A filtered search used to ask SQLite for the matching rowids on every query.
This cache holds, for each field filters have used, one int32 code per rowid
(0: no value, i.e. missing or JSON null; n >= 1: the n-th distinct value) plus
an ``alive`` mask of the rows that exist. A filter tree then evaluates to a
boolean mask over rowids with numpy (``==`` for equality, a lookup table over
the distinct values for ranges and ``$in``, ``& | ~`` for logic), which is
exactly the bitmap the vector index's selector takes. No SQL runs per query.

Values are keyed by the type families SQLite compares within: numbers
(integers and reals together; JSON booleans are NOT numbers), text (JSON
arrays and objects extract as their JSON text, as in SQL), ``true`` and
``false``. That keeps the semantics of :mod:`imgfind.filters.sql` exactly;
tests/contract/test_filters.py runs every operator through both paths.

A filter repeated at the same ``seq`` reuses its answer (:meth:`FilterCache.match`):
the mask, its packed bitmap for the index's selector and its count, so a repeated
filter costs no numpy pass over every rowid either.

In step with writes: the cache remembers the ``seq`` it reflects; a query at
a later ``seq`` first reads only the rows stamped after it and the tombstones
since (the same change log the vector index catches up from), or rebuilds when
a ``clear()`` moved the floor past it. ``$contains`` (array membership and
substrings) and the ``ocr`` column (written by the OCR pass without a seq stamp)
are not cached: filters using them run in SQL as before.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...filters.tree import RANGE_OPS, And, Compare, Field, Node, Not, Or, fields

# Rows per fetch while loading a field: a few MB of Python tuples at a time, not 65k rows
# of them (that transient alone was 30 MB of peak memory at 1M items).
_CHUNK = 8192

__all__ = ["FilterCache", "Match", "cacheable"]

MAX_FIELDS = 16
#: answers remembered per seq (each about n/8 + n bytes: 1.1 MB at 1M rows)
MAX_MATCHES = 8
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b}
_TRUE, _FALSE = ("true",), ("false",)


#: Columns written by passes that do not stamp ``seq`` (the OCR pass): always in SQL.
UNSTAMPED = frozenset({"ocr"})


def cacheable(node: Node) -> bool:
    """Whether the cache can answer this filter (all but ``$contains`` and UNSTAMPED)."""
    if isinstance(node, Compare):
        return node.op != "$contains" and not (
            node.field.root == "column" and node.field.path[0] in UNSTAMPED)
    if isinstance(node, Not):
        return cacheable(node.child)
    return all(cacheable(c) for c in node.children)


def _select(f: Field) -> str:
    if f.root == "column":
        return f"{f.path[0]}, typeof({f.path[0]})"
    path = "$" + "".join(f'."{p}"' for p in f.path)
    return f"json_extract({f.root}, '{path}'), json_type({f.root}, '{path}')"


def _key(value: Any, kind: str | None) -> tuple | None:
    """A SQL value and its (json_)type as a comparison key; None for no value."""
    if kind in (None, "null") or value is None:
        return None
    if kind == "true":
        return _TRUE
    if kind == "false":
        return _FALSE
    if kind == "blob":
        return ("blob", bytes(value))
    if isinstance(value, (int, float)):
        return ("num", value)
    return ("text", value)          # text, and JSON arrays/objects as their JSON text


def _value_key(f: Field, value: Any) -> tuple | None:
    """A filter value as the key it must equal (booleans on columns are 0/1)."""
    if value is None:
        return None
    if isinstance(value, bool):
        if f.kind == "json":
            return _TRUE if value else _FALSE
        return ("num", int(value))
    return ("num", value) if isinstance(value, (int, float)) else ("text", value)


class _Column:
    """One field: a code per rowid and the distinct values behind the codes."""

    def __init__(self, field: Field):
        self.field = field
        self.codes = np.zeros(0, dtype=np.int32)
        self.keys: list[tuple] = [()]            # code 0: no value
        self.code_of: dict[tuple, int] = {}
        self._families: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}

    def code(self, key: tuple | None) -> int:
        if key is None:
            return 0
        c = self.code_of.get(key)
        if c is None:
            c = self.code_of[key] = len(self.keys)
            self.keys.append(key)
        return c

    def set(self, rowids: np.ndarray, keys: list[tuple | None]) -> None:
        self.codes[rowids] = np.fromiter((self.code(k) for k in keys), dtype=np.int32,
                                         count=len(keys))

    def lut(self, codes: Any) -> np.ndarray:
        """A bool per code, True for ``codes``: index it with ``self.codes`` for a mask."""
        out = np.zeros(len(self.keys), dtype=bool)
        out[np.asarray(codes, dtype=np.int64)] = True
        return out

    def family(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, codes) of the distinct values of one type family, for ranges."""
        cached = self._families.get(name)
        if cached is None or cached[0] != len(self.keys):
            pairs = [(k[1], c) for c, k in enumerate(self.keys) if k and k[0] == name]
            values = np.array([p[0] for p in pairs], dtype=object if name == "text" else None)
            cached = (len(self.keys), values, np.array([p[1] for p in pairs], dtype=np.int64))
            self._families[name] = cached
        return cached[1], cached[2]


@dataclass(frozen=True)
class Match:
    """A filter's answer: a bool per rowid (read-only), the same bits packed little-endian
    (faiss ``IDSelectorBitmap`` layout) and how many are set."""

    bits: np.ndarray
    packed: np.ndarray
    count: int

    @classmethod
    def of(cls, bits: np.ndarray) -> Match:
        bits.flags.writeable = False
        return cls(bits, np.packbits(bits, bitorder="little"), int(np.count_nonzero(bits)))


class FilterCache:
    """The filter fields of one store handle, at one ``seq`` (see module docstring)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.seq = -1
        self.alive = np.zeros(0, dtype=bool)
        self.columns: dict[Field, _Column] = {}
        self._matches: OrderedDict[Node, Match] = OrderedDict()

    # ------------------------------------------------------------ keeping up
    def refresh(self, con: sqlite3.Connection, seq: int, floor: int, node: Node) -> None:
        """Bring the cache to ``seq`` (inside the caller's read transaction) and make sure
        it holds every field ``node`` reads."""
        needed = list(dict.fromkeys(fields(node)))
        new = [f for f in needed if f not in self.columns]
        if self.seq < floor or self.seq > seq or len(self.columns) + len(new) > MAX_FIELDS:
            self._reset()
        wanted = [f for f in needed if f not in self.columns]
        if self.seq < 0:
            self._load_alive(con)
        elif self.seq < seq:
            self._catch_up(con, seq)
        for f in wanted:
            self._load(con, f)
        if self.seq != seq:
            self._matches.clear()
        self.seq = seq

    def _grow(self, top: int) -> None:
        if top < len(self.alive):
            return
        n = max(top + 1, int(len(self.alive) * 1.25) + 1024)
        self.alive = np.concatenate([self.alive, np.zeros(n - len(self.alive), dtype=bool)])
        for col in self.columns.values():
            col.codes = np.concatenate([col.codes,
                                        np.zeros(n - len(col.codes), dtype=np.int32)])

    def _load_alive(self, con: sqlite3.Connection) -> None:
        top = con.execute("SELECT max(rowid) FROM items").fetchone()[0] or 0
        self._grow(top)
        self.alive[:] = False
        cur = con.execute("SELECT rowid FROM items")
        while rows := cur.fetchmany(_CHUNK):
            self.alive[np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))] = True

    def _load(self, con: sqlite3.Connection, f: Field) -> None:
        col = _Column(f)
        col.codes = np.zeros(len(self.alive), dtype=np.int32)
        cur = con.execute(f"SELECT rowid, {_select(f)} FROM items")
        while rows := cur.fetchmany(_CHUNK):
            rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            col.set(rowids, [_key(r[1], r[2]) for r in rows])
        self.columns[f] = col

    def _catch_up(self, con: sqlite3.Connection, seq: int) -> None:
        gone = [r[0] for r in con.execute(
            "SELECT rowid FROM tombstones WHERE seq > ? AND seq <= ?", (self.seq, seq))]
        if gone:
            dead = np.array(gone, dtype=np.int64)
            dead = dead[dead < len(self.alive)]
            self.alive[dead] = False
            for col in self.columns.values():
                col.codes[dead] = 0
        cols = list(self.columns.values())
        select = ", ".join(["rowid", *(_select(c.field) for c in cols)])
        cur = con.execute(f"SELECT {select} FROM items WHERE seq > ? AND seq <= ?",
                          (self.seq, seq))
        while rows := cur.fetchmany(_CHUNK):
            rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            self._grow(int(rowids.max()))
            self.alive[rowids] = True
            for i, col in enumerate(cols):
                col.set(rowids, [_key(r[1 + 2 * i], r[2 + 2 * i]) for r in rows])

    # ------------------------------------------------------------- answering
    def match(self, node: Node) -> Match:
        """:meth:`mask` with its bitmap and count, remembered until ``seq`` moves."""
        m = self._matches.get(node)
        if m is None:
            m = self._matches[node] = Match.of(self.mask(node))
            while len(self._matches) > MAX_MATCHES:
                self._matches.popitem(last=False)
        else:
            self._matches.move_to_end(node)
        return m

    def mask(self, node: Node) -> np.ndarray:
        """A bool per rowid: the live rows ``node`` matches (after :meth:`refresh`)."""
        if isinstance(node, And):
            out = self.alive.copy()
            for c in node.children:
                out &= self.mask(c)
            return out
        if isinstance(node, Or):
            out = np.zeros_like(self.alive)
            for c in node.children:
                out |= self.mask(c)
            return out
        if isinstance(node, Not):
            return self.alive & ~self.mask(node.child)
        return self._compare(node)

    def _compare(self, node: Compare) -> np.ndarray:
        col = self.columns[node.field]
        op, f, value = node.op, node.field, node.value
        if op in ("$eq", "$ne", "$in", "$nin"):
            values = value if op in ("$in", "$nin") else (value,)
            want = {_value_key(f, v) for v in values}
            codes = [col.code_of[k] for k in want if k is not None and k in col.code_of]
            if None in want:
                codes.append(0)                     # missing or null
            if len(codes) == 1:
                m = col.codes == codes[0]
            else:
                m = col.lut(codes)[col.codes]
            m &= self.alive
            return m if op in ("$eq", "$in") else self.alive & ~m
        if op == "$exists":
            has = self.alive & (col.codes != 0)
            return has if value else self.alive & ~has
        if op in RANGE_OPS:
            values, value_codes = col.family("text" if isinstance(value, str) else "num")
            ok = value_codes[np.asarray(_OPS[op](values, value), dtype=bool)] \
                if len(values) else value_codes
            return col.lut(ok)[col.codes] & self.alive
        raise ValueError(f"the filter cache cannot answer {op}")     # see cacheable()
