"""10M on paper: the embedded store at ten million vectors, projected from measured runs.

Inputs are imgfind's own rows of the two largest store runs (100k and 1M, same
vectors, same machine). Every figure is a straight line through those two points,
except where the index's own rule changes with n (``ivf_nlist`` caps at 4,096 lists,
so lists grow longer past 8.4M and a query scans more codes per probed list). The
arithmetic is printed beside each figure so it can be checked by hand.

>>> rows = project(results["store"])   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

TARGET_N = 10_000_000


def _imgfind(res: dict[str, Any], n: int) -> dict[str, Any] | None:
    return res.get("figures", {}).get("sizes", {}).get(str(n), {}).get("imgfind")


def _default(run: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in run["search"]["settings"] if s["label"].startswith("default"))


def project(store: dict[str, Any]) -> list[str]:
    """Markdown lines for the 10M projection; empty when the 100k or 1M run is missing."""
    from imgfind.stores.vector_index import ivf_nlist

    small, big = _imgfind(store, 100_000), _imgfind(store, 1_000_000)
    if not small or not big:
        return []
    dn = 900_000
    rss_per = (big["search"]["search_rss_mb"] - small["search"]["search_rss_mb"]) * 2**20 / dn
    disk_per = (big["build"]["disk_mb"] - small["build"]["disk_mb"]) * 2**20 / dn
    rss = big["search"]["search_rss_mb"] + rss_per * (TARGET_N - 1e6) / 2**20
    disk = big["build"]["disk_mb"] + disk_per * (TARGET_N - 1e6) / 2**20
    insert_1m = 1e6 / big["build"]["insert_per_s"]
    build_s = (insert_1m + big["build"]["index_s"]) * TARGET_N / 1e6
    # search: fixed cost + cost per code scanned (nprobe lists of n/nlist codes each)
    p_small, p_big = _default(small), _default(big)
    nprobe_small = int(p_small["label"].split("nprobe")[1].rstrip(")"))
    nprobe_big = int(p_big["label"].split("nprobe")[1].rstrip(")"))
    codes_small = nprobe_small * 100_000 / ivf_nlist(100_000)
    codes_big = nprobe_big * 1_000_000 / ivf_nlist(1_000_000)
    per_code = (p_big["all"]["p50_ms"] - p_small["all"]["p50_ms"]) / (codes_big - codes_small)
    fixed = p_big["all"]["p50_ms"] - per_code * codes_big
    nlist10 = ivf_nlist(TARGET_N)

    def p50(nprobe: int) -> float:
        return fixed + per_code * nprobe * TARGET_N / nlist10

    return [
        "## 10M on paper (embedded store)", "",
        ("Projected from imgfind's measured 100k and 1M store runs above (same clustered "
         "512-d vectors, same machine): a straight line through the two points, with the "
         "index's own rules for 10M. Not measured: a projection."), "",
        "| figure | 10M projection | arithmetic |", "|---|---|---|",
        f"| resident memory, opened for search | {rss / 1024:.1f} GB | {rss_per:.0f} B/vector "
        f"(1M-100k slope) x 9M more + {big['search']['search_rss_mb']:.0f} MB at 1M |",
        f"| disk (no thumbnails) | {disk / 1024:.1f} GB | {disk_per:.0f} B/vector x 9M more "
        f"+ {big['build']['disk_mb']:.0f} MB at 1M |",
        f"| build (insert + index) | {build_s / 60:.0f} min | 10 x ({insert_1m:.0f} s insert + "
        f"{big['build']['index_s']:.0f} s IVF at 1M); IVF add is linear, training "
        "uses a fixed sample |",
        f"| index settings | IVF{nlist10} + 6-bit SQ codes, re-rank of the candidates within "
        "the codes' error bound from float16 rows | `ivf_nlist` caps at "
        f"{nlist10} lists: {TARGET_N // nlist10:,} codes a list (1M: "
        f"{1_000_000 // ivf_nlist(1_000_000):,}) |",
        f"| p50, nprobe {nprobe_big} (1M's tuned value) | {p50(nprobe_big):.1f} ms | "
        f"{fixed:.2f} ms fixed + {per_code * 1000:.3f} us/code x {nprobe_big} x "
        f"{TARGET_N // nlist10:,} codes |",
        f"| p50, nprobe {2 * nprobe_big} (if recall needs it) | {p50(2 * nprobe_big):.1f} ms | "
        "same line, twice the lists |", "",
        ("**Where it stops being the right tool.** At 10M the embedded store still answers "
         "in milliseconds on one machine, but it needs a machine with "
         f"~{rss / 1024:.0f} GB of RAM free for the index, a ~{build_s / 60:.0f}-minute rebuild "
         "after damage or a model change, and one writer process. Past ~10M images, when "
         "several servers must share one collection, or when indexing needs more than one "
         "machine, hand over to the Milvus store (`--store milvus://...`, see "
         "docs/scale-out.md): sharded, replicated, and built for 100M-1B vectors."), ""]
