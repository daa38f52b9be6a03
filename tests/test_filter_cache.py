"""The filter cache's field loads (stores/sqlite/filter_cache.py) against SQLite itself.

A field loads a range of rowids at a time, the range's values as one text (the fast
path), or row by row (catch-up, a range that cannot take the fast path, SQLite before
3.38). Whatever the path, every mask must be the rows SQLite's own WHERE selects, for
every operator and type family, and every row must get the key the row-by-row path
gives it. Ranges are made small here, so that a few hundred rows cross many of them.
"""

from __future__ import annotations

import math
import shutil
import sqlite3
from typing import Any

import numpy as np
import pytest

from imgfind.filters.sql import SQLCompiler
from imgfind.filters.tree import Node, parse, parse_key
from imgfind.stores import CollectionInfo, Record, open_backend
from imgfind.stores.sqlite import DB_FILE
from imgfind.stores.sqlite import filter_cache as fc_module
from imgfind.stores.sqlite.filter_cache import FilterCache

from .contract.helpers import DIM, clustered

N = 700
MISSING = object()
# Every type family, numbers equal across int and real, texts that look like other things.
MIXED: list[Any] = [0, 1, -1, 5, 5.0, 2.5, -0.0, 0.1, 1e300, 2**53 + 1, 2**62, -2**63, 10**20,
                    2**64 + 1, 1 / 3, 1e-310, "5", "", "a", 'quo"te', "back\\slash", "tab\t",
                    "uni é 日本", "\x1f", "null",
                    "true", True, False, None, MISSING, [1, "x"], {"a": {"b": 2}}, [], {}]


def _u(i: int) -> Any:
    """Unique per row, except rows 300-599 (three values): the load changes mode twice."""
    if i % 10 == 0:
        return MISSING
    if 300 <= i < 600:
        return i % 3
    return f"u{i}" if i % 3 else (i if i % 2 else i + 0.5)


def _metadata(i: int) -> dict[str, Any]:
    m: dict[str, Any] = {"m": MIXED[i % len(MIXED)], "u": _u(i),
                         # each value twice: few per range, more than remembered in all
                         "pair": i // 2 if (i // 2) % 2 else f"p{i // 2}",
                         "deep": {"x": MIXED[(i * 7) % len(MIXED)]}, "d-k_2": i % 4}
    return {k: v for k, v in m.items() if v is not MISSING and v != {"x": MISSING}}


