"""One test suite, run on the library Collection and on the HTTP client's Collection.

Each ``col`` test runs twice (``library`` and ``client``) against the same
expectations; the cross tests query one collection both ways and demand the
same hits in the same order, the same items and the same errors.
"""

from __future__ import annotations

import io
import shutil
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
    SourceError,
)
from imgfind.server import BackgroundServer
from imgfind.types import DuplicateGroup, Hit, IndexReport, Item, Result

from .conftest import real_photos
from .contract.helpers import VEC_RTOL


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    root = tmp_path_factory.mktemp("parity")
    (root / "allowed" / "photos").mkdir(parents=True)
    for p in real_photos(10):
        shutil.copy(p, root / "allowed" / "photos" / p.name)
    lib = imgfind.open(root / "home", model_path=tiny_model_dir)
    with BackgroundServer(lib, allow_paths=[root / "allowed"]) as srv:
        client = imgfind.Client(srv.url)
        yield {"lib": lib, "client": client, "photos": root / "allowed" / "photos"}
        client.close()
    lib.close()


@pytest.fixture(params=["library", "client"])
def side(request, env):
    return env["lib"] if request.param == "library" else env["client"]


@pytest.fixture
def col(side):
    return side.create_collection(f"c{time.monotonic_ns()}")


def jpeg(i: int) -> bytes:
    return real_photos(i + 1)[i].read_bytes()


# -- the shared suite -------------------------------------------------------------------------

def test_collections(side) -> None:
    name = f"k{time.monotonic_ns()}"
    created = side.create_collection(name)
    assert created.name == name and created.dim > 0
    with pytest.raises(AlreadyExists):
        side.create_collection(name)
    assert side.create_collection(name, exist_ok=True).name == name
    assert name in [c.name for c in side.collections()]
    assert side.collection(name).model == created.model
    side.drop_collection(name)
    with pytest.raises(NotFound):
        side.collection(name)


def test_insert_get_update_delete(col) -> None:
    a = col.insert(jpeg(0), metadata={"a": 1})
    item = col.get(a)
    assert isinstance(item, Item) and item.metadata == {"a": 1} and item.format == "JPEG"
    assert item.stored and item.source.startswith("upload:")
    assert col.insert(real_photos(2)[1], id="fixed") == "fixed"
    pil = Image.open(io.BytesIO(jpeg(2))).convert("RGB")
    assert col.get(col.insert(pil)).format == "PNG"
    assert col.count() == 3 and len(col) == 3

    assert col.update("fixed", metadata={"b": 2}, merge=True).metadata == {"b": 2}
    assert col.set_metadata("fixed", {"c": 3}).metadata == {"c": 3}
    assert col.set_metadata("fixed", {"d": 4}, merge=True).metadata == {"c": 3, "d": 4}
    before = col.get("fixed").sha256
    updated = col.update("fixed", image=jpeg(3))
    assert updated.sha256 != before and updated.metadata == {"c": 3, "d": 4}

    assert col.image(a) == jpeg(0)
    assert col.thumbnail(a)[:3] == b"\xff\xd8\xff"  # JPEG
    v = col.vector(a)
    assert v.shape == (col.dim,) and v.dtype == np.float32
    # a stored vector is float16 (tests/contract/helpers.py): its norm within 2**-11 of 1
    assert float(np.linalg.norm(v)) == pytest.approx(1.0, abs=VEC_RTOL)

    col.delete(a)
    with pytest.raises(NotFound):
        col.get(a)
    assert col.clear() == 2 and col.count() == 0


