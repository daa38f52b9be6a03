"""``python -m bench portable``: export and import of a synthetic collection, time and peak memory.

Three child processes, so each peak RSS is that phase's alone: build (a collection of
``n`` synthetic items straight through the store: 512-d vectors, ~3 KB thumbnails,
1 in 100 with a ~20 KB stored original), export to a tar, import it into another
library. Each child reports its wall time and ``ru_maxrss``; a fourth child that only
opens the library gives the baseline. Bounded memory means the export and import peaks
stay near the baseline whatever ``n`` is (compare --quick at 10k with the 100k run).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import SRC, log, new_result, table

DIM = 512


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux


def _worker(phase: str, home: str, file: str, n: int) -> dict[str, Any]:
    import numpy as np

    import imgfind
    from imgfind.portable import export_collection, import_collection
    from imgfind.stores.base import CollectionInfo, Record

    t0 = time.perf_counter()
    lib = imgfind.open(home)
    out: dict[str, Any] = {}
    if phase == "build":
        store = lib.backend.create(CollectionInfo(name="synthetic", model="synthetic-512",
                                                  dim=DIM, created="2026-01-01T00:00:00"))
        rng = np.random.default_rng(0)
        thumb = bytes(rng.integers(0, 256, 3000, dtype=np.uint8))
        orig = bytes(rng.integers(0, 256, 20_000, dtype=np.uint8))
        for start in range(0, n, 5000):
            m = min(5000, n - start)
            vecs = rng.standard_normal((m, DIM), dtype=np.float32)
            store.put([Record(id=f"i{start + j:08d}", source=f"/photos/{start + j:08d}.jpg",
                              vector=vecs[j], metadata={"n": start + j, "tag": f"t{j % 50}"},
                              exif={"Make": "Synthetic"}, file={"size": 123456},
                              width=640, height=480, format="JPEG", sha256=f"{start + j:064x}",
                              thumbnail=thumb, original=orig if (start + j) % 100 == 0 else None)
                       for j in range(m)])
    elif phase == "export":
        out = export_collection(lib.collection("synthetic"), file)
    elif phase == "import":
        out = import_collection(lib, file, name="synthetic")
    out.update(seconds=round(time.perf_counter() - t0, 2), peak_rss_mb=round(_rss_mb(), 1))
    lib.close()
    return out


def _child(phase: str, home: Path, file: Path, n: int) -> dict[str, Any]:
    log(f"portable: {phase} ({n:,} items)")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-m", "bench.portable_suite", phase, str(home),
                           str(file), str(n)], capture_output=True, text=True, env=env,
                          cwd=SRC.parent, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{phase} failed: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run(quick: bool, sizes: list[int] | None = None) -> dict[str, Any]:
    n = (sizes or [10_000 if quick else 100_000])[0]
    res = new_result("portable", quick, {"items": n, "dim": DIM, "thumbnail_bytes": 3000,
                                         "stored_originals": "1 in 100, 20 KB"})
    tmp = Path(tempfile.mkdtemp(prefix="imgfind-bench-portable-"))
    try:
        file = tmp / "export.tar"
        base = _child("baseline", tmp / "a", file, 0)
        build = _child("build", tmp / "a", file, n)
        exp = _child("export", tmp / "a", file, n)
        imp = _child("import", tmp / "b", file, n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fig = {"baseline_rss_mb": base["peak_rss_mb"], "build": build, "export": exp,
           "import": imp, "export_items_per_s": round(n / exp["seconds"]),
           "import_items_per_s": round(n / imp["seconds"])}
    res["figures"] = fig
    res["tables"].append(table(
        f"export / import of {n:,} synthetic items (512-d)",
        ["phase", "seconds", "items/s", "peak RSS MB", "file MB"],
        [["open library only", base["seconds"], "", base["peak_rss_mb"], ""],
         ["export", exp["seconds"], fig["export_items_per_s"], exp["peak_rss_mb"],
          round(exp["bytes"] / 2**20, 1)],
         ["import", imp["seconds"], fig["import_items_per_s"], imp["peak_rss_mb"], ""]],
        note="peak RSS of each phase's own process (ru_maxrss)"))
    return res


if __name__ == "__main__":
    phase, home, file, count = sys.argv[1:5]
    if phase == "baseline":
        import imgfind
        t0 = time.perf_counter()
        imgfind.open(home).close()
        result: dict[str, Any] = {"seconds": round(time.perf_counter() - t0, 2),
                                  "peak_rss_mb": round(_rss_mb(), 1)}
    else:
        result = _worker(phase, home, file, int(count))
    print(json.dumps(result))
