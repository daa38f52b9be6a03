"""Changing a collection's model without downtime: two random-weight models of different widths."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import imgfind
from imgfind.errors import AlreadyExists, InvalidInput, ModelMismatch, NotSupported
from imgfind.reembed import staging_store

from .conftest import real_photos
from .contract.helpers import VEC_RTOL
from .test_watch import small_jpegs

NEW_NAME = "imgfind-test-tiny-128d"
#: |dot - 1| for two stored copies of one unit vector: each value is float16 (within
#: 2**-11 relatively, see tests/contract/helpers.py), so the dot is within 2 * 2**-11 of 1
SAME = 2 * VEC_RTOL


@pytest.fixture(scope="session")
def wide_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second random-weight model: other weights, 128-d vectors (the first is 64-d)."""
    from imgfind.testing import make_model

    return make_model(tmp_path_factory.mktemp("models") / "tiny-128", seed=1, dim=128,
                      reference=False)


@pytest.fixture
def col(library, photo_dir):
    c = library.create_collection("photos")
    c.add(photo_dir, show_progress=False)
    with open(real_photos(13)[12], "rb") as f:
        c.insert(f.read(), metadata={"kind": "upload"}, id="stored-1")
    for i, it in enumerate(c.items()):
        c.update(it.id, metadata={"n": i, "tags": ["a", "b"]}, merge=True)
    return c


def snapshot(c) -> dict:
    items = {it.id: it for it in c.items(limit=1000)}
    return {id: (it.source, it.metadata, it.exif, it.file, it.sha256, it.width, it.added,
                 c.thumbnail(id), c.store.original(id)) for id, it in items.items()}


def new_model_vectors(tmp_path, wide_model_dir, images: list[bytes]) -> np.ndarray:
    with imgfind.open(tmp_path / "ref", model_path=wide_model_dir) as lib:
        ref = lib.create_collection("ref")
        ids = [ref.insert(data) for data in images]
        return ref.store.vectors(ids)


def image_bytes(c, id: str) -> bytes:
    return c.image(id)


def test_reembed_switches_model_and_keeps_everything_else(col, wide_model_dir, tmp_path):
    before = snapshot(col)
    assert col.dim == 64
    progress: list[tuple[int, int | None]] = []
    report = col.reembed(model_path=wide_model_dir, batch_size=4,
                         progress=lambda d, t: progress.append((d, t)))
    assert report.switched and report.errors == [] and report.total == 13
    assert report.previous_model == "imgfind-test-tiny" and report.model == NEW_NAME
    assert (col.model, col.dim) == (NEW_NAME, 128)
    assert snapshot(col) == before                 # ids, metadata, blobs: untouched
    assert progress[-1] == (13, 13) and len(progress) >= 4
    ids = sorted(before)
    got = col.store.vectors(ids)
    want = new_model_vectors(tmp_path, wide_model_dir, [image_bytes(col, i) for i in ids])
    assert got.shape == (13, 128)
    assert np.allclose((got * want).sum(axis=1), 1.0, atol=SAME)
    assert col.check()["ok"]
    hits = col.search(like="stored-1", k=13)
    assert len(hits) == 12 and all(h.id in before for h in hits)
    assert col.search("a dog", k=3)                # the new text tower answers
    assert col.reembed_status() is None
    # persisted: a fresh library sees the new model
    with imgfind.open(col.library.home) as lib2:
        c2 = lib2.collection("photos")
        assert (c2.model, c2.dim) == (NEW_NAME, 128)
        assert c2.search(like="stored-1", k=3)[0].id == hits[0].id


def test_searches_use_the_old_model_until_the_switch(col, wide_model_dir):
    seen = []

    def progress(done: int, total: int | None) -> None:
        if 0 < done < (total or 0):
            seen.append((col.dim, len(col.search("a dog", k=5)), col.vector("stored-1").shape))

    report = col.reembed(model_path=wide_model_dir, batch_size=2, progress=progress)
    assert report.switched
    assert seen and all(s == (64, 5, (64,)) for s in seen)


