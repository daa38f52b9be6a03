"""Folders that index themselves: real file operations under a running Watcher."""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from imgfind.errors import InvalidInput, SourceError
from imgfind.watch import Watcher

from .conftest import real_photos


def small_jpegs(n: int, seed_photos: int = 40) -> list[bytes]:
    """``n`` distinct small JPEGs cut from real photos (different crops, so different bytes)."""
    bases = [Image.open(p).convert("RGB").resize((160, 120)) for p in real_photos(seed_photos)]
    out = []
    for i in range(n):
        base = bases[i % len(bases)]
        k = i // len(bases)
        x, y = k % 10 * 8, k // 10 % 8 * 8
        buf = io.BytesIO()
        base.crop((x, y, x + 64, y + 48)).save(buf, format="JPEG", quality=80)
        out.append(buf.getvalue())
    assert len(set(out)) == n
    return out


def wait_for(cond, timeout: float = 60.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def by_source(col) -> dict[str, str]:
    return {it.source: it.id for it in col.items(limit=10_000)}


@pytest.fixture
def col(library):
    return library.create_collection("watched")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "inbox"
    d.mkdir()
    return d


def test_thousand_files_copied_in_at_once(col, folder, tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    for i, data in enumerate(small_jpegs(1000)):
        (staging / f"img{i:04d}.jpg").write_bytes(data)
    batches = []
    with Watcher(col, [folder], settle=0.5, debounce=0.2, rescan=None,
                 on_batch=batches.append) as w:
        assert w.wait_idle(30)
        for p in sorted(staging.iterdir()):
            shutil.copy(p, folder / p.name)
        wait_for(lambda: col.count() == 1000, 180, "1000 items")
        assert w.wait_idle(30)
    assert w.stats.errors == []
    assert w.stats.indexed == 1000
    # debounced and batched: far fewer rounds of work than files
    assert 1 <= len(batches) <= 100
    assert set(by_source(col)) == {str(folder / p.name) for p in staging.iterdir()}


def test_rename_move_change_and_delete(col, folder):
    data = small_jpegs(4)
    sub = folder / "sub"
    sub.mkdir()
    for i, d in enumerate(data[:3]):
        (sub / f"p{i}.jpg").write_bytes(d)
    with Watcher(col, [folder], settle=0.3, debounce=0.2, rescan=None) as w:
        wait_for(lambda: col.count() == 3, 60, "3 items")
        before = by_source(col)
        old_vec = col.vector(before[str(sub / "p0.jpg")])

        # rename a file: same id, new path, vector untouched
        os.rename(sub / "p0.jpg", sub / "renamed.jpg")
        wait_for(lambda: str(sub / "renamed.jpg") in by_source(col), 30, "rename")
        assert by_source(col)[str(sub / "renamed.jpg")] == before[str(sub / "p0.jpg")]
        item = col.get(before[str(sub / "p0.jpg")])
        assert item.file["name"] == "renamed.jpg"
        assert (col.vector(item.id) == old_vec).all()

        # move the whole folder: every id kept
        os.rename(sub, folder / "moved")
        wait_for(lambda: all(s.startswith(str(folder / "moved")) for s in by_source(col)),
                 30, "folder move")
        assert sorted(by_source(col).values()) == sorted(before.values())
        assert col.count() == 3

        # change a file's content: same id, new sha256
        target = folder / "moved" / "p1.jpg"
        kept = by_source(col)[str(target)]
        old_sha = col.get(kept).sha256
        target.write_bytes(data[3])
        wait_for(lambda: col.get(kept).sha256 != old_sha, 30, "update")
        assert col.get(kept).file["size"] == len(data[3])
        assert by_source(col)[str(target)] == kept

        # delete a file, then a folder
        (folder / "moved" / "p2.jpg").unlink()
        wait_for(lambda: col.count() == 2, 30, "delete")
        shutil.rmtree(folder / "moved")
        wait_for(lambda: col.count() == 0, 30, "folder delete")
        assert w.wait_idle(10)
    assert w.stats.errors == []


def test_slow_writer_is_not_indexed_half_written(col, folder):
    data = small_jpegs(1)[0]      # written in 6 slow pieces
    seen_partial = []
    # settle (2 s) well above the writer's pauses (0.4 s), with margin for a loaded machine
    with Watcher(col, [folder], settle=2.0, debounce=0.2, rescan=None) as w:
        assert w.wait_idle(30)
        path = folder / "slow.jpg"
        step = len(data) // 6 + 1
        with open(path, "wb") as f:
            for i in range(0, len(data), step):
                f.write(data[i:i + step])
                f.flush()
                time.sleep(0.4)
                seen_partial.append(col.count())
        wait_for(lambda: col.count() == 1, 30, "the finished file")
        assert w.wait_idle(10)
    assert seen_partial == [0] * len(seen_partial)
    assert w.stats.errors == []
    import hashlib
    assert col.items()[0].sha256 == hashlib.sha256(data).hexdigest()


def test_catch_up_on_start_keeps_ids_of_moved_files(col, folder):
    data = small_jpegs(4)
    for i, d in enumerate(data[:3]):
        (folder / f"a{i}.jpg").write_bytes(d)
    with Watcher(col, [folder], settle=0.2, rescan=None) as w:
        wait_for(lambda: col.count() == 3, 60, "3 items")
        assert w.wait_idle(10)
    ids = by_source(col)
    # while nothing watches: a rename, a delete, a new file
    os.rename(folder / "a0.jpg", folder / "b0.jpg")
    (folder / "a1.jpg").unlink()
    (folder / "new.jpg").write_bytes(data[3])
    with Watcher(col, [folder], settle=0.2, rescan=None) as w:
        wait_for(lambda: set(by_source(col)) == {str(folder / n) for n in
                                                 ("b0.jpg", "a2.jpg", "new.jpg")},
                 60, "catch-up")
        assert w.wait_idle(10)
    now = by_source(col)
    assert now[str(folder / "b0.jpg")] == ids[str(folder / "a0.jpg")]
    assert now[str(folder / "a2.jpg")] == ids[str(folder / "a2.jpg")]
    assert w.stats.moved == 1 and w.stats.removed == 1 and w.stats.indexed == 1


def test_a_failed_batch_is_retried(col, folder, monkeypatch):
    from imgfind.errors import StoreError

    real_add, calls = col.add, []

    def flaky_add(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise StoreError("collection 'watched' stayed locked by another writer for 30 s")
        return real_add(*args, **kwargs)

    monkeypatch.setattr(col, "add", flaky_add)
    with Watcher(col, [folder], settle=0.2, debounce=0.1, rescan=None) as w:
        (folder / "x.jpg").write_bytes(small_jpegs(1)[0])
        wait_for(lambda: col.count() == 1, 30, "the retried batch")
        assert w.wait_idle(10)
    assert len(calls) == 2


def test_periodic_rescan_without_events(col, folder):
    data = small_jpegs(2)
    with Watcher(col, [folder], settle=0.2, rescan=0.5, events=False) as w:
        assert w.wait_idle(30)
        (folder / "x.jpg").write_bytes(data[0])
        wait_for(lambda: col.count() == 1, 30, "rescan to find the file")
        (folder / "x.jpg").unlink()
        wait_for(lambda: col.count() == 0, 30, "rescan to find the deletion")


def test_ignores_hidden_and_non_images_and_reports_bad_files(col, folder):
    data = small_jpegs(1)[0]
    with Watcher(col, [folder], settle=0.2, debounce=0.1, rescan=None) as w:
        (folder / ".hidden.jpg").write_bytes(data)
        (folder / "notes.txt").write_text("not an image")
        (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
        (folder / "good.jpg").write_bytes(data)
        (folder / "no-extension").write_bytes(small_jpegs(2)[1])   # an image by content
        wait_for(lambda: col.count() == 2 and len(w.stats.errors) == 1, 30, "two items")
        assert w.wait_idle(10)
    assert sorted(Path(it.source).name for it in col.items()) == ["good.jpg", "no-extension"]
    assert w.stats.errors[0]["source"].endswith("broken.jpg")


def test_bad_arguments(col, folder, tmp_path):
    with pytest.raises(SourceError):
        Watcher(col, [tmp_path / "nope"])
    with pytest.raises(InvalidInput):
        Watcher(col, [])
    with pytest.raises(InvalidInput):
        Watcher(col, [folder], settle=-1)
    with pytest.raises(InvalidInput):
        Watcher(col, [folder], rescan=0)


def test_cli_watch_runs_until_interrupted(tmp_path, folder, tiny_model_dir):
    import json
    import signal
    import subprocess
    import threading

    home = tmp_path / "home"
    proc = subprocess.Popen(
        ["imgfind", "--home", str(home), "watch", str(folder), "--model-path",
         str(tiny_model_dir), "--settle", "0.3", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[dict] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        for i, data in enumerate(small_jpegs(3)):
            (folder / f"c{i}.jpg").write_bytes(data)
        wait_for(lambda: sum(x.get("indexed", 0) for x in lines) == 3, 90, "3 indexed")
        (folder / "c0.jpg").unlink()
        wait_for(lambda: sum(x.get("removed", 0) for x in lines) == 1, 30, "1 removed")
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(60)
        reader.join(10)
    assert rc == 0, proc.stderr.read() if proc.stderr else ""
    assert lines[-1]["event"] == "stopped"
    assert lines[-1]["indexed"] == 3 and lines[-1]["removed"] == 1
    import imgfind
    with imgfind.open(home) as lib:
        assert lib.collection().count() == 2


def test_cli_watch_bad_folder_exits_1(tmp_path, tiny_model_dir):
    import subprocess

    proc = subprocess.run(["imgfind", "--home", str(tmp_path / "h"), "watch",
                           str(tmp_path / "missing"), "--model-path", str(tiny_model_dir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "cannot watch" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_watch_indexes_into_the_served_collection(tmp_path, folder, tiny_model_dir):
    import socket
    import subprocess

    import imgfind

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = small_jpegs(3)
    (folder / "before.jpg").write_bytes(data[0])      # there before the server starts
    proc = subprocess.Popen(
        ["imgfind", "--home", str(tmp_path / "home"), "-c", "inbox", "serve", "--port",
         str(port), "--model-path", str(tiny_model_dir), "--watch", str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def count() -> int:
            try:
                with imgfind.Client(url) as client:
                    return client.collection("inbox").count()
            except imgfind.errors.ImgfindError:    # not up yet, or no collection yet
                assert proc.poll() is None
                return -1

        wait_for(lambda: count() == 1, 90, "start-up catch-up")
        (folder / "new.jpg").write_bytes(data[1])
        wait_for(lambda: count() == 2, 30, "the new file through the server")
        (folder / "before.jpg").unlink()
        wait_for(lambda: count() == 1, 30, "the deletion through the server")
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    # uvicorn re-raises SIGTERM once it has shut down cleanly
    assert proc.returncode in (0, -15), out
    assert b"Application shutdown complete" in out