FORMATS = ["JPEG", "PNG", None, "a\x1fb", "nul\x00l", "", "X'00'"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """A store of N items with mixed values (and a few written by SQL: values the API does
    not write, as an older or foreign writer might have), some rows deleted."""
    home = tmp_path_factory.mktemp("fc")
    backend = open_backend(home)
    store = backend.create(CollectionInfo(name="c", model="toy", dim=DIM))
    x = clustered(N)
    store.put([Record(id=f"r{i}", source=f"/p/{i}.jpg", vector=x[i], metadata=_metadata(i),
                      width=None if i % 9 == 0 else i % 7) for i in range(N)])
    store.delete([f"r{i}" for i in range(0, N, 13)])
    store.close()
    backend.close()
    path = home / "collections" / "c" / DB_FILE
    con = sqlite3.connect(path)
    with con:
        for i in range(N):
            con.execute("UPDATE items SET format=? WHERE id=?",
                        (FORMATS[i % len(FORMATS)], f"r{i}"))
        con.execute("UPDATE items SET width=2.5 WHERE rowid % 11 = 1")
        con.execute("UPDATE items SET width=1e300 WHERE rowid % 17 = 2")
        for rowid, real in [(3, 1 / 3), (4, math.pi * 1e17), (5, 5e-324), (6, -2.0**60)]:
            con.execute("UPDATE items SET width=? WHERE rowid=?", (real, rowid))
        con.execute("UPDATE items SET sha256=x'00ff' WHERE rowid % 5 = 0")
        con.execute("UPDATE items SET sha256='ab' WHERE rowid % 5 = 1")
    con.close()              # the last connection: the file alone holds every row
    assert not path.with_name(DB_FILE + "-wal").exists()
    return path


@pytest.fixture
def connect():
    """sqlite3.connect, every connection closed after the test."""
    opened: list[sqlite3.Connection] = []

    def open_(path):
        opened.append(sqlite3.connect(path))
        return opened[-1]

    yield open_
    for con in opened:
        con.close()


@pytest.fixture
def small_ranges(monkeypatch):
    monkeypatch.setattr(fc_module, "_STEP", 64)
    monkeypatch.setattr(fc_module, "_KNOWN", 128)


def _meta(con: sqlite3.Connection, key: str) -> int:
    row = con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return int(row[0]) if row else 0


def _load(con: sqlite3.Connection, node: Node, cache: FilterCache | None = None) -> FilterCache:
    cache = cache or FilterCache()
    cache.refresh(con, _meta(con, "seq"), _meta(con, "floor"), node)
    return cache


def _sql_rows(con: sqlite3.Connection, node: Node) -> list[int]:
    compiler = SQLCompiler()
    sql = compiler.compile(node)
    return [r[0] for r in con.execute(f"SELECT rowid FROM items WHERE {sql} ORDER BY rowid",
                                      compiler.params)]


def _probes(key: str, values: list[Any], ranges: bool = True) -> list[dict]:
    """Filters with every operator the cache answers, on key, for each probe value."""
    out: list[dict] = [{key: {"$exists": True}}, {key: {"$exists": False}}, {key: None},
                       {key: {"$ne": None}}]
    scalars = [v for v in values if v is None or isinstance(v, (bool, int, float, str))]
    for v in scalars:
        out += [{key: v}, {key: {"$ne": v}}, {key: {"$in": [v, scalars[0]]}},
                {key: {"$nin": [v, scalars[-1]]}}]
        if ranges and v is not None and not isinstance(v, bool):
            out += [{key: {op: v}} for op in ("$gt", "$gte", "$lt", "$lte")]
    return out


JSON_PROBES = [0, 1, 5, 2.5, -0.0, 0.1, 1e300, 2**53 + 1, 2**62, -2**63, 1e20, 3,
               "5", "", "a", 'quo"te', "back\\slash", "tab\t", "uni é 日本", "\x1f", "null",
               "true", '[1,"x"]', '{"a":{"b":2}}', "[]", "u7", "u301", "p3", 299, 300.5,
               True, False, None]
CASES = [
    ("m", JSON_PROBES), ("deep.x", JSON_PROBES), ("u", JSON_PROBES), ("pair", JSON_PROBES),
    ("d-k_2", [0, 3, 4, "3"]),
    ("width", [0, 1, 2.5, 1e300, 6, 7, -1, 1 / 3, math.pi * 1e17, 5e-324, -2.0**60, None]),
    ("format", ["JPEG", "PNG", "", "a\x1fb", "nul\x00l", "nul", "X'00'", "Z", None]),
    ("sha256", ["ab", "", None]),
    ("id", ["r1", "r13", "r699", "r7", "zz", None]),
]


def _assert_rows_match_sql(con: sqlite3.Connection, cache: FilterCache, key: str,
                           values: list[Any]) -> None:
    # sha256 holds blobs (written by SQL): SQL orders a blob above every text, the cache
    # ranges stay within texts (as always); the API never writes a blob there.
    for where in _probes(key, values, ranges=key != "sha256"):
        node = parse(where)
        cache.refresh(con, _meta(con, "seq"), _meta(con, "floor"), node)
        assert np.flatnonzero(cache.mask(node)).tolist() == _sql_rows(con, node), where


def _row_keys(cache: FilterCache, key: str) -> list[tuple]:
    col = cache.columns[parse_key(key)]
    return [col.keys[c] for c in col.codes[cache.alive]]


@pytest.mark.parametrize("key, values", CASES, ids=[c[0] for c in CASES])
def test_every_operator_gives_the_rows_sql_gives(db, connect, small_ranges, key, values):
    con = connect(db)
    cache = _load(con, parse({key: {"$exists": True}}))
    _assert_rows_match_sql(con, cache, key, values)
    col = cache.columns[parse_key(key)]
    assert len(set(col.keys)) == len(col.keys)              # one code per distinct value


@pytest.mark.parametrize("key", [c[0] for c in CASES])
def test_each_row_gets_the_key_the_row_by_row_load_gives(db, connect, small_ranges, monkeypatch,
                                                         key):
    con = connect(db)
    node = parse({key: {"$exists": True}})
    fast = _load(con, node)
    monkeypatch.setattr(fc_module, "_as_text", lambda f: None)    # as on SQLite < 3.38
    slow = _load(con, node)
    assert _row_keys(fast, key) == _row_keys(slow, key)


def test_fast_path_reads_no_row_by_row_unless_a_range_needs_it(db, connect, small_ranges,
                                                               monkeypatch):
    con = connect(db)
    ranges: list[tuple[str, int]] = []
    real = FilterCache._load_rows

    def spy(self, con, col, lo, hi):
        ranges.append((col.field.key, lo))
        return real(self, con, col, lo, hi)

    monkeypatch.setattr(FilterCache, "_load_rows", spy)
    _load(con, parse({"m": 1, "u": 1, "pair": 1, "width": 1, "id": "r1", "sha256": "ab"}))
    assert ranges == []
    # a value holding the separator: only its own range is read row by row
    _load(con, parse({"format": "PNG"}))
    sep_rows = [r[0] for r in con.execute("SELECT rowid FROM items WHERE instr(format, ?)",
                                          ("\x1f",))]
    assert ranges == sorted({("format", rowid // 64 * 64) for rowid in sep_rows})


def test_many_distinct_values_decode_every_row_then_go_back(db, connect, small_ranges,
                                                            monkeypatch):
    con = connect(db)
    calls: list[list[str]] = []
    real = fc_module._decode

    def spy(con, f, texts, none):
        calls.append(list(texts))
        return real(con, f, texts, none)

    monkeypatch.setattr(fc_module, "_decode", spy)
    cache = _load(con, parse({"u": 1}))
    # A range decoded row by row passes its missing rows too (''); a range of few values
    # decodes only the values not seen before, never ''. 'u' is unique per row, then
    # three values (rows 300-599), then unique again.
    assert "" in calls[0] and "" in calls[-1]
    assert sum(map(len, calls)) < int(cache.alive.sum()) - 150    # 3 ranges not decoded
    _assert_rows_match_sql(con, cache, "u", JSON_PROBES)


def _new_metadata(i: int) -> dict[str, Any]:
    m = {"m": MIXED[(i * 5) % len(MIXED)] if i % 4 else f"new{i}", "u": f"nu{i}"}
    return {k: v for k, v in m.items() if v is not MISSING} if i % 6 else {}


def _copy(db, tmp_path):
    """A writable copy of the module's store: (backend, store, a connection)."""
    home = tmp_path / "home"
    shutil.copytree(db.parents[2], home)
    backend = open_backend(home)
    return backend, backend.open("c"), sqlite3.connect(home / "collections" / "c" / DB_FILE)


def _spy_loads(monkeypatch) -> list[str]:
    """Names of FilterCache._catch_up / _load calls, from now on."""
    calls: list[str] = []
    for name in ("_catch_up", "_load"):
        real = getattr(FilterCache, name)
        monkeypatch.setattr(FilterCache, name, lambda self, *a, real=real, name=name: (
            calls.append(name), real(self, *a))[1])
    return calls


def test_catch_up_after_writes_and_deletes_matches_sql_and_a_fresh_load(db, small_ranges,
                                                                         tmp_path, monkeypatch):
    backend, store, con = _copy(db, tmp_path)
    keys = ["m", "u", "width", "format"]
    node = parse({k: {"$exists": True} for k in keys})
    cache = _load(con, node)
    x = clustered(60, seed=5)
    store.put([Record(id=f"n{i}", source=f"/n/{i}.jpg", vector=x[i],
                      metadata=_new_metadata(i),
                      width=i if i % 2 else None, format="a\x1fb" if i == 3 else "PNG")
               for i in range(60)])
    store.put([Record(id="r5", source="/p/5.jpg", vector=x[0], metadata={"m": "changed"})])
    store.delete([f"r{i}" for i in range(1, N, 7)] + ["n1", "n2"])
    store.set_metadata("r9", {"m": 2.5, "u": True})
    store.set_metadata("r12", {"u": "u11"}, merge=True)
    news = {"m": ["changed", "new4"], "u": ["nu5", "u11"], "width": [59], "format": []}
    calls = _spy_loads(monkeypatch)
    for key, values in CASES:
        if key in keys:
            _assert_rows_match_sql(con, cache, key, [*values, *news[key]])
    assert calls == ["_catch_up"]                          # a few rows: caught up, once
    fresh = _load(con, node)
    assert np.array_equal(fresh.alive, cache.alive[:len(fresh.alive)])
    assert not cache.alive[len(fresh.alive):].any()
    for key in keys:
        assert _row_keys(cache, key) == _row_keys(fresh, key), key
    con.close()
    store.close()
    backend.close()


def test_a_range_that_disagrees_with_alive_is_read_row_by_row(db, connect, small_ranges,
                                                              tmp_path, monkeypatch):
    # A row moved to another rowid behind the cache's back (no seq, no tombstone): the
    # range still has as many rows as 'alive' says, but not the same ones.
    path = tmp_path / DB_FILE
    shutil.copy(db, path)
    con = connect(path)
    cache = _load(con, parse({"u": 1}))
    free = int(np.flatnonzero(~cache.alive[1:64])[0]) + 1       # a deleted row's rowid
    moved = int(np.flatnonzero(cache.alive[:64])[-1])              # a live one
    with con:
        con.execute("UPDATE items SET rowid=? WHERE rowid=?", (free, moved))
    ranges: list[int] = []
    real = FilterCache._load_rows
    monkeypatch.setattr(FilterCache, "_load_rows", lambda self, con, col, lo, hi: (
        ranges.append(lo), real(self, con, col, lo, hi))[1])
    cache._load(con, parse_key("pair"))
    assert ranges == [0]
    fast = cache.columns[parse_key("pair")]
    monkeypatch.setattr(fc_module, "_as_text", lambda f: None)    # every row, one by one
    cache._load(con, parse_key("pair"))
    slow = cache.columns[parse_key("pair")]
    assert slow.codes[free] != 0                     # the moved row has a value there
    assert [fast.keys[c] for c in fast.codes] == [slow.keys[c] for c in slow.codes]


def test_a_change_to_most_rows_reloads_every_field_in_bulk(db, small_ranges, tmp_path,
                                                           monkeypatch):
    backend, store, con = _copy(db, tmp_path)
    node = parse({"m": {"$exists": True}, "width": {"$exists": True}})
    cache = _load(con, node)
    ids = store.ids()
    x = clustered(len(ids), seed=9)
    store.put([Record(id=id, source=f"/b/{id}.jpg", vector=x[i],
                      metadata={"m": MIXED[i % len(MIXED)] if i % 5 else f"bulk{i}"}
                      if MIXED[i % len(MIXED)] is not MISSING else {}, width=i % 4 or None)
               for i, id in enumerate(ids[: len(ids) * 3 // 5])])
    calls = _spy_loads(monkeypatch)
    _assert_rows_match_sql(con, cache, "width", dict(CASES)["width"])
    assert calls == ["_load", "_load"]                     # m and width, afresh
    _assert_rows_match_sql(con, cache, "m", [*JSON_PROBES, "bulk5", "bulk10"])
    fresh = _load(con, node)
    for key in ("m", "width"):
        assert _row_keys(cache, key) == _row_keys(fresh, key), key
    con.close()
    store.close()
    backend.close()