@pytest.mark.parametrize("call, error", [
    (lambda c: c.get("ghost"), NotFound),
    (lambda c: c.delete("ghost"), NotFound),
    (lambda c: c.image("ghost"), NotFound),
    (lambda c: c.thumbnail("ghost"), NotFound),
    (lambda c: c.vector("ghost"), NotFound),
    (lambda c: c.update("ghost", metadata={}), NotFound),
    (lambda c: c.set_metadata("ghost", {}), NotFound),
    (lambda c: c.insert(b"definitely not an image"), InvalidImage),
    (lambda c: c.insert("/no/such/file.jpg"), SourceError),
    (lambda c: c.insert(12345), InvalidInput),
    (lambda c: c.insert(jpeg(0), metadata=[1, 2]), InvalidInput),
    (lambda c: c.insert(jpeg(0), id=""), InvalidInput),
    (lambda c: c.search(), InvalidInput),
    (lambda c: c.search("a dog", like="ghost"), NotFound),  # text and like combine
    (lambda c: c.search(""), InvalidInput),
    (lambda c: c.search("a dog", k=0), InvalidInput),
    (lambda c: c.search("a dog", k=2.5), InvalidInput),
    (lambda c: c.search(np.ones(3, dtype=np.float32)), ModelMismatch),
    (lambda c: c.search(like="ghost"), NotFound),
    (lambda c: c.search("a dog", where={"$bogus": 1}), InvalidFilter),
    (lambda c: c.search("a dog", where={"width": {"$gt": "wide"}}), InvalidFilter),
    (lambda c: c.search({"text": "a", "like": "b"}), InvalidInput),
    (lambda c: c.search(b"not an image"), InvalidImage),
    (lambda c: c.search_batch(["a dog"], k=-1), InvalidInput),
    (lambda c: c.text_search(""), InvalidInput),
    (lambda c: c.duplicates(threshold=2), InvalidInput),
    (lambda c: c.count(where={"$or": 1}), InvalidFilter),
])
def test_same_errors(col, call, error) -> None:
    with pytest.raises(error):
        call(col)


def test_batches_report_each_item(col) -> None:
    results = col.insert_batch([
        jpeg(0), b"junk", "/no/such.jpg", {"image": jpeg(1), "id": "x", "metadata": {"k": 1}},
        {"image": jpeg(2), "metadata": [1]}, {"metadata": {}},
    ])
    assert all(isinstance(r, Result) for r in results)
    assert [r.code for r in results] == [None, "invalid_image", "source_error", None,
                                         "invalid_input", "invalid_input"]
    assert results[3].id == "x" and results[0].id and results[0].ok
    assert col.count() == 2
    results = col.update_batch([{"id": "x", "metadata": {"k": 2}},
                                {"id": "ghost", "metadata": {}}, {"metadata": {}},
                                {"id": "x", "image": b"junk"}])
    assert [r.code for r in results] == [None, "not_found", "invalid_input", "invalid_image"]
    assert col.get("x").metadata == {"k": 2}
    results = col.delete_batch(["x", "ghost"])
    assert [r.ok for r in results] == [True, False] and [r.id for r in results] == ["x", "ghost"]


def test_search_listing_and_health(col) -> None:
    photos = real_photos(8)
    ids = [col.insert(p.read_bytes(), metadata={"n": i, "odd": i % 2 == 1}, id=f"p{i}")
           for i, p in enumerate(photos)]
    assert [h.id for h in col.search(photos[0], k=1)] == ["p0"]
    assert col.search(str(photos[0]), k=1)[0].id == "p0"
    assert col.search(photos[0].read_bytes(), k=1)[0].id == "p0"
    assert col.search(Image.open(photos[0]), k=1)[0].id == "p0"
    assert col.search(col.vector("p5"), k=1)[0].id == "p5"
    like = col.search(like="p0", k=3)
    assert len(like) == 3 and "p0" not in [h.id for h in like]
    hits = col.search("a dog on the grass", k=8, where={"odd": True})
    assert all(isinstance(h, Hit) for h in hits)
    assert {h.id for h in hits} == {"p1", "p3", "p5", "p7"}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    batch = col.search_batch(["a dog", photos[2], {"like": "p1"}, col.vector("p4")], k=2)
    assert [len(b) for b in batch] == [2, 2, 2, 2]
    assert batch[1][0].id == "p2" and batch[3][0].id == "p4"
    assert col.search_batch([], k=3) == []

    assert [i.id for i in col.items(limit=3, offset=2)] == ids[2:5]
    assert [i.id for i in col.items(where={"n": {"$gte": 6}})] == ["p6", "p7"]
    assert col.count({"odd": False}) == 4
    col.set_metadata("p3", {"caption": "zebra crossing"})
    assert [h.id for h in col.text_search("zebra")] == ["p3"]

    col.insert(photos[0].read_bytes(), id="again")
    groups = col.duplicates(0.99)
    assert all(isinstance(g, DuplicateGroup) for g in groups)
    assert any(sorted(g.ids) == ["again", "p0"] and g.exact for g in groups)
    assert col.check()["ok"] is True
    assert isinstance(col.rebuild(), dict) and col.check()["ok"] is True


