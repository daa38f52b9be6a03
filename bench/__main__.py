"""``python -m bench <suite> [--quick] [--out bench/results]`` and ``python -m bench report``.

Suites: store, pipeline, quality, cli, server, sort, reliability. Each writes
``<out>/<suite>-<YYYY-MM-DD>.json`` (``.quick.json`` for --quick runs) and prints
its tables; ``report`` turns the latest result files into docs/benchmarks.md and
docs/img/*.png.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .common import REPO, print_tables, save_result

SUITES = {"store": "bench.store_suite", "pipeline": "bench.pipeline_suite",
          "quality": "bench.quality_suite", "cli": "bench.cli_suite",
          "server": "bench.server_suite", "sort": "bench.sort_suite",
          "portable": "bench.portable_suite",
          "reliability": "bench.reliability_suite"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("suite", choices=[*SUITES, "report"])
    ap.add_argument("--quick", action="store_true",
                    help="small sizes; finishes in under 5 minutes on 2 cores")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results",
                    help="folder for result JSON files (report: where to read them)")
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                    help="store, sort: comma-separated collection sizes (overrides the mode's)")
    ap.add_argument("--systems", type=lambda s: s.split(","),
                    help="store: comma-separated subset of systems")
    ap.add_argument("--queries", type=int, help="store: number of held-out queries")
    ap.add_argument("--timeout", type=float,
                    help="store: seconds each build / search process may take (default grows "
                         "with n); a system over it gets a 'timed out' row")
    ap.add_argument("--model-path", type=Path,
                    help="quality: model folder to evaluate (default: the bench's "
                         "random-weight ViT-B-32-shaped model)")
    ap.add_argument("--class-folder", type=Path,
                    help="quality: folder laid out as <class>/<image> for image-to-image mAP@10")
    ap.add_argument("--allow-random", action="store_true",
                    help="quality: run retrieval metrics even on a random-weight model")
    ap.add_argument("--ray", action="store_true",
                    help="pipeline: index on a local Ray against local threads instead")
    ap.add_argument("--note", action="append", default=[],
                    help="a sentence to store with the results (why a system or size was "
                         "left out, ...); repeatable; shown in the report")
    ap.add_argument("--docs", type=Path, default=REPO / "docs",
                    help="report: docs folder to write benchmarks.md and img/ into")
    a = ap.parse_args(argv)

    if a.suite == "report":
        from .report import write_report

        path = write_report(a.out, a.docs)
        print(f"wrote {path}")
        return 0
    mod = importlib.import_module(SUITES[a.suite])
    kwargs = {"quick": a.quick}
    if a.suite == "store":
        kwargs.update(sizes=a.sizes, systems=a.systems, queries=a.queries, timeout=a.timeout)
    if a.suite in ("sort", "portable"):
        kwargs.update(sizes=a.sizes)
    if a.suite == "pipeline":
        kwargs.update(ray=a.ray)
    if a.suite == "quality":
        kwargs.update(model_path=a.model_path, class_folder=a.class_folder,
                      allow_random=a.allow_random)
    res = mod.run(**kwargs)
    res["notes"] += a.note
    path = save_result(res, a.out)
    print_tables(res)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