def test_concurrent_inserts_updates_and_searches(col, wide_model_dir, tmp_path):
    extra = small_jpegs(60)
    errors: list[BaseException] = []
    inserted: list[str] = []
    updated: dict[str, bytes] = {}
    searches = [0]
    stop = threading.Event()

    def writer() -> None:
        try:
            for i, data in enumerate(extra[:50]):
                inserted.append(col.insert(data, id=f"new-{i}"))
                if i % 10 == 5:   # replace the image of an existing item
                    target = inserted[0]
                    col.update(target, image=extra[50 + i // 10])
                    updated[target] = extra[50 + i // 10]
                time.sleep(0.01)
        except BaseException as e:
            errors.append(e)

    def searcher() -> None:
        try:
            while not stop.is_set():
                assert col.search("a photo", k=5)
                searches[0] += 1
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer), threading.Thread(target=searcher)]
    for t in threads:
        t.start()
    try:
        report = col.reembed(model_path=wide_model_dir, batch_size=2,
                             progress=lambda d, t: time.sleep(0.02))
    finally:
        threads[0].join(120)
        stop.set()
        threads[1].join(60)
    assert not errors, errors
    assert report.switched
    assert searches[0] > 0
    ids = [it.id for it in col.items(limit=1000)]
    assert len(ids) == 13 + 50 and set(inserted) <= set(ids)
    vecs = col.store.vectors(ids)                   # every item has a new-model vector
    assert vecs.shape == (63, 128)
    # the last insert and the updated item hold vectors of the new model for their image
    last, target = inserted[-1], next(iter(updated))
    want = new_model_vectors(tmp_path, wide_model_dir, [extra[49], updated[target]])
    got = col.store.vectors([last, target])
    assert np.allclose((got * want).sum(axis=1), 1.0, atol=SAME)
    assert col.check()["ok"]


def test_another_handle_follows_the_switch(col, wide_model_dir, tiny_model_dir):
    other_lib = imgfind.open(col.library.home, model_path=tiny_model_dir)
    try:
        other = other_lib.collection("photos")
        assert other.search("a dog", k=3) and other.dim == 64
        old_vec = other.vector("stored-1")
        col.reembed(model_path=wide_model_dir)
        # the other handle's search follows (embedding the query again)...
        assert other.search("a dog", k=3)
        assert other.dim == 128 and other.embedder.dim == 128
        # ... a write of vectors made with the old model is refused...
        from imgfind.stores.base import Record
        with pytest.raises(ModelMismatch):
            other.store.put([Record(id="x", source="/x.jpg", vector=old_vec)])
        # ... and the library API re-embeds with the new model (its folder is recorded)
        new_id = other.insert(small_jpegs(1)[0])
        assert other.vector(new_id).shape == (128,)
    finally:
        other_lib.close()


def test_unreadable_items_block_the_switch_unless_deleted(col, wide_model_dir, photo_dir):
    gone = sorted(photo_dir.iterdir())[0]
    gone.unlink()
    report = col.reembed(model_path=wide_model_dir)
    assert not report.switched and len(report.errors) == 1
    assert report.errors[0]["source"] == str(gone)
    assert col.dim == 64 and col.search("a dog", k=3)
    status = col.reembed_status()
    assert status["model"] == NEW_NAME and status["staged"] == 12 and status["total"] == 13
    report = col.reembed(model_path=wide_model_dir, delete_unreadable=True)
    assert report.switched and report.deleted == 1 and report.embedded == 0
    assert col.count() == 12 and col.dim == 128


def test_cancel_abort_and_conflicts(col, wide_model_dir, tiny_model_dir, tmp_path):
    with pytest.raises(InvalidInput, match="already uses"):
        col.reembed(model_path=tiny_model_dir)
    with pytest.raises(InvalidInput):
        col.reembed()
    cancel = threading.Event()
    report = col.reembed(model_path=wide_model_dir, batch_size=4, cancel=cancel,
                         progress=lambda d, t: cancel.set() if d else None)
    assert report.cancelled and not report.switched
    assert col.reembed_status()["staged"] == 4
    from imgfind.testing import make_model
    third = make_model(tmp_path / "third", seed=2, dim=32, reference=False)
    with pytest.raises(AlreadyExists, match="already being re-embedded"):
        col.reembed(model_path=third)
    assert col.abort_reembed() is True
    assert col.reembed_status() is None and col.abort_reembed() is False
    report = col.reembed(model_path=third)
    assert report.switched and col.dim == 32


def test_a_store_without_staging_refuses():
    with pytest.raises(NotSupported, match="cannot re-embed"):
        staging_store(object())  # type: ignore[arg-type]


# -- the command line -------------------------------------------------------

def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["imgfind", *args], capture_output=True, text=True, timeout=timeout)


