"""Text query latency of the original fixed-77-token text tower against its rewritten
dynamic-axis graph (imgfind.embedders.text_trim), interleaved in one process.

``python -m bench.text_tower [--layout immich] [--rounds 15]`` prints the medians
and writes ``bench/results/text_tower-<date>.json``. One query at a time, as a
search does; the machine's load average is recorded with the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ensure_model, new_result, save_result

QUERIES = ["dog", "a red car parked on a street", "two children playing football on a beach",
           "an old man with a grey beard reading a newspaper on a wooden park bench"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layout", default="immich")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    from imgfind.embedders.onnx_clip import OnnxClipEmbedder

    res = new_result("text_tower", False, {"layout": args.layout, "rounds": args.rounds,
                                           "model": "vit-b-32 shapes, random weights"})
    model = ensure_model("vit-b-32", args.layout)
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as cache:
        os.environ["IMGFIND_CACHE"] = empty  # no verdict: the original graph
        before = OnnxClipEmbedder(model)
        before._load_text()
        before._trim = False  # never decided: stays at the full context
        os.environ["IMGFIND_CACHE"] = cache
        after = OnnxClipEmbedder(model)
        after.embed_texts(["first"])
        t0 = time.perf_counter()
        after.embed_texts(["second: starts the rewrite and proof"])
        if after._deciding is not None:
            after._deciding.join()
        decide_s = time.perf_counter() - t0
        times: dict[str, dict[str, list[float]]] = {q: {"before": [], "after": []}
                                                    for q in QUERIES}
        for _ in range(args.rounds):
            for q in QUERIES:
                for name, emb in (("before", before), ("after", after)):
                    t = time.perf_counter()
                    emb.embed_texts([q])
                    times[q][name].append((time.perf_counter() - t) * 1000)
    per_query: dict[str, Any] = {}
    for q, d in times.items():
        b, a = statistics.median(d["before"]), statistics.median(d["after"])
        per_query[q] = {"tokens": int(after._encode([q])[1].sum()), "before_ms": round(b, 2),
                        "after_ms": round(a, 2), "ratio": round(a / b, 3)}
        print(f"{per_query[q]['tokens']:3d} tokens: before {b:7.2f} ms  after {a:7.2f} ms  "
              f"ratio {a / b:.3f}")
    allb = statistics.median(x for d in times.values() for x in d["before"])
    alla = statistics.median(x for d in times.values() for x in d["after"])
    load = os.getloadavg()
    print(f"all queries: before p50 {allb:.2f} ms, after p50 {alla:.2f} ms, ratio "
          f"{alla / allb:.3f}; rewritten={after._trim and after._text.fixed_length is None}; "
          f"one-time rewrite+proof {decide_s:.1f} s; load average {load[0]:.1f}")
    res["figures"] = {"per_query": per_query, "before_p50_ms": round(allb, 2),
                      "after_p50_ms": round(alla, 2), "ratio": round(alla / allb, 3),
                      "rewritten": bool(after._trim), "decide_s": round(decide_s, 2)}
    print(save_result(res, Path("bench/results")))

if __name__ == "__main__":
    main()
