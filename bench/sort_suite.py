"""Suite ``sort``: first-page latency of date-ordered listings (issue 10 part 2).

A collection of ``n`` item rows (70% with a date taken spread over 25 years,
the rest falling back to the date added; a ``group`` key for a 1% filter) is
written straight into the items table; then the first page (100 ids) of each listing
order is timed through ``store.ids`` and through ``Collection.items`` (which
also reads the 100 items), with and without a 1% filter. For comparison the
same page is read with the date index bypassed (the ORDER BY expression
altered so SQLite cannot use the index: what the listing cost before
migration 2).

Example::

    res = run(quick=True)      # 100k items
"""

from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from .common import CACHE, log, new_result, table

PAGE = 100
SORTS = [None, "-taken", "taken", "-added", "added"]
DIM = 8


def _collection(n: int) -> Path:
    """A library holding collection ``sort`` with ``n`` item rows (reused when it matches).

    Rows go into the items table with one SQL statement per 50k rows (the listing reads
    nothing else; ``store.put`` would also embed-index and full-text-index them, which
    takes ~10 min for 1M rows here). No vectors: these items are never searched.
    """
    import imgfind
    from imgfind.stores.base import CollectionInfo

    home = CACHE / f"sort-home-{n}"
    stamp = home / ".bench-sort.json"
    want = {"n": n, "v": 2}
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return home
    import shutil

    shutil.rmtree(home, ignore_errors=True)
    rng = random.Random(7)
    t0 = time.perf_counter()
    with imgfind.open(home) as lib:
        store = lib.backend.create(CollectionInfo(name="sort", model="bench-rows", dim=DIM))
        added = "2026-01-01T00:00:00+00:00"
        for start in range(0, n, 50_000):
            rows = []
            for i in range(start, min(n, start + 50_000)):
                taken = None
                if rng.random() < 0.7:
                    taken = (f"{rng.randint(2000, 2025)}-{rng.randint(1, 12):02d}-"
                             f"{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00")
                # 1,000 items per "upload second", so added dates tie as in real imports
                stamp_added = added[:17] + f"{(i // 1000) % 60:02d}" + added[19:]
                rows.append((f"i{i}", f"/photos/{i % 977}/p{i}.jpg",
                             json.dumps({"group": i % 100}), taken, stamp_added, stamp_added))
            with store._tx() as con:
                con.executemany("INSERT INTO items(id, source, metadata, taken, added, updated, "
                                "seq) VALUES (?, ?, ?, ?, ?, ?, 0)", rows)
        store.close()
    stamp.write_text(json.dumps(want))
    log(f"sort: built {n:,} rows in {time.perf_counter() - t0:.1f} s")
    return home


def _p50(fn: Any, repeat: int) -> float:
    fn()  # warm: page cache and statement cache
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def run(quick: bool, sizes: list[int] | None = None) -> dict[str, Any]:
    import imgfind
    from imgfind.filters import compile_filter
    from imgfind.stores.sqlite.rows import _ORDER

    sizes = sizes or ([100_000] if quick else [100_000, 1_000_000])
    repeat = 20 if quick else 50
    res = new_result("sort", quick, {"sizes": sizes, "page": PAGE, "repeat": repeat,
                                     "filter": {"group": 7}, "filter_share": 0.01})
    rows: list[list[Any]] = []
    fig: dict[str, Any] = {}
    for n in sizes:
        home = _collection(n)
        with imgfind.open(home) as lib:
            col = lib.collection("sort")
            store = col.store
            f: dict[str, Any] = {}
            for where in (None, {"group": 7}):
                tag = "all" if where is None else "1% filter"
                for sort in SORTS:
                    ids_ms = _p50(lambda st=store, w=where, s=sort: st.ids(
                        w, limit=PAGE, sort=s), repeat)
                    items_ms = _p50(lambda c=col, w=where, s=sort: c.items(
                        w, limit=PAGE, sort=s), repeat)
                    bypass_ms = None
                    if sort is not None:
                        sql, params = compile_filter(where)
                        # "|| ''" changes the expression: SQLite can no longer use the index
                        expr = "COALESCE(taken, added)" if "taken" in sort else "added"
                        way = "DESC" if sort.startswith("-") else ""
                        q = (f"SELECT id FROM items WHERE {sql} ORDER BY ({expr} || '') {way}, "
                             f"rowid {way} LIMIT {PAGE}")
                        assert _ORDER[sort].startswith(expr)
                        bypass_ms = _p50(lambda st=store, q=q, p=params: st._con.execute(
                            q, p).fetchall(), max(3, repeat // 10))
                    key = f"{tag} {sort or 'insertion'}"
                    f[key] = {"ids_p50_ms": ids_ms, "items_p50_ms": items_ms,
                              "no_index_p50_ms": bypass_ms}
                    rows.append([f"{n:,}", tag, sort or "(insertion)", ids_ms, items_ms,
                                 bypass_ms])
            fig[str(n)] = f
    res["figures"] = fig
    res["tables"].append(table(
        "First page (100) of a listing", ["items", "rows", "sort", "store.ids p50 ms",
                                          "Collection.items p50 ms", "index bypassed p50 ms"],
        rows, note="store.ids: the ordered ids only; Collection.items also reads the 100 "
                   "items. 'index bypassed': the same ORDER BY with the expression altered so "
                   "SQLite sorts every matching row, as before migration 2."))
    return res