def test_cli_kill_9_mid_way_then_resume(tmp_path, tiny_model_dir, wide_model_dir):
    home = tmp_path / "home"
    folder = tmp_path / "many"
    folder.mkdir()
    for i, data in enumerate(small_jpegs(400)):
        (folder / f"m{i:03d}.jpg").write_bytes(data)
    r = run_cli("--home", str(home), "index", str(folder), "--model-path", str(tiny_model_dir),
                "--json")
    assert r.returncode == 0, r.stderr
    with imgfind.open(home) as lib:
        ids_before = sorted(lib.collection().store.ids())
    assert len(ids_before) == 400

    proc = subprocess.Popen(["imgfind", "--home", str(home), "reembed", "--model-path",
                             str(wide_model_dir), "--batch-size", "8", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lib = imgfind.open(home)
    try:
        col = lib.collection()
        deadline = time.monotonic() + 120
        staged = 0
        while time.monotonic() < deadline:
            st = col.reembed_status()
            staged = st["staged"] if st else 0
            if staged >= 40 or proc.poll() is not None:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        assert proc.returncode == -signal.SIGKILL
        st = col.reembed_status()
        assert st is not None and 0 < st["staged"] < 400, st
        staged_at_kill = st["staged"]
        assert col.dim == 64 and col.check()["ok"]       # still the old model, intact
        assert len(col.search("a photo", k=5)) == 5
    finally:
        lib.close()

    r = run_cli("--home", str(home), "reembed", "--status", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["reembed"]["staged"] == staged_at_kill
    r = run_cli("--home", str(home), "reembed", "--model-path", str(wide_model_dir), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["switched"] and report["total"] == 400
    assert report["embedded"] == 400 - staged_at_kill      # resumed, not restarted
    with imgfind.open(home) as lib:
        col = lib.collection()
        assert (col.model, col.dim) == (NEW_NAME, 128)
        assert sorted(col.store.ids()) == ids_before
        assert col.store.vectors(ids_before).shape == (400, 128)
        assert col.check()["ok"]


def test_cli_errors_and_exit_codes(tmp_path, tiny_model_dir, wide_model_dir, photo_dir):
    home = str(tmp_path / "home")
    assert run_cli("--home", home, "index", str(photo_dir), "--model-path",
                   str(tiny_model_dir)).returncode == 0
    r = run_cli("--home", home, "reembed")
    assert r.returncode == 1 and "needs a model" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("--home", home, "reembed", "--model-path", str(tmp_path / "nope"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    r = run_cli("--home", home, "-c", "nosuch", "reembed", "--model-path", str(wide_model_dir))
    assert r.returncode == 1 and "nosuch" in r.stderr
    next(photo_dir.iterdir()).unlink()
    r = run_cli("--home", home, "reembed", "--model-path", str(wide_model_dir))
    assert r.returncode == 3 and "1 items could not be read" in r.stderr
    r = run_cli("--home", home, "reembed", "--status")
    assert r.returncode == 0 and "11 of 12" in r.stdout
    r = run_cli("--home", home, "reembed", "--abort", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"aborted": True}
    r = run_cli("--home", home, "reembed", "--model-path", str(wide_model_dir),
                "--delete-unreadable")
    assert r.returncode == 0 and "switched" in r.stdout


# -- REST job and HTTP client -------------------------------------------------

def test_rest_job_and_client(col, wide_model_dir, tmp_path):
    import httpx

    from imgfind.server import BackgroundServer

    before = snapshot(col)
    with BackgroundServer(col.library, allow_paths=[wide_model_dir.parent],
                          api_key="k") as srv, imgfind.Client(srv.url, api_key="k") as client:
        remote = client.collection("photos")
        assert remote.reembed_status() is None
        # errors: not allowed path, neither/both of model and model_path, unknown field, no key
        auth = {"Authorization": "Bearer k"}
        base = f"{srv.url}/api/collections/photos"
        r = httpx.post(f"{base}/jobs/reembed", json={"model_path": str(tmp_path)}, headers=auth)
        assert r.status_code == 403, r.text
        r = httpx.post(f"{base}/jobs/reembed", json={}, headers=auth)
        assert r.status_code == 400 and "exactly one" in r.json()["error"]["message"]
        r = httpx.post(f"{base}/jobs/reembed", json={"model_path": "x", "bogus": 1},
                       headers=auth)
        assert r.status_code == 422
        r = httpx.post(f"{base}/jobs/reembed", json={"model_path": str(wide_model_dir)})
        assert r.status_code == 401
        r = httpx.post(f"{base}/jobs/reembed", json={"model": "ViT-L-14__openai"},
                       headers=auth)           # not cached, and no --allow-model-download
        assert r.status_code == 403, r.text
        r = httpx.post(f"{srv.url}/api/collections/nope/jobs/reembed",
                       json={"model_path": str(wide_model_dir)}, headers=auth)
        assert r.status_code == 404

        progress: list[tuple[int, int | None]] = []
        report = remote.reembed(model_path=str(wide_model_dir), batch_size=2, poll=0.05,
                                progress=lambda d, t: progress.append((d, t)))
        assert report.switched and report.model == NEW_NAME and report.dim == 128
        assert (remote.model, remote.dim) == (NEW_NAME, 128)
        assert progress[-1] == (13, 13)
        assert client.collection("photos").dim == 128
        assert len(remote.search("a dog", k=4)) == 4
        assert remote.reembed_status() is None and remote.abort_reembed() is False
        job = httpx.get(f"{srv.url}/api/collections/photos", headers=auth).json()
        assert job["dim"] == 128
    assert snapshot(col) == before


def test_writers_embed_with_both_models_while_a_reembed_runs(col, wide_model_dir, tmp_path):
    cancel = threading.Event()
    report = col.reembed(model_path=wide_model_dir, batch_size=4, cancel=cancel,
                         progress=lambda d, t: cancel.set() if d else None)
    assert report.cancelled and col.reembed_status()["staged"] == 4
    extra = small_jpegs(3)
    new_id = col.insert(extra[0], id="while-1")
    col.update("stored-1", image=extra[1])          # staged or not before: current now
    status = col.reembed_status()
    assert status["total"] == 14 and status["staged"] in (5, 6)
    todo = {t.id for t in col.store.staging_todo(100)}
    assert new_id not in todo and "stored-1" not in todo
    # an index run writes both too
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "more.jpg").write_bytes(extra[2])
    assert col.add(folder, show_progress=False).indexed == 1
    after = col.reembed_status()
    assert after["total"] == 15 and after["staged"] == status["staged"] + 1
    # the writer's staged vector is the new model's vector of that image
    report = col.reembed(model_path=wide_model_dir)
    assert report.switched and report.embedded == 15 - after["staged"]
    want = new_model_vectors(tmp_path, wide_model_dir, [extra[0], extra[1]])
    got = col.store.vectors([new_id, "stored-1"])
    assert np.allclose((got * want).sum(axis=1), 1.0, atol=SAME)
