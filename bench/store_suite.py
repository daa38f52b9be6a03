"""Suite ``store``: imgfind's store against LanceDB, Chroma, Milvus Lite and raw faiss.

All systems get identical clustered 512-d unit vectors (see :mod:`bench.data`)
and the same held-out queries; recall@10 is against the exact top 10. Each
system is built in one subprocess and searched in another, so peak RSS is its
own and the search process measures a cold open.

Example::

    res = run(quick=True)            # 20k vectors, 100 queries, every system
    res = run(quick=False, sizes=[100_000], systems=["imgfind", "faiss-hnsw32"])
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any

from .common import CACHE, fresh_dir, log, new_result, run_json_subprocess, table
from .data import FILTERS, make_dataset
from .systems import REQUIRES, SYSTEMS
from .targets import NOT_MEASURED, judge
from .targets import targets_table as _targets_table

# 50k: the smallest size at which imgfind's store switches from exact to its IVF index
QUICK = {"sizes": [50_000], "queries": 100}
FULL = {"sizes": [100_000, 1_000_000], "queries": 500}
TARGET_RECALL = 0.95
#: run only when named in --systems: imgfind's Milvus store beside raw pymilvus on a JSON
#: field is a layer comparison (docs/scale-out.md), and the two of them would take the
#: default --quick run past its 5 minutes
OPT_IN = ("imgfind-milvus", "milvus-lite-json")


def _unavailable(name: str) -> str | None:
    mod = REQUIRES[name]
    try:
        if importlib.util.find_spec(mod.split(".")[0]) is None:
            return f"{mod} is not installed (pip install -e '.[bench]')"
        if name == "milvus-lite" and importlib.util.find_spec("milvus_lite") is None:
            return "milvus-lite is not installed (pip install milvus-lite)"
        if name == "imgfind":
            importlib.import_module(mod).open_backend  # noqa: B018 - presence check
    except Exception as e:  # noqa: BLE001 - anything failing here means "cannot run it"
        return f"{type(e).__name__}: {e}"
    return None


def run(quick: bool, sizes: list[int] | None = None, systems: list[str] | None = None,
        queries: int | None = None, timeout: float | None = None) -> dict[str, Any]:
    cfg = dict(QUICK if quick else FULL)
    sizes = sizes or cfg["sizes"]
    nq = queries or cfg["queries"]
    names = systems or [name for name in SYSTEMS if name not in OPT_IN]
    res = new_result("store", quick, {"sizes": sizes, "queries": nq, "systems": names,
                                      "k": 10, "target_recall": TARGET_RECALL})
    # one file per (sizes, systems) run: separate runs never overwrite each other and
    # `report` merges them
    res["file_tag"] = "n" + "+".join(_size_label(n) for n in sizes) + (
        "" if systems is None else "-" + "+".join(names))
    res["figures"] = {"sizes": {}, "unavailable": {}, "systems": {}}
    for name in names:
        why = _unavailable(name)
        if why:
            res["figures"]["unavailable"][name] = why
        res["figures"]["systems"][name] = {
            "filter_mode": SYSTEMS[name].filter_mode, "delete_mode": SYSTEMS[name].delete_mode}
    for n in sizes:
        log(f"data: {n:,} vectors, {nq} queries")
        ds = make_dataset(CACHE / f"vectors-{n}-q{nq}", n=n, n_queries=nq)
        res["params"].setdefault("data", ds.describe())
        per: dict[str, Any] = {}
        for name in names:
            if name in res["figures"]["unavailable"]:
                continue
            log(f"{name}: build + search at n={n:,}")
            path = fresh_dir(CACHE / "store-runs" / f"{name}-{n}")
            # a 1M build of the slowest peers takes tens of minutes on 2 cores
            limit = timeout or 600 + n * (0.01 if n > 100_000 else 0.005)
            t = time.perf_counter()
            b = run_json_subprocess(["bench.store_worker", name, "build", "--data",
                                     str(ds.root), "--path", str(path)], limit)
            build_wall = time.perf_counter() - t
            if "error" in b:
                per[name] = {"error": f"build: {b['error']}", "build_wall_s": build_wall}
                continue
            t = time.perf_counter()
            s = run_json_subprocess(["bench.store_worker", name, "search", "--data",
                                     str(ds.root), "--path", str(path)], limit)
            # wall time of each phase's process: what a run of this system costs here
            per[name] = {"build": b, "build_wall_s": build_wall,
                         "search_wall_s": time.perf_counter() - t}
            if "error" in s:
                per[name]["error"] = f"search: {s.pop('error')}"
            if "settings" in s:  # complete, or the settings finished before a time limit
                per[name]["search"] = s
            log(f"{name}: build {build_wall:.0f} s, search {per[name]['search_wall_s']:.0f} s")
        res["figures"]["sizes"][str(n)] = per
        res["tables"] += size_tables(n, per, res["figures"]["systems"])
    if res["figures"]["unavailable"]:
        res["tables"].append(table("Systems not measured", ["system", "reason"],
                                   sorted(res["figures"]["unavailable"].items())))
    if "imgfind" in names:  # a peers-only run has no targets of its own
        res["figures"]["imgfind_targets"] = [t for n in sizes
                                             for t in targets(res["figures"], n)]
        res["tables"] += [targets_table(res["figures"], n) for n in sizes]
    return res


def _size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else (
        f"{n // 1000}k" if n % 1000 == 0 else str(n))


def best_at_recall(settings: list[dict], key: str = "all",
                   target: float = TARGET_RECALL) -> dict | None:
    """The fastest (p50) setting whose recall reaches ``target``; None when none does."""
    ok = [s for s in settings if s[key]["recall"] >= target]
    return min(ok, key=lambda s: s[key]["p50_ms"]) if ok else None


def size_tables(n: int, per: dict[str, Any], sysinfo: dict[str, Any]) -> list[dict]:
    """The tables of one size; a figure an older or partial run lacks shows as "–"."""
    foot, curve, filt, new_key, errors = [], [], [], [], []
    for name, r in per.items():
        if "error" in r and "build" not in r:
            errors.append([name, r["error"]])
            continue
        b = r["build"]
        s = r.get("search")
        if "error" in r:
            errors.append([name, r["error"]])
        if s is None:
            foot.append([name, b.get("insert_per_s"), b.get("index_s"), b.get("build_rss_mb"),
                         None, b.get("disk_mb"), None, None])
            continue
        d = s.get("delete")
        foot.append([name, b.get("insert_per_s"), b.get("index_s"), b.get("build_rss_mb"),
                     s.get("search_rss_mb"), b.get("disk_mb"), s.get("cold_open_s"),
                     "not reached" if d is None else "ok" if d["ok"]
                     else f"{d['violations']} deleted ids returned"])
        k = s.get("new_key")
        if k:
            new_key.append([name, f"{k['field']} ({k['selectivity']})", k["first_ms"],
                            k["second_ms"], k["third_ms"]])
        for st in s["settings"]:
            curve.append([name, st["label"], st["all"]["recall"], st["all"]["p50_ms"],
                          st["all"]["p99_ms"]])
            # a filter an older run did not measure shows as "–"
            filt.append([name, st["label"],
                         *[st.get(f, {}).get(v) for f in FILTERS
                           for v in ("recall", "p50_ms", "short")]])
    sel = [FILTERS[f][0] for f in FILTERS]
    out = [
        table(f"Insert, memory, disk, cold open (n={n:,})",
              ["system", "insert rows/s", "index build s", "build peak RSS MB",
               "search peak RSS MB", "disk MB", "cold open+1st query s", "delete check"], foot,
              note="insert rows/s counts the put/add calls only; index build is separate and "
                   "includes imgfind's two SQLite field indexes (index_field on group and "
                   "bucket) and LanceDB's two BITMAP scalar indexes on the same fields. "
                   "RSS is each system's own process (numbers include Python + numpy)."),
        table(f"Recall@10 vs single-query latency (n={n:,})",
              ["system", "setting", "recall@10", "p50 ms", "p99 ms"], curve),
        table(f"Filtered search (n={n:,})",
              ["system", "setting", *[c for s in sel for c in (f"{s} recall", f"{s} p50 ms",
                                                                f"{s} short")]], filt,
              note="filters: " + "; ".join(f"{name}: {sysinfo[name]['filter_mode']}"
                                           for name in per if name in sysinfo)
                   + ". 'short' = queries that got fewer than 10 hits."),
    ]
    if new_key:
        out.append(table(f"First filtered queries on a key no index has seen (n={n:,})",
                         ["system", "field", "1st query ms", "2nd ms", "3rd ms"], new_key,
                         note="run right after the cold open, before the other settings; "
                              "imgfind makes a filtered field's index or in-memory codes "
                              "on first use"))
    if errors:
        out.append(table(f"Failures (n={n:,})", ["system", "error"], errors))
    return out


def default_setting(settings: list[dict]) -> dict:
    """The setting a user gets without tuning (imgfind: the store's own nprobe)."""
    return next((s for s in settings if s["label"].startswith("default")), settings[0])


#: issue 9's store targets; docs/benchmarks.md's targets table reads them through targets()
FILTER_P50_MS = 2.0
OVERHEAD_MAX = 1.3
P50_1M_MS = 0.5
RSS_KB_PER_VECTOR = 0.5
DISK_KB_PER_VECTOR = 2.2
#: the size the issue's targets are defined at (engine overhead is judged at 100k too)
TARGET_N = 1_000_000
def _filters(s: dict[str, Any] | None) -> list[str]:
    """The bench's filters plus any other a (newer or older) result file measured."""
    seen = [f for st in (s or {}).get("settings", []) for f in st
            if f not in ("label", "all") and f not in FILTERS]
    return [*FILTERS, *dict.fromkeys(seen)]


def _overhead(per: dict[str, Any], d: dict[str, Any], files: dict[str, Any]
              ) -> tuple[str, bool]:
    """imgfind's default p50 against the fastest raw faiss setting reaching its recall;
    ``files`` (system -> {"file"}, from a merge of runs) says when they were not one run.

    imgfind is judged through its public API (``Collection.search``, the ``api``
    figures) when the run measured it, as the issue asks; older runs measured the
    store only, which says so."""
    api = (per.get("imgfind", {}).get("search") or {}).get("api")
    a = api["all"] if api else d["all"]
    via = "Collection.search" if api else "store.search (no public-API figure in this run)"
    faiss = [(name, st) for name, r in per.items() if name.startswith("faiss-")
             for st in (r.get("search") or {}).get("settings", [])]
    if not faiss:
        raise KeyError("no faiss run at this size")
    ok = [(name, st) for name, st in faiss if st["all"]["recall"] >= a["recall"]]
    name, st = (min(ok, key=lambda x: x[1]["all"]["p50_ms"]) if ok else
                max(faiss, key=lambda x: x[1]["all"]["recall"]))
    ratio = a["p50_ms"] / st["all"]["p50_ms"]
    how = "" if ok else (f"; no faiss setting reaches recall {a['recall']:.3f}, so the one "
                         "of highest recall")
    mine, theirs = (files.get(x, {}).get("file") for x in ("imgfind", name))
    if mine != theirs:
        how += f"; {name} from another run ({theirs})"
    return (f"imgfind ({via}) {a['p50_ms']:.2f} ms at recall {a['recall']:.3f} vs {name} "
            f"{st['label']} {st['all']['p50_ms']:.2f} ms at recall {st['all']['recall']:.3f}"
            f" = {ratio:.2f}x{how}", ratio <= OVERHEAD_MAX)


def targets(figures: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Issue 9's store targets judged on imgfind's run at size ``n``, default setting.

    Each row: ``{"id", "issue", "n", "target", "measured", "pass"}`` where pass is
    True, False, "info" (a figure the issue asks to report, no bar) or "not measured".
    The targets are defined at 1M vectors (the overhead one at 100k too); at other
    sizes they are indicative. The default setting is what a user gets, so the
    other curve points are shown in the tables, not used for pass/fail.

    >>> [t["id"] for t in targets({"sizes": {}}, 1_000_000)][:2]
    ['9.1-group', '9.1-bucket']
    """
    per = figures.get("sizes", {}).get(str(n), {})
    r = per.get("imgfind", {})
    s = r.get("search")

    def default() -> dict[str, Any]:
        if not s:
            raise KeyError("imgfind not measured")
        return default_setting(s["settings"])

    def row(tid: str, target: str, measure: Any) -> dict[str, Any]:
        return judge(tid, target, measure, n=n)

    def filtered(f: str) -> tuple[str, bool]:
        d = default()
        x = d[f]
        return (f"{x['p50_ms']:.2f} ms p50, recall {x['recall']:.3f}, {x['short']} queries "
                f"short of k ({d['label']})",
                x["p50_ms"] <= FILTER_P50_MS and x["recall"] >= TARGET_RECALL
                and x["short"] == 0)

    def new_key() -> tuple[str, str]:
        k = s["new_key"]
        return (f"`{k['field']}` ({k['selectivity']}): 1st query {k['first_ms']:.1f} ms, "
                f"2nd {k['second_ms']:.2f} ms, 3rd {k['third_ms']:.2f} ms", "info")

    def p50() -> tuple[str, bool]:
        a = default()["all"]
        api = s.get("api") if s else None
        a, via = (api["all"], "Collection.search") if api else (a, "store.search")
        return (f"{a['p50_ms']:.2f} ms p50 at recall {a['recall']:.3f} ({via})",
                a["p50_ms"] <= P50_1M_MS and a["recall"] >= TARGET_RECALL)

    def per_vector(mb: float, bar: float) -> tuple[str, bool]:
        kb = mb * 1000 / n  # the convention: 627 MB over 1M vectors = 0.63 KB
        return f"{kb:.2f} KB/vector ({mb:.0f} MB / {n:,})", kb <= bar

    def deleted() -> tuple[str, bool]:
        d = s["delete"]
        return f"{d['violations']} violations in {d['queries']} queries", d["ok"]

    rows = []
    for f in _filters(s):
        sel = FILTERS[f][0] if f in FILTERS else "?"
        rows.append(row(f"9.1-{f}", f"n={n:,}, {sel} filter (`{f}`): p50 <= "
                        f"{FILTER_P50_MS:g} ms at recall@10 >= {TARGET_RECALL}, k hits "
                        "whenever k match", lambda f=f: filtered(f)))
    rows += [
        row("9.1-new_key", f"n={n:,}: first filtered queries on a key with no index yet",
            new_key),
        row("9.2-overhead", f"n={n:,}: p50 <= {OVERHEAD_MAX}x the fastest raw faiss setting "
            "reaching imgfind's recall@10",
            lambda: _overhead(per, default(), figures.get("sources", {}).get(str(n), {}))),
        row("9.2-p50", f"n={n:,}: unfiltered p50 <= {P50_1M_MS} ms at recall@10 >= "
            f"{TARGET_RECALL}", p50),
        row("9.3-rss", f"n={n:,}: opened-for-search RSS (peak) <= {RSS_KB_PER_VECTOR} "
            "KB/vector", lambda: per_vector(s["search_rss_mb"], RSS_KB_PER_VECTOR)),
        row("9.3-disk", f"n={n:,}: disk <= {DISK_KB_PER_VECTOR} KB/vector (no thumbnails)",
            lambda: per_vector(r["build"]["disk_mb"], DISK_KB_PER_VECTOR)),
        row("core-delete", f"n={n:,}: deleted ids never returned", deleted),
    ]
    if not s:
        why = figures.get("unavailable", {}).get("imgfind") or r.get("error")
        if why:
            rows = [{**t, "measured": f"{NOT_MEASURED}: {why}"} for t in rows]
    return rows


def targets_table(figures: dict[str, Any], n: int) -> dict:
    return _targets_table(
        f"imgfind targets of issue 9 (measured at n={n:,}, default setting)",
        targets(figures, n),
        note=None if n == TARGET_N else
        "the targets are defined at 1M vectors (engine overhead also at 100k); at this size "
        "they are indicative only")