def test_add_indexes_a_folder(col, env) -> None:
    seen: list[tuple[int, int | None]] = []
    report = col.add(env["photos"], progress=lambda d, t: seen.append((d, t)))
    assert isinstance(report, IndexReport)
    assert (report.indexed, report.skipped, report.errors) == (10, 0, [])
    assert seen and seen[-1] == (10, 10)
    assert col.count() == 10
    again = col.add(env["photos"])
    assert (again.indexed, again.skipped) == (0, 10)


# -- the same collection, both ways -----------------------------------------------------------

@pytest.fixture(scope="module")
def pair(env):
    lib, client = env["lib"], env["client"]
    name = f"pair{time.monotonic_ns()}"
    local = lib.create_collection(name)
    local.add(env["photos"])
    for i, item in enumerate(local.items()):
        local.set_metadata(item.id, {"i": i, "half": "a" if i < 5 else "b",
                                     "caption": f"photo number {i}"})
    return local, client.collection(name)


def queries(env, local) -> list:
    photo = sorted(env["photos"].glob("*.jpg"))[3]
    some_id = local.items(limit=1, offset=7)[0].id
    return ["a dog running on the beach", "two people", str(photo), photo,
            photo.read_bytes(), Image.open(photo), local.vector(some_id),
            local.vector(some_id).tolist(), {"like": some_id}, {"text": "a red car"},
            {"image": photo}]


@pytest.mark.parametrize("where", [None, {"half": "b"}, {"i": {"$in": [1, 4, 8]}}])
def test_same_hits_in_the_same_order(env, pair, where) -> None:
    local, remote = pair
    for q in queries(env, local):
        a = local.search_batch([q], k=5, where=where)[0]
        b = remote.search_batch([q], k=5, where=where)[0]
        assert [h.id for h in a] == [h.id for h in b], q
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-6)
        assert [h.item for h in a] == [h.item for h in b]
    all_a = local.search_batch(queries(env, local), k=4, where=where)
    all_b = remote.search_batch(queries(env, local), k=4, where=where)
    assert [[h.id for h in x] for x in all_a] == [[h.id for h in x] for x in all_b]
    assert local.search("a dog", k=5, where=where) == remote.search("a dog", k=5, where=where)


def test_same_reads(pair) -> None:
    local, remote = pair
    assert local.items(limit=1000) == remote.items(limit=1000)
    assert local.items(where={"half": "a"}, limit=3, offset=1) == \
        remote.items(where={"half": "a"}, limit=3, offset=1)
    assert local.count() == remote.count() and local.count({"half": "b"}) == \
        remote.count({"half": "b"})
    some = local.items(limit=1, offset=2)[0].id
    assert local.get(some) == remote.get(some)
    assert np.array_equal(local.vector(some), remote.vector(some))
    assert local.image(some) == remote.image(some)
    assert local.thumbnail(some) == remote.thumbnail(some)
    assert local.text_search("number", k=20) == remote.text_search("number", k=20)
    assert local.duplicates(0.9) == remote.duplicates(0.9)
    assert (local.name, local.model, local.dim) == (remote.name, remote.model, remote.dim)
    assert local.check()["ok"] == remote.check()["ok"] is True
