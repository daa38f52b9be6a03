"""imgfind's Milvus store against raw pymilvus on the same collection, interleaved.

``python -m bench.milvus_overhead [--n 10000] [--queries 200] [--filtered 20]``

One Milvus Lite file, one collection built through imgfind's store (HNSW, its
default), then for each query, alternately: ``store.search`` (ids, scores and
the hits' item fields, as imgfind returns them) and raw ``MilvusClient.search``
with the same expression, index parameters and limit, once asking for ids only
and once for the same fields. Interleaving makes the ratio fair on a shared,
busy machine (each pair sees the same load). Prints and saves p50s and ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from .common import CACHE
from .data import FILTERS, make_dataset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.milvus_overhead")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--filtered", type=int, default=20,
                    help="queries per filter (Milvus Lite evaluates JSON filters in Python)")
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args(argv)

    from imgfind.filters.milvus import compile_milvus
    from imgfind.stores.base import CollectionInfo, Record
    from imgfind.stores.milvus import MilvusBackend
    from imgfind.stores.milvus.schema import ITEM_FIELDS

    ds = make_dataset(CACHE / f"vectors-{args.n}-q{args.queries}", n=args.n,
                      n_queries=args.queries)
    tmp = Path(tempfile.mkdtemp(prefix="milvus-overhead-"))
    backend = MilvusBackend(str(tmp / "m.db"), blobs=str(tmp / "blobs"))
    store = backend.create(CollectionInfo(name="bench", model="bench", dim=ds.dim))
    labels = ds.labels()
    for start, x in ds.chunks(5_000):
        store.put([Record(id=str(start + i), source=f"bench://{start + i}", vector=x[i],
                          metadata={f: int(labels[f][start + i]) for f in FILTERS})
                   for i in range(len(x))])
    client, params = store.client, {"metric_type": "IP",
                                    "params": store.index.search_params(10)}
    queries = ds.queries()
    out: dict = {"n": args.n, "index": store.index.to_dict(), "k": 10, "runs": {}}
    cases = [("unfiltered", None, args.queries),
             *((f"{f} ({FILTERS[f][0]})", {f: FILTERS[f][2]}, args.filtered) for f in FILTERS)]
    for label, where, nq in cases:
        expr = compile_milvus(where)
        t: dict[str, list[float]] = {"imgfind": [], "raw_ids": [], "raw_fields": []}
        calls = {
            "imgfind": lambda q, w=where: store.search(q[None, :], 10, where=w),
            "raw_ids": lambda q, e=expr: client.search(
                store.cname, data=[q.tolist()], limit=10, anns_field="vector", filter=e,
                output_fields=[], search_params=params),
            "raw_fields": lambda q, e=expr: client.search(
                store.cname, data=[q.tolist()], limit=10, anns_field="vector", filter=e,
                output_fields=ITEM_FIELDS, search_params=params),
        }
        for q in queries[:3]:
            for fn in calls.values():
                fn(q)
        for i, q in enumerate(queries[:nq]):
            order = list(calls) if i % 2 == 0 else list(reversed(calls))
            for name in order:
                t0 = time.perf_counter()
                calls[name](q)
                t[name].append((time.perf_counter() - t0) * 1000)
        p50 = {k: statistics.median(v) for k, v in t.items()}
        out["runs"][label] = {"queries": nq, "p50_ms": p50,
                              "ratio_vs_raw_fields": p50["imgfind"] / p50["raw_fields"],
                              "ratio_vs_raw_ids": p50["imgfind"] / p50["raw_ids"]}
        print(f"{label:14} imgfind {p50['imgfind']:8.2f} ms  raw+fields "
              f"{p50['raw_fields']:8.2f} ms  raw ids {p50['raw_ids']:8.2f} ms  ratio "
              f"{p50['imgfind'] / p50['raw_fields']:.2f}x / {p50['imgfind'] / p50['raw_ids']:.2f}x",
              flush=True)
    backend.close()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"milvus_overhead-{time.strftime('%Y-%m-%d')}-n{args.n}.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
