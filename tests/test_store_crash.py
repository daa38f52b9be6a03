"""kill -9 a real writer process at random moments; every committed item must survive.

The writer (this file run as a script) puts batches through the store in a
loop, searches (which folds the new rows into the vector index) and saves the
index often, printing each batch's ids only after the commit returned. The
test kills it at random points; in odd rounds the writer pauses inside the
index save (temp file written, not yet renamed) and says so, and the kill
lands there. Then the store must open, report itself healthy, and find every
reported item by vector search.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DIM = 128
BATCH = 25


def vector_of(id: str) -> np.ndarray:
    """A deterministic random unit vector per id, so the test knows what was written."""
    seed = int.from_bytes(hashlib.sha256(id.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def writer(home: str, round_no: int) -> None:
    from imgfind.stores import CollectionInfo, Record, StoreOptions, open_backend

    if round_no % 2:
        real_fsync = os.fsync

        def slow_fsync(fd: int) -> None:   # only the index save calls os.fsync
            print("in-save", flush=True)
            time.sleep(0.3)
            real_fsync(fd)

        os.fsync = slow_fsync

    backend = open_backend(home, StoreOptions(flat_threshold=1500, save_every=60))
    try:
        store = backend.create(CollectionInfo(name="crash", model="toy", dim=DIM))
    except Exception:   # noqa: BLE001 - created by an earlier round
        store = backend.open("crash")
    batch_no = 0
    while True:
        ids = [f"{round_no}-{batch_no}-{i}" for i in range(BATCH)]
        recs = [Record(id=i, source=f"/crash/{i}.jpg", vector=vector_of(i),
                       metadata={"round": round_no, "batch": batch_no}, thumbnail=b"t" * 500)
                for i in ids]
        if batch_no % 3 == 2:   # replace a few earlier items of this round with the same data
            recs += [Record(id=f"{round_no}-0-{j}", source=f"/crash/{round_no}-0-{j}.jpg",
                            vector=vector_of(f"{round_no}-0-{j}")) for j in range(3)]
        store.put(recs)
        print("ok " + " ".join(ids), flush=True)
        store.search(vector_of(ids[0])[None], 3)
        if batch_no % 4 == 3:
            print("save", flush=True)
            store.flush()
        batch_no += 1


def test_kill_9_at_random_moments_loses_no_committed_item(tmp_path):
    import imgfind
    from imgfind.stores import StoreOptions, open_backend

    home = tmp_path / "home"
    src = str(Path(imgfind.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rng = random.Random(20261121)
    committed: list[str] = []
    orphans = 0
    for round_no in range(7):
        proc = subprocess.Popen([sys.executable, __file__, str(home), str(round_no)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        # Kill after a random number of commits, at a random spot of the loop; odd
        # rounds kill while the writer is inside an index save.
        target = rng.randint(3, 40)
        seen = 0
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("ok "):
                committed.extend(line.split()[1:])
                seen += 1
            if seen >= target and (round_no % 2 == 0 or line.startswith("in-save")):
                time.sleep(rng.uniform(0, 0.004 if round_no % 2 == 0 else 0.1))
                break
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=60)
        committed.extend(x for ln in rest.splitlines() if ln.startswith("ok ")
                         for x in ln.split()[1:])
        assert proc.returncode == -signal.SIGKILL, err
        assert seen >= target, f"writer stopped early: {err}"
        if round_no % 2:
            orphans += len(list((home / "collections" / "crash").glob(".*.tmp")))

    assert len(committed) > 7 * 3 * BATCH
    assert orphans >= 3, "the kills never landed inside an index save"
    backend = open_backend(home, StoreOptions(flat_threshold=1500))
    store = backend.open("crash")
    report = store.check()
    assert report["ok"], report
    assert report["items"] >= len(set(committed)) >= 1500
    assert report["index"]["kind"] == "ivf-sq6"     # the rounds crossed the IVF threshold
    items = store.get(committed)
    assert all(it is not None for it in items), [c for c, it in zip(committed, items,
                                                                    strict=True) if it is None]
    queries = np.stack([vector_of(i) for i in committed])
    hits = store.search(queries, 1)
    missed = [c for c, h in zip(committed, hits, strict=True) if not h or h[0][0] != c]
    assert not missed, f"{len(missed)} committed items not found by their vector: {missed[:5]}"
    assert not list((home / "collections" / "crash").glob(".*.tmp"))
    backend.close()


if __name__ == "__main__":
    writer(sys.argv[1], int(sys.argv[2]))
