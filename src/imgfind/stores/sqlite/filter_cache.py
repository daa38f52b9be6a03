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

Loading a field the first time reads every row, so it is done in bulk: for each range
of 16,384 rowids SQLite writes the values as one text (a JSON value as its JSON text, a
column value as a literal), Python splits it and maps each distinct text to a code, and
decodes only texts it has not seen (most without a parser; the rest through SQLite's own
``json_each``, so a value's key is exactly what ``json_extract`` gives). A field with about
one value per row is decoded row by row from that text. No Python tuple per row: at 1M
rows a field of few values loads in 0.6-0.7 s of CPU, not 1.5-1.8 s (SQLite's '->' alone
takes ~0.35 s of it), and a unique value per row in 1.4-1.6 s, not 1.8-2.0 s.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from ...filters.tree import RANGE_OPS, And, Compare, Field, Node, Not, Or, fields

# Rows per fetch when rows are read one by one (catch-up, fallbacks): a few MB of Python
# tuples at a time, not 65k rows of them (that transient alone was 30 MB of peak at 1M).
_CHUNK = 8192
# Rowids per query when loading: one text of at most this many values (~0.1 MB for short
# values) and its split list (~1 MB), freed before the next range. 65,536 measured 0-7%
# faster at 1M rows, at four times that transient.
_STEP = 16384
# Most distinct texts remembered across ranges; past it a range maps only its own texts
# (a unique id per row must not keep a second dict of every value beside the codes').
_KNOWN = 2 * _STEP
# Separates values in a range's text: JSON text never holds a raw control character, and a
# column value holding it is caught by the part count (that range is read row by row).
_SEP = "\x1f"
# '->' (a value as its JSON text) came in SQLite 3.38.
_ARROW = sqlite3.sqlite_version_info >= (3, 38, 0)

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


def _as_text(f: Field) -> tuple[str, tuple[str, ...]] | None:
    """SQL giving one row's value as a text that tells every key apart, and the texts that
    mean no value; None where this SQLite cannot (then rows are read one by one).

    JSON values come as their JSON text ('->'), so 1 and true and "1" differ; columns as
    ``t`` + text, or else as SQL literals (``quote``: exact for reals too), so 1 and '1'
    differ. Equal keys may have several texts (``5`` and ``5.0``): each decodes to the same
    key and code.
    """
    if f.root == "column":
        c = f.path[0]        # quote() would cut a text at a NUL character; '||' does not
        return f"CASE typeof({c}) WHEN 'text' THEN 't' || {c} ELSE quote({c}) END", ("NULL",)
    if not _ARROW:
        return None
    path = "$" + "".join(f'."{p}"' for p in f.path)
    return f"ifnull({f.root} -> '{path}', '')", ("", "null")


def _decode(con: sqlite3.Connection, f: Field, texts: list[str],
            none: tuple[str, ...]) -> list[tuple | None]:
    """The keys of texts from :func:`_as_text` (None for the ``none`` texts)."""
    if f.root == "column":
        return [None if t == "NULL" else ("text", t[1:]) if t[0] == "t" else _literal(t)
                for t in texts]
    # a string without escapes (the commonest value) is its text between the quotes
    out: list[Any] = [("text", t[1:-1]) if t[:1] == '"' and "\\" not in t else _json_fast(t)
                      for t in texts]
    slow = [i for i, k in enumerate(out) if k is None and texts[i] not in none]
    if slow:
        # SQLite itself turns the other JSON texts into values, as json_extract would.
        batch = "[" + ",".join([texts[i] for i in slow]) + "]"
        for i, value, kind in con.execute("SELECT key, value, type FROM json_each(?)",
                                          (batch,)):
            out[slow[i]] = _key(value, kind)
    return out


def _json_fast(t: str) -> tuple | None:
    """The key of a JSON text that needs no JSON parser (a string without escapes, a short
    integer, true, false); None for the rest and for no value ('' or null)."""
    if not t:
        return None
    if t[0] == '"':
        return ("text", t[1:-1]) if "\\" not in t else None
    if t == "true":
        return _TRUE
    if t == "false":
        return _FALSE
    # 18 digits always fit an int64, which json_extract returns for a JSON integer
    if len(t) <= 18 and t.isascii() and t.lstrip("-").isdigit():
        return ("num", int(t))
    return None


def _literal(text: str) -> tuple:
    """The key of a non-text column value as ``quote()`` writes it (blob, integer, real)."""
    if text[:2] == "X'":
        return ("blob", bytes.fromhex(text[2:-1]))
    try:
        return ("num", int(text))
    except ValueError:
        return ("num", float(text))     # quote() writes reals so that they read back exact


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
        self.code_of: dict[tuple | None, int] = {None: 0}     # in code order, as keys
        self._families: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}

    def code(self, key: tuple | None) -> int:
        if key is None:
            return 0
        c = self.code_of.get(key)
        if c is None:
            c = self.code_of[key] = len(self.keys)
            self.keys.append(key)
        return c

    def codes_of(self, keys: list[tuple | None]) -> list[int]:
        """:meth:`code` of many keys: one dict operation per key (a load's hot loop)."""
        code_of = self.code_of
        start = len(code_of)
        add = code_of.setdefault
        out = [add(k, len(code_of)) for k in keys]      # a new key's code: its position
        new: list[Any] = list(islice(reversed(code_of), len(code_of) - start))
        self.keys.extend(reversed(new))
        return out

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
        elif self.columns and 0 <= self.seq < seq and 2 * con.execute(
                "SELECT count(*) FROM items WHERE seq > ? AND seq <= ?", (self.seq, seq)
                ).fetchone()[0] > np.count_nonzero(self.alive):
            # Most rows changed (a bulk import or edit between two queries): loading every
            # field afresh in bulk is faster than catching up row by row.
            needed = [*self.columns, *new]
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
        for lo in range(0, top + 1, _STEP):
            # one text of rowids per range, parsed by numpy: no Python object per row
            text = con.execute("SELECT group_concat(rowid) FROM items WHERE rowid >= ? AND "
                               "rowid < ?", (lo, lo + _STEP)).fetchone()[0]
            if text:
                self.alive[np.fromstring(text, dtype=np.int64, sep=",")] = True

    def _load(self, con: sqlite3.Connection, f: Field) -> None:
        """Load one field, ``_STEP`` rowids at a time (rows are all in ``alive`` by now).

        SQLite writes each range's values as one text, a row's value as exact text
        (:func:`_as_text`), and Python splits it and maps each distinct text to its code;
        only a text not seen yet is decoded into a key. The rows come in rowid order, so
        the i-th text belongs to the i-th live rowid of the range; a range whose count or
        rowid sum disagrees with ``alive``, or whose values hold the separator, is read
        row by row instead.
        """
        col = _Column(f)
        col.codes = np.zeros(len(self.alive), dtype=np.int32)
        as_text = _as_text(f)
        if as_text is None:                         # SQLite before 3.38: no '->'
            self._load_rows(con, col, 0, len(self.alive))
        else:
            expr, none = as_text
            known: dict[str, int] = dict.fromkeys(none, 0)     # a row's text -> its code
            many = False            # the last range had mostly distinct values
            sql = (f"SELECT group_concat(v, ?), count(*), sum(rowid) FROM (SELECT {expr} AS v,"
                   " rowid FROM items WHERE rowid >= ? AND rowid < ? ORDER BY rowid)")
            for lo in range(0, len(self.alive), _STEP):
                hi = min(lo + _STEP, len(self.alive))
                rowids = lo + np.flatnonzero(self.alive[lo:hi])
                joined, n, total = con.execute(sql, (_SEP, lo, hi)).fetchone()
                parts = joined.split(_SEP) if joined is not None else []
                if n != len(rowids) or len(parts) != n or (n and total != int(rowids.sum())):
                    self._load_rows(con, col, lo, hi)
                    continue
                if not n:
                    continue
                if not many:
                    distinct = dict.fromkeys(parts)
                    many = len(distinct) > n // 2
                codes: Iterable[int]
                if many:
                    # mostly one value per row: decode every row, no text -> code dict
                    before = len(col.keys)
                    codes = col.codes_of(_decode(con, f, parts, none))
                    many = len(col.keys) - before > n // 8
                else:
                    if len(known) + len(distinct) > _KNOWN:
                        known = dict.fromkeys(none, 0)
                    new = [t for t in distinct if t not in known]
                    if new:
                        known.update(zip(new, col.codes_of(_decode(con, f, new, none))))
                    codes = map(known.__getitem__, parts)
                col.codes[rowids] = np.fromiter(codes, dtype=np.int32, count=n)
        self.columns[f] = col

    def _load_rows(self, con: sqlite3.Connection, col: _Column, lo: int, hi: int) -> None:
        """Load rowids ``lo <= rowid < hi`` of one field a row at a time."""
        cur = con.execute(f"SELECT rowid, {_select(col.field)} FROM items WHERE rowid >= ? "
                          "AND rowid < ?", (lo, hi))
        while rows := cur.fetchmany(_CHUNK):
            rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            col.set(rowids, [_key(r[1], r[2]) for r in rows])

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
