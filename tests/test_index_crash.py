"""kill -9 during `imgfind index`: the store still opens, passes check(), keeps every committed
item intact, and re-running the same command completes the job without duplicates."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import imgfind

from .conftest import real_photos


def test_kill_during_index_then_resume(tmp_path, tiny_model_dir):
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = real_photos(160)
    for p in photos:
        os.symlink(p, folder / p.name)
    home = tmp_path / "H"
    cmd = [sys.executable, "-m", "imgfind", "--home", str(home), "index", str(folder),
           "--model-path", str(tiny_model_dir), "--json"]
    rng = random.Random(7)
    counts = []
    for _ in range(3):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait until the first batch is committed, then kill at a random moment
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            db = home / "collections" / "default" / "items.db"
            if db.exists() and _count(home) > 0:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        with imgfind.open(home) as lib:
            col = lib.collection()
            assert col.check()["ok"], col.check()
            n = col.count()
            counts.append(n)
            # every committed item is complete and findable by its own vector
            for item in col.items(limit=5):
                assert col.search(col.vector(item.id), k=1)[0].id == item.id
    assert counts == sorted(counts) and counts[0] > 0

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with imgfind.open(home) as lib:
        col = lib.collection()
        assert col.count() == len(photos)
        sources = [it.source for it in col.items(limit=1000)]
        assert len(set(sources)) == len(sources) == len(photos)
        assert col.check()["ok"]


def _count(home) -> int:
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{home}/collections/default/items.db?mode=ro", uri=True,
                              timeout=1)
        try:
            return con.execute("SELECT count(*) FROM items").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0
