"""Child process of the store suite: one system, one phase, its own RSS.

``build``: import, insert every vector, build the index, close; reports insert
throughput, peak RSS and on-disk size. ``search``: a fresh process opens the
store (cold open = open + first query), runs every accuracy setting unfiltered
and with both filters, records peak RSS, then deletes rows and checks they never
come back. Prints one JSON line.

Run by the suite; by hand::

    python -m bench.store_worker faiss-hnsw32 search --data ~/.cache/imgfind-bench/vec-20000 \
        --path /tmp/runs/faiss-hnsw32
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import numpy as np

from .common import dir_size_mb, peak_rss_mb
from .data import FILTERS, INDEXED_AT_BUILD, Dataset, K, recall_at_k
from .systems import REQUIRES, SYSTEMS, System


def _run_queries(system: System, q: np.ndarray, gt: np.ndarray, filt) -> dict:
    for i in range(min(5, len(q))):  # warm caches and lazy state, not timed
        system.search(q[i], K, filt)
    lat, found = [], []
    for row in q:
        t = time.perf_counter()
        found.append(system.search(row, K, filt))
        lat.append(time.perf_counter() - t)
    a = np.asarray(lat) * 1000.0
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "recall": recall_at_k(found, gt),
            "short": int(sum(len(f) < K for f in found))}


def build(system: System, ds: Dataset, path: Path) -> dict:
    t = system.build(path, ds)
    return {**t,
            "insert_per_s": ds.n / t["insert_s"],
            "total_per_s": ds.n / (t["insert_s"] + t["index_s"]),
            "build_rss_mb": peak_rss_mb(), "disk_mb": dir_size_mb(path)}


def search(system: System, ds: Dataset, path: Path, import_s: float) -> dict:
    q, gt = ds.queries(), ds.ground_truth()
    t0 = time.perf_counter()
    system.open(path)
    settings = system.settings(ds.n)
    system.configure(settings[len(settings) // 2])
    system.search(q[0], K, None)
    cold = time.perf_counter() - t0
    rss_open = peak_rss_mb()
    rows: list[dict] = []
    out = {"import_s": import_s, "cold_open_s": cold, "open_rss_mb": rss_open,
           "new_key": _new_key(system, q), "settings": rows}
    for s in settings:
        system.configure(s)
        entry = {"label": s["label"], "all": _run_queries(system, q, gt["all"], None)}
        for f, (_sel, _n, v) in FILTERS.items():
            entry[f] = _run_queries(system, q, gt[f], (f, v))
        rows.append(entry)
        # a slow system that hits the time limit still reports the settings it finished
        print(json.dumps({**out, "search_rss_mb": peak_rss_mb(), "partial": True}), flush=True)
    out["search_rss_mb"] = peak_rss_mb()
    if system.api_search is not None:
        # the same queries through the public API, at the default (middle) setting; after
        # the peak RSS reading, so opening the library does not count in the store's memory
        system.configure(settings[len(settings) // 2])
        api = _run_queries(_Api(system), q, gt["all"], None)
        out["api"] = {"label": settings[len(settings) // 2]["label"], "all": api}
    out["delete"] = _delete_check(system, q, gt["all"])
    return out


class _Api:
    """A system seen through its public API search (``System.api_search``)."""

    def __init__(self, system: System):
        self.search = system.api_search


def _new_key(system: System, q: np.ndarray) -> dict:
    """The first filtered queries on a field no index has seen yet (not in INDEXED_AT_BUILD)."""
    field = next(f for f in FILTERS if f not in INDEXED_AT_BUILD)
    filt = (field, FILTERS[field][2])
    times = []
    for row in q[:3]:
        t = time.perf_counter()
        system.search(row, K, filt)
        times.append((time.perf_counter() - t) * 1000.0)
    return {"field": field, "selectivity": FILTERS[field][0], "first_ms": times[0],
            "second_ms": times[1], "third_ms": times[2]}


def _delete_check(system: System, q: np.ndarray, gt: np.ndarray) -> dict:
    """Delete the true top-3 of the first queries, then make sure none of them is returned."""
    nq = min(50, len(q))
    victims = sorted({int(r) for r in gt[:nq, :3].ravel()})
    t = time.perf_counter()
    system.delete(victims)
    delete_s = time.perf_counter() - t
    dead = set(victims)
    violations = short = 0
    for row in q[:nq]:
        got = system.search(row, K, None)
        violations += len(dead & set(got))
        short += len(got) < K
    return {"deleted": len(victims), "delete_s": delete_s, "queries": nq,
            "violations": violations, "short_results": short, "ok": violations == 0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("system", choices=sorted(SYSTEMS))
    ap.add_argument("phase", choices=["build", "search"])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--path", type=Path, required=True)
    a = ap.parse_args()
    meta = json.loads((a.data / "meta.json").read_text())
    ds = Dataset(a.data, meta["n"], meta["n_queries"])
    t = time.perf_counter()
    system = SYSTEMS[a.system]()
    # import the library now so its import time is measured apart from the open
    importlib.import_module(REQUIRES[a.system])
    import_s = time.perf_counter() - t
    if a.phase == "build":  # build() leaves nothing open
        out = build(system, ds, a.path)
    else:
        out = search(system, ds, a.path, import_s)
        system.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
