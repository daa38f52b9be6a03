"""The Milvus store on real Milvus Lite (embedded file and local gRPC server).

Filters are checked against the SQLite store on the same items: one filter
language, two backends, the same answers.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from imgfind.errors import AlreadyExists, InvalidFilter, NotFound
from imgfind.stores.base import CollectionInfo, Record
from imgfind.stores.sqlite import SQLiteBackend
from tests.contract.helpers import SCORE_TOL
from tests.milvus_util import milvus_server, needs_milvus

pytestmark = needs_milvus

DIM = 8


def _records(n: int = 30, seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        mixed = [f"s{i}", i + 10, None, ["x", f"t{i % 3}"], 2.5][i % 5]
        meta = {"n": i, "group": f"g{i % 4}", "flag": i % 3 == 0, "mixed": mixed,
                "tags": ["beach", "dog"] if i % 2 else ["city"], "note": f"Photo of it {i}"}
        if i % 7 == 0:
            meta.pop("group")
        out.append(Record(
            id=f"item-{i:02d}", source=f"/photos/{'dogs' if i % 2 else 'cats'}/Pic_{i}.jpg",
            vector=rng.standard_normal(DIM).astype(np.float32), metadata=meta,
            exif={"Make": "Canon" if i % 3 else "Nikon", "GPS": {"Lat": i * 1.5}},
            file={"name": f"Pic_{i}.jpg", "size": 1000 + i, "mtime_ns": 10**18 + i},
            width=None if i % 6 == 5 else 100 + i, height=50, format=None if i % 8 == 7 else
            ("JPEG" if i % 2 else "PNG"), sha256=f"{i:064x}", taken=f"2023-01-{i % 28 + 1:02d}",
            thumbnail=f"thumb {i}".encode(), original=b"orig" if i % 10 == 0 else None))
    return out


@pytest.fixture(scope="module")
def server_port(tmp_path_factory: pytest.TempPathFactory):
    with milvus_server(tmp_path_factory.mktemp("milvus-srv")) as port:
        yield port


@pytest.fixture(scope="module", params=["file", "server"])
def backend(request, tmp_path_factory: pytest.TempPathFactory):
    from imgfind.stores.milvus import MilvusBackend

    d = tmp_path_factory.mktemp(f"milvus-{request.param}")
    uri = (str(d / "m.db") if request.param == "file"
           else f"http://127.0.0.1:{request.getfixturevalue('server_port')}")
    b = MilvusBackend(uri, blobs=str(d / "blobs"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def filled(backend):
    """(milvus store, sqlite store) holding the same 30 items."""
    import tempfile

    info = CollectionInfo(name="photos.v1", model="toy", dim=DIM)
    store = backend.create(info)
    store.put(_records())
    sq = SQLiteBackend(tempfile.mkdtemp(prefix="sqlite-ref-"))
    ref = sq.create(info)
    ref.put(_records())
    yield store, ref
    sq.close()
    backend.drop("photos.v1")


FILTERS = [
    {"group": "g1"}, {"n": {"$gt": 10, "$lte": 20}}, {"n": {"$ne": 3}},
    {"group": {"$ne": "g1"}}, {"group": {"$in": ["g1", "g2"]}}, {"group": {"$nin": ["g1"]}},
    {"group": {"$exists": False}}, {"group": {"$exists": True}}, {"group": None},
    {"mixed": {"$gt": 5}}, {"mixed": {"$gte": "s"}}, {"mixed": "s5"}, {"mixed": 20},
    {"mixed": {"$exists": True}}, {"mixed": {"$contains": "x"}}, {"mixed": {"$contains": "s1"}},
    {"mixed": {"$in": [None, 21, "s0"]}}, {"mixed": {"$nin": [None, 2.5]}},
    {"tags": {"$contains": "dog"}}, {"tags": {"$contains": "do"}}, {"flag": True},
    {"flag": False}, {"flag": {"$ne": True}}, {"exif.Make": "Canon"},
    {"exif.GPS.Lat": {"$lt": 10}}, {"file.size": {"$gte": 1020}}, {"file.name": "Pic_3.jpg"},
    {"width": {"$gte": 110}}, {"width": None}, {"width": {"$exists": False}},
    {"width": {"$ne": 101}}, {"width": {"$in": [101, 102, None]}},
    {"width": {"$nin": [101, 102]}}, {"format": "JPEG"}, {"format": {"$ne": "JPEG"}},
    {"format": {"$in": ["PNG"]}}, {"format": {"$exists": False}},
    {"source": {"$contains": "dogs/"}},
    {"source": {"$contains": "Pic_1"}}, {"taken": {"$gte": "2023-01-10"}},
    {"stored": 1}, {"stored": True}, {"id": {"$in": ["item-01", "item-02"]}},
    {"$or": [{"group": "g1"}, {"exif.Make": "Nikon"}]},
    {"$and": [{"n": {"$gte": 5}}, {"$not": {"group": "g2"}}]},
    {"$not": {"$or": [{"width": {"$lt": 110}}, {"format": "PNG"}]}},
    {"n": {"$not": {"$gt": 5}}}, {"group": {"$in": []}}, {"group": {"$nin": []}},
    {"note": {"$contains": "of it 1"}}, {}, {"nothing.here": {"$ne": 1}},
    # Milvus Lite is loose on these (JSON true == 1, LIKE wildcards in JSON): the store
    # narrows its answer in Python.
    {"flag": 1}, {"flag": {"$gte": 0}}, {"flag": {"$in": [1, "x"]}}, {"n": 1}, {"n": {"$lt": 1}},
    {"n": {"$ne": 0}}, {"$not": {"flag": {"$nin": [True]}}}, {"note": {"$contains": "o_ i"}},
    {"note": {"$contains": "%"}}, {"tags": {"$contains": 1}},
    {"$or": [{"flag": {"$ne": 0}}, {"n": {"$gt": 25}}]},
]


@pytest.mark.parametrize("where", FILTERS, ids=[str(f) for f in FILTERS])
def test_filters_match_the_sqlite_store(filled, where):
    store, ref = filled
    assert sorted(store.ids(where)) == sorted(ref.ids(where))
    assert store.count(where) == ref.count(where)


def test_filter_errors_are_typed(filled):
    store, _ = filled
    with pytest.raises(InvalidFilter):
        store.count({"width": "wide"})
    with pytest.raises(InvalidFilter):
        store.count({"group": {"$regex": "g"}})
    # Control characters have no escape in Milvus literals: checked in Python instead.
    assert store.count({"note": {"$contains": "tab\there"}}) == 0
    assert store.count({"note": {"$ne": "tab\there"}}) == 30
    # A value that looks like expression syntax stays a value.
    assert store.count({"group": 'g1" or id != "'}) == 0


def test_get_put_keep_every_fact(filled):
    store, ref = filled
    ids = ["item-03", "item-05", "nope"]
    got, want = store.get(ids), ref.get(ids)
    assert got[2] is None
    for g, w in zip(got[:2], want[:2]):
        assert g is not None and w is not None
        for f in ("id", "source", "metadata", "exif", "file", "width", "height", "format",
                  "sha256", "taken", "stored"):
            assert getattr(g, f) == getattr(w, f), f
    v = store.vectors(["item-03"])
    assert v.shape == (1, DIM) and abs(float(np.linalg.norm(v[0])) - 1) < 1e-5
    with pytest.raises(NotFound):
        store.vectors(["item-03", "nope"])


def test_listing_order_and_paging(filled):
    store, ref = filled
    assert store.ids() == ref.ids()
    assert store.ids(limit=5, offset=3) == ref.ids()[3:8]
    assert store.ids({"format": "JPEG"}, limit=2) == ref.ids({"format": "JPEG"}, limit=2)


@pytest.mark.parametrize("sort", ["taken", "-taken", "added", "-added"])
def test_listing_sorts_like_the_sqlite_store(filled, sort):
    store, ref = filled
    assert store.ids(sort=sort) == ref.ids(sort=sort)
    assert store.ids({"format": "JPEG"}, limit=4, offset=2, sort=sort) == \
        ref.ids({"format": "JPEG"}, limit=4, offset=2, sort=sort)


def test_search_returns_nearest_with_fields_and_k_whenever_k_match(filled):
    store, ref = filled
    q = _records()[4].vector
    hits = store.search(q, 5)[0]
    assert [i for i, _ in hits] == [i for i, _ in ref.search(q, 5)[0]]
    assert hits[0][0] == "item-04" and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    # The hits' fields came back with the search: get answers without another query.
    assert [it.id for it in store.get([h[0] for h in hits])] == [h[0] for h in hits]
    for where in ({"group": "g3"}, {"n": {"$in": [1, 29]}}, {"format": None}, {"flag": True},
                  {"note": {"$contains": "1_"}}):
        n = ref.count(where)
        got = store.search(q, 10, where=where)[0]
        assert len(got) == min(10, n)
        assert {i for i, _ in got} <= set(ref.ids(where))
    got = store.search(q, 3, exclude=["item-04"])[0]
    assert "item-04" not in [i for i, _ in got] and len(got) == 3


def test_filtered_search_scores_matches_exactly_when_the_index_misses_some(filled,
                                                                         monkeypatch):
    """HNSW can miss a few of very few matching rows; the store then scores them exactly."""
    store, ref = filled
    q = _records()[4].vector
    where = {"group": {"$in": ["g1", "g2"]}}
    monkeypatch.setattr(store, "_ann", lambda q, k, plan, params: [[] for _ in q])
    got = store.search(q, 5, where=where)[0]
    # Milvus keeps float32 vectors, the SQLite reference float16 (tests/contract/helpers.py)
    assert got == [(i, pytest.approx(s, abs=SCORE_TOL))
                   for i, s in ref.search(q, 5, where=where)[0]]
    assert [it.id for it in store.get([i for i, _ in got])] == [i for i, _ in got]


def test_text_search_finds_file_name_words_case_insensitively(filled):
    store, _ = filled
    assert [i for i, _ in store.text_search("pic_7")][:1] == ["item-07"]
    hits = store.text_search("DOGS beach", k=50)
    assert {i for i, _ in hits} == {f"item-{i:02d}" for i in range(1, 30, 2)}
    assert store.text_search("nikon", k=3, where={"n": {"$gt": 20}})
    assert all(i in {"item-21", "item-24", "item-27"}
               for i, _ in store.text_search("nikon", where={"n": {"$gt": 20}}))
    assert store.text_search("zebra") == []
    assert store.text_search("***") == []


def test_by_sha256_and_source_states(filled):
    store, ref = filled
    hashes = [f"{i:064x}" for i in (1, 2, 99)]
    assert store.by_sha256(hashes) == ref.by_sha256(hashes)
    assert store.source_states("/photos/dogs/") == ref.source_states("/photos/dogs/")
    assert store.source_states("/photos/cats/Pic_1") == ref.source_states("/photos/cats/Pic_1")
    # LIKE wildcards in a prefix are plain characters.
    assert store.source_states("/photos/%") == {}
    assert len(store.source_states()) == 30


def test_blobs_are_content_addressed_and_checked(backend, tmp_path):
    store = backend.create(CollectionInfo(name="blobs", model="toy", dim=DIM))
    try:
        recs = _records(3)
        recs[1].thumbnail = recs[0].thumbnail    # same bytes: one blob
        store.put(recs)
        assert store.thumbnail("item-00") == b"thumb 0"
        assert store.original("item-00") == b"orig" and store.original("item-01") is None
        with pytest.raises(NotFound):
            store.thumbnail("nope")
        assert store.check()["ok"]
        # Remove one blob behind the store's back: check says so.
        root = Path(backend.blobs.root)
        import hashlib
        key = hashlib.sha256(b"thumb 2").hexdigest()
        (root / key[:2] / key).unlink()
        report = store.check()
        assert not report["ok"] and "missing" in report["problems"][0]
        assert report["backend"] == "milvus" and report["details"]["blobs_missing"] == 1
    finally:
        backend.drop("blobs")


def test_crud_replace_delete_clear(backend):
    store = backend.create(CollectionInfo(name="crud", model="toy", dim=DIM))
    try:
        recs = _records(6)
        store.put(recs)
        with pytest.raises(AlreadyExists):
            backend.create(CollectionInfo(name="crud", model="toy", dim=DIM))
        first = store.get(["item-02"])[0]
        recs[2].metadata = {"new": True}
        store.put([recs[2]])
        again = store.get(["item-02"])[0]
        assert again.metadata == {"new": True} and again.added == first.added
        assert store.ids()[2] == "item-02"     # a replaced item keeps its place
        store.set_metadata("item-02", {"more": 1}, merge=True)
        assert store.get(["item-02"])[0].metadata == {"new": True, "more": 1}
        with pytest.raises(NotFound):
            store.set_metadata("nope", {})
        assert store.delete(["item-01", "item-01", "nope"]) == [True, False, False]
        hits = store.search(recs[1].vector, 6)[0]
        assert "item-01" not in [i for i, _ in hits] and len(hits) == 5
        assert "item-01" not in [i for i, _ in store.text_search("pic_1")]
        assert store.clear() == 5 and store.count() == 0
        assert store.search(recs[0].vector, 3) == [[]]
    finally:
        backend.drop("crud")
    with pytest.raises(NotFound):
        backend.open("crud")


def test_collections_persist_and_prefix_separates(backend, tmp_path):
    from imgfind.stores.milvus import MilvusBackend, MilvusOptions

    backend.create(CollectionInfo(name="keep", model="toy", dim=DIM, model_path="/m"))
    try:
        if backend.uri.endswith(".db"):
            return    # one process holds a Lite file: reopening is tested via the CLI
        other = MilvusBackend(backend.uri, blobs=str(tmp_path / "b2"))
        try:
            assert "keep" in [c.name for c in other.collections()]
            assert other.open("keep").info.model_path == "/m"
        finally:
            other.close()
        apart = MilvusBackend(backend.uri, blobs=str(tmp_path / "b3"),
                              options=MilvusOptions(prefix="team2_"))
        try:
            assert apart.collections() == []
        finally:
            apart.close()
    finally:
        backend.drop("keep")


def test_two_clients_see_each_others_writes_at_once(server_port, tmp_path):
    """Strong consistency: an acknowledged write is seen by the next search of any client."""
    from imgfind.stores.milvus import MilvusBackend

    uri = f"http://127.0.0.1:{server_port}"
    a = MilvusBackend(uri, blobs=str(tmp_path / "blobs"))
    b = MilvusBackend(uri, blobs=str(tmp_path / "blobs"))
    try:
        sa = a.create(CollectionInfo(name="shared", model="toy", dim=DIM))
        sb = b.open("shared")
        for i, rec in enumerate(_records(5)):
            sa.put([rec])
            assert sb.search(rec.vector, 1)[0][0][0] == rec.id
            assert sb.count() == i + 1
        sb.delete(["item-00"])
        assert sa.get(["item-00"]) == [None]
        # A search's hit fields answer only this thread's next get, briefly: a later get
        # reads what another client wrote meanwhile.
        sa.search(_records(5)[1].vector, 1)
        sb.set_metadata("item-01", {"by": "b"})
        time.sleep(2.1)
        assert sa.get(["item-01"])[0].metadata == {"by": "b"}
    finally:
        a.drop("shared")
        a.close()
        b.close()


def test_milvus_server_refuses_a_busy_port(server_port, tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "imgfind.testing", "milvus-server",
                          str(tmp_path / "d"), "--port", str(server_port)],
                         capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert out.returncode == 1
    assert str(server_port) in out.stderr


def test_library_on_milvus_refuses_ocr_and_reembed(tmp_path, tiny_model_dir):
    """Features the Milvus store does not offer are typed errors, never half done."""
    import imgfind
    from imgfind.errors import NotSupported, UnsupportedFilter

    with imgfind.open(tmp_path / "H", store=f"milvus://{tmp_path}/m.db",
                      model_path=tiny_model_dir) as lib:
        with pytest.raises(NotSupported):
            lib.create_collection("ocr", ocr=True)
        col = lib.create_collection("plain")
        with pytest.raises(NotSupported):
            col.reembed(model_path=tiny_model_dir)
        with pytest.raises(UnsupportedFilter) as e:
            col.items(where={"ocr": {"$contains": "exit"}})
        assert e.value.backend == "milvus" and e.value.operator == "$contains"
        assert [c.name for c in lib.collections()] == ["plain"]


def test_shards_replicas_and_index_from_the_uri_stick_to_the_collection(server_port, tmp_path):
    from imgfind.stores import open_backend

    uri = f"milvus://127.0.0.1:{server_port}?prefix=sr_&shards=2&replicas=2&index=IVF_SQ8"
    a = open_backend(tmp_path / "A", store=uri)
    b = open_backend(tmp_path / "B", store=f"milvus://127.0.0.1:{server_port}?prefix=sr_")
    try:
        a.create(CollectionInfo(name="big", model="toy", dim=DIM)).put(_records(3))
        info = b.open("big").index_info()      # another client, other defaults
        assert info["kind"] == "IVF_SQ8" and info["size"] == 3
        assert info["details"]["replicas"] == 2
        assert b.open("big").search(_records(3)[2].vector, 1)[0][0][0] == "item-02"
    finally:
        a.drop("big")
        a.close()
        b.close()
