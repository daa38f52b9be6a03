"""The public library API end to end: real SQLite store, real photos, tiny ONNX CLIP model."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imgfind
from imgfind.errors import (
    AlreadyExists,
    InvalidFilter,
    InvalidImage,
    InvalidInput,
    ModelMismatch,
    NotFound,
)

from .conftest import real_photos


@pytest.fixture
def col(library):
    return library.create_collection("default")


def test_collections_lifecycle(library, tiny_model_dir):
    a = library.create_collection("a")
    library.create_collection("b", model="phash")
    names = {c.name: c for c in library.collections()}
    assert set(names) == {"a", "b"}
    assert names["b"].model == "phash" and names["b"].dim == 64
    assert names["a"].model == a.model and names["a"].dim == a.dim
    with pytest.raises(AlreadyExists):
        library.create_collection("a")
    assert library.create_collection("a", exist_ok=True).name == "a"
    library.drop_collection("a")
    assert [c.name for c in library.collections()] == ["b"]
    with pytest.raises(NotFound):
        library.collection("a")


def test_collection_reopens_with_recorded_model(tmp_path, tiny_model_dir, photo_dir):
    with imgfind.open(tmp_path / "h", model_path=tiny_model_dir) as lib:
        col = lib.create_collection("default")
        col.add(photo_dir, show_progress=False)
        want = col.search(Path(photo_dir / sorted(os.listdir(photo_dir))[0]), k=3)
    # no model_path given: the collection remembers its model folder
    with imgfind.open(tmp_path / "h") as lib:
        col = lib.collection()
        got = col.search(Path(photo_dir / sorted(os.listdir(photo_dir))[0]), k=3)
    assert [h.id for h in got] == [h.id for h in want]


def test_insert_get_image_and_metadata(col):
    photo = real_photos(1)[0]
    item_id = col.insert(photo, metadata={"breed": "labrador", "tags": ["a", "b"]})
    item = col.get(item_id)
    assert item.source == str(photo.resolve())
    assert item.metadata == {"breed": "labrador", "tags": ["a", "b"]}
    assert item.format == "JPEG" and item.width and item.height
    assert item.sha256 and len(item.sha256) == 64
    assert item.file["size"] == photo.stat().st_size
    assert item.added and item.stored is False
    assert col.image(item_id) == photo.read_bytes()
    assert Image.open(io.BytesIO(col.thumbnail(item_id))).size[0] <= 256
    v = col.vector(item_id)
    assert v.shape == (col.dim,) and abs(float(np.linalg.norm(v)) - 1) < 1e-4


def test_insert_bytes_and_pil_are_stored(col):
    photo = real_photos(2)[1]
    data = photo.read_bytes()
    a = col.insert(data, id="from-bytes")
    b = col.insert(Image.open(photo), metadata={"k": 1})
    assert a == "from-bytes"
    assert col.get(a).stored and col.image(a) == data
    assert col.get(b).stored and Image.open(io.BytesIO(col.image(b))).size == Image.open(photo).size


def test_insert_batch_isolates_bad_items(col, tmp_path):
    good = real_photos(3)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    truncated = tmp_path / "trunc.jpg"
    truncated.write_bytes(good[0].read_bytes()[:2000])
    items = [good[0], bad, {"image": good[1], "metadata": {"n": 1}}, empty,
             tmp_path / "missing.jpg", truncated, {"image": good[2], "metadata": "nope"}]
    results = col.insert_batch(items)
    assert len(results) == len(items)
    assert [r.ok for r in results] == [True, False, True, False, False, False, False]
    assert all(r.code for r in results if not r.ok)
    assert results[1].code == "invalid_image"
    assert col.count() == 2


def test_insert_errors_are_typed(col, tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"GIF89a garbage")
    with pytest.raises(InvalidImage):
        col.insert(bad)
    with pytest.raises(InvalidInput):
        col.insert(real_photos(1)[0], metadata=["not", "a", "dict"])  # type: ignore[arg-type]


def test_update_and_delete(col):
    p = real_photos(3)
    item_id = col.insert(p[0], metadata={"a": 1})
    before = col.vector(item_id)
    item = col.update(item_id, metadata={"b": 2}, merge=True)
    assert item.metadata == {"a": 1, "b": 2}
    item = col.update(item_id, metadata={"c": 3})
    assert item.metadata == {"c": 3}
    item = col.update(item_id, image=p[1])
    assert item.source == str(p[1].resolve()) and item.metadata == {"c": 3}
    assert not np.allclose(col.vector(item_id), before)
    results = col.update_batch([{"id": item_id, "metadata": {"d": 4}},
                                {"id": "nope", "metadata": {}}, {"id": "nope2", "image": p[2]}])
    assert [r.ok for r in results] == [True, False, False]
    with pytest.raises(NotFound):
        col.update("missing", metadata={"x": 1})
    col.delete(item_id)
    with pytest.raises(NotFound):
        col.get(item_id)
    with pytest.raises(NotFound):
        col.delete(item_id)


def test_delete_batch_and_clear(col):
    ids = [r.id for r in col.insert_batch(real_photos(4))]
    results = col.delete_batch([ids[0], "ghost", ids[1]])
    assert [r.ok for r in results] == [True, False, True]
    assert col.count() == 2
    assert col.clear() == 2
    assert col.count() == 0 and col.search("anything", k=3) == []


def test_search_every_query_kind(col, photo_dir):
    col.add(photo_dir, show_progress=False)
    photos = sorted(photo_dir.iterdir())
    target = photos[3]
    target_id = next(i.id for i in col.items(limit=100) if i.source == str(target.resolve()))
    for query in (target, str(target), target.read_bytes(), Image.open(target),
                  col.vector(target_id)):
        hits = col.search(query, k=5)
        assert hits[0].id == target_id, type(query)
        assert hits[0].score == pytest.approx(1.0, abs=1e-3)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    like = col.search(like=target_id, k=5)
    assert target_id not in [h.id for h in like] and len(like) == 5
    text_hits = col.search("a dog running on the beach", k=4)
    assert len(text_hits) == 4 and all(h.item.source for h in text_hits)
    batch = col.search_batch(["a dog", target, {"like": target_id}], k=3)
    assert len(batch) == 3 and batch[1][0].id == target_id
    with pytest.raises(ModelMismatch):
        col.search(np.ones(col.dim + 1, dtype=np.float32))
    with pytest.raises(InvalidInput):
        col.search("a dog", k=0)
    with pytest.raises(InvalidInput):
        col.search()
    with pytest.raises(NotFound):
        col.search(like="ghost")


def test_filtered_search_returns_k_matches(col, photo_dir):
    col.add(photo_dir, show_progress=False)
    ids = [it.id for it in col.items(limit=100)]
    for n, item_id in enumerate(ids):
        col.set_metadata(item_id, {"group": n % 4, "name": f"photo {n}"})
    png = io.BytesIO()
    Image.open(real_photos(20)[19]).save(png, format="PNG")
    png_id = col.insert(png.getvalue(), metadata={"group": 9})
    hits = col.search("a photo", k=3, where={"group": 2})
    assert len(hits) == 3 and all(h.item.metadata["group"] == 2 for h in hits)
    hits = col.search("a photo", k=50, where={"format": "JPEG"})
    assert len(hits) == len(ids) and png_id not in {h.id for h in hits}
    hits = col.search("a photo", k=5, where={"format": "PNG"})
    assert [h.id for h in hits] == [png_id]
    hits = col.search("x", k=10, where={"$or": [{"group": 0}, {"group": {"$gte": 9}}]})
    assert sorted(h.item.metadata["group"] for h in hits) == [0, 0, 0, 9]
    with pytest.raises(InvalidFilter):
        col.search("x", where={"group": {"$regex": "."}})
    assert col.count({"group": {"$in": [1, 3]}}) == 6


def test_text_search_over_metadata_and_paths(col, photo_dir):
    col.add(photo_dir, show_progress=False)
    first = col.items(limit=1)[0]
    col.set_metadata(first.id, {"caption": "golden retriever puppy in snow"})
    hits = col.text_search("retriever snow")
    assert [h.id for h in hits] == [first.id]
    name = Path(first.source).stem
    assert first.id in [h.id for h in col.text_search(name.split("_")[0])]
    assert col.text_search('"unbalanced AND (') == []


def test_add_incremental(col, photo_dir):
    r1 = col.add(photo_dir, show_progress=False)
    assert (r1.indexed, r1.errors) == (12, [])
    r2 = col.add(photo_dir, show_progress=False)
    assert (r2.indexed, r2.updated, r2.skipped) == (0, 0, 12)
    files = sorted(photo_dir.iterdir())
    old_id = next(i.id for i in col.items(limit=50) if i.source == str(files[0].resolve()))
    old_sha = col.get(old_id).sha256
    shutil.copy(real_photos(1, start=40)[0], files[0])  # changed content, same name
    os.utime(files[0], ns=(time.time_ns(), time.time_ns() + 10**9))
    files[1].unlink()
    shutil.copy(real_photos(1, start=41)[0], photo_dir / "new.jpg")
    (photo_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    r3 = col.add(photo_dir, show_progress=False)
    assert (r3.indexed, r3.updated, r3.removed) == (1, 1, 1)
    assert [e["source"] for e in r3.errors] == [str((photo_dir / "broken.jpg").resolve())]
    assert col.get(old_id).sha256 != old_sha and col.count() == 12
    assert col.search(files[0], k=1)[0].id == old_id


def test_add_skips_exact_duplicates(col, tmp_path):
    folder = tmp_path / "dupes"
    folder.mkdir()
    p = real_photos(2)
    shutil.copy(p[0], folder / "a.jpg")
    shutil.copy(p[0], folder / "b.jpg")
    shutil.copy(p[1], folder / "c.jpg")
    r = col.add(folder, show_progress=False)
    assert (r.indexed, r.duplicates, r.skipped) == (2, 1, 0)
    r = imgfind.open(tmp_path / "h2", model_path=col.info.model_path).create_collection(
        "x").add(folder, skip_duplicates=False, show_progress=False)
    assert r.indexed == 3


def test_add_decodes_in_threads_and_keeps_source_order(col, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for p in real_photos(40):
        os.symlink(p, folder / p.name)
    (folder / "zero.jpg").write_bytes(b"")
    seen = []
    r = col.add(folder, show_progress=False, workers=3, progress=lambda d, t: seen.append((d, t)))
    assert r.indexed == 40 and len(r.errors) == 1
    assert seen[-1] == (41, 41)
    # ids come back in the order the sources were walked, whatever thread decoded them
    assert [Path(col.get(i).source).name for i in r.ids] == sorted(p.name for p in real_photos(40))
    # each vector is its own photo's: searching by a photo finds that photo first
    assert col.search(folder / real_photos(40)[7].name, k=1)[0].id == r.ids[7]
    assert col.check()["ok"]


def test_add_from_a_script_without_main_guard(tmp_path, tiny_model_dir):
    # A plain script calling add() must work: no spawned process pool re-importing it.
    photo_dir = tmp_path / "photos"
    photo_dir.mkdir()
    for p in real_photos(30):
        os.symlink(p, photo_dir / p.name)
    script = tmp_path / "index_photos.py"
    script.write_text(
        "import imgfind, sys\n"
        f"lib = imgfind.open({str(tmp_path / 'home')!r}, model_path={str(tiny_model_dir)!r})\n"
        "col = lib.create_collection('default')\n"
        f"r = col.add({str(photo_dir)!r}, show_progress=False)\n"
        "print(r.indexed, len(r.errors))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["30", "0"]


def test_duplicates_groups(col, tmp_path):
    p = real_photos(3)
    a = col.insert(p[0])
    b = col.insert(p[0].read_bytes(), keep_duplicates=True)
    img = Image.open(p[1])
    c = col.insert(img)
    small = io.BytesIO()
    img.resize((img.width // 2, img.height // 2)).save(small, format="JPEG", quality=70)
    d = col.insert(small.getvalue())
    col.insert(p[2])
    groups = col.duplicates(threshold=0.95)
    exact = [g for g in groups if g.exact]
    near = [g for g in groups if not g.exact]
    assert [sorted(g.ids) for g in exact] == [sorted([a, b])]
    assert any({c, d} <= set(g.ids) for g in near)


def test_phash_collection_finds_near_copies(library):
    col = library.create_collection("hashes", model="phash")
    p = real_photos(6)
    ids = [r.id for r in col.insert_batch(p)]
    img = Image.open(p[2]).resize((250, 180))
    assert col.search(img, k=1)[0].id == ids[2]
    with pytest.raises(InvalidInput):
        col.search("text has no meaning here")


def test_check_and_rebuild(col, photo_dir):
    col.add(photo_dir, show_progress=False)
    report = col.check()
    assert report["ok"] and report["items"] == 12
    summary = col.rebuild()
    assert isinstance(summary, dict)
    assert col.check()["ok"]
