"""Rows: put/get, replace, batch results, deletes, metadata, blobs, listing and lookups."""

from __future__ import annotations

import time

import numpy as np
import pytest

from imgfind.errors import InvalidInput, ModelMismatch, NotFound
from imgfind.stores import Record

from .helpers import DIM, SCORE_TOL, VEC_ATOL, VEC_RTOL, clustered, records


def test_put_get_roundtrip_unicode_and_nested(store):
    meta = {"title": "Ærøskøbing 日本 🐕", "nested": {"a": [1, 2.5, {"b": None}], "t": True}}
    exif = {"Make": "Canon", "GPS": {"lat": 55.1, "lon": 10.2}, "bad": float("nan"),
            "raw": b"\x01\x02"}
    rec = Record(id="ü/1", source="/p/ü.jpg", vector=np.ones(DIM, np.float32), metadata=meta,
                 exif=exif, file={"size": 10, "mtime_ns": 5, "name": "ü.jpg"}, width=640,
                 height=480, format="JPEG", sha256="ab" * 32, taken="2020-01-02T03:04:05",
                 thumbnail=b"thumb")
    assert store.put([rec]) == ["ü/1"]
    item = store.get(["ü/1", "missing"])
    assert item[1] is None
    it = item[0]
    assert it.metadata == meta and it.exif["GPS"] == {"lat": 55.1, "lon": 10.2}
    assert it.exif["bad"] is None and it.exif["raw"] == "0102"    # cleaned to plain JSON
    assert (it.source, it.width, it.height, it.format, it.sha256, it.taken) == (
        "/p/ü.jpg", 640, 480, "JPEG", "ab" * 32, "2020-01-02T03:04:05")
    assert it.stored is False and it.added and it.added == it.updated
    assert store.thumbnail("ü/1") == b"thumb" and store.original("ü/1") is None
    v = store.vectors(["ü/1"])
    assert v.shape == (1, DIM) and float(np.linalg.norm(v)) == pytest.approx(1.0, abs=VEC_RTOL)


def test_batch_results_and_replace_keeps_added_and_order(store):
    x = clustered(3)
    assert store.put(records(x)) == ["r0", "r1", "r2"]
    first = store.get(["r1"])[0]
    time.sleep(0.002)
    store.put([Record(id="r1", source="/new.jpg", vector=x[0], metadata={"v": 2},
                      original=b"orig")])
    again = store.get(["r1"])[0]
    assert again.added == first.added and again.updated > first.updated
    assert again.source == "/new.jpg" and again.metadata == {"v": 2} and again.stored
    assert store.original("r1") == b"orig"
    assert store.ids() == ["r0", "r1", "r2"]       # insertion order kept on replace
    assert store.count() == 3
    got = store.search(x[0:1], 2)[0]
    assert {h[0] for h in got} == {"r0", "r1"}     # r1 now carries r0's vector
    assert got[0][1] == pytest.approx(1.0, abs=SCORE_TOL)


def test_duplicate_ids_in_one_batch_last_wins(store):
    x = clustered(2)
    assert store.put([Record(id="a", source="1", vector=x[0]),
                      Record(id="a", source="2", vector=x[1])]) == ["a", "a"]
    assert store.count() == 1 and store.get(["a"])[0].source == "2"


def test_put_is_all_or_nothing(store):
    x = clustered(3)
    bad = records(x)
    bad[2] = Record(id="bad", source="s", vector=np.ones(DIM + 1, np.float32))
    with pytest.raises(ModelMismatch, match=f"{DIM + 1}-d vector"):
        store.put(bad)
    nan = records(x)
    nan[1].vector = np.full(DIM, np.nan, np.float32)
    with pytest.raises(InvalidInput, match="NaN"):
        store.put(nan)
    with pytest.raises(InvalidInput, match="all zeros"):
        store.put([Record(id="z", source="s", vector=np.zeros(DIM, np.float32))])
    with pytest.raises(InvalidInput, match="metadata"):
        store.put([Record(id="m", source="s", vector=x[0], metadata={"when": object()})])
    with pytest.raises(InvalidInput, match="ids"):
        store.put([Record(id="", source="s", vector=x[0])])
    assert store.count() == 0 and store.ids() == []
    with pytest.raises(ModelMismatch):
        store.search(np.ones((1, DIM + 2), np.float32), 3)


def test_deleted_items_are_never_returned(store):
    x = clustered(5)
    recs = records(x)
    for i, r in enumerate(recs):
        r.sha256 = f"h{i}"
        r.metadata["caption"] = "zebra crossing"
        r.file = {"mtime_ns": i, "size": i}
    store.put(recs)
    assert store.delete(["r1", "nope", "r3", "r1"]) == [True, False, True, False]
    gone = {"r1", "r3"}
    assert store.ids() == ["r0", "r2", "r4"] and store.count() == 3
    assert store.count({"caption": "zebra crossing"}) == 3
    assert all(h[0] not in gone for g in store.search(x, 5) for h in g)
    assert all(h[0] not in gone for h in store.search(x[1:2], 5, where={"half": 1})[0])
    assert {h[0] for h in store.text_search("zebra")} == {"r0", "r2", "r4"}
    assert store.get(["r1", "r2"])[0] is None
    assert store.by_sha256(["h1", "h2"]) == {"h2": "r2"}
    assert sorted(st.id for st in store.source_states().values()) == ["r0", "r2", "r4"]
    assert sorted(i for ids, _ in store.all_vectors() for i in ids) == ["r0", "r2", "r4"]
    with pytest.raises(NotFound):
        store.vectors(["r1"])
    assert store.clear() == 3
    assert store.count() == 0 and store.search(x[:1], 3) == [[]]
    assert store.text_search("zebra") == [] and store.by_sha256(["h0"]) == {}
    store.put(records(x[:2]))
    assert store.ids() == ["r0", "r1"] and store.check()["ok"]


def test_set_metadata_merge_and_replace(store):
    x = clustered(1)
    store.put([Record(id="a", source="/a.jpg", vector=x[0], metadata={"k": 1, "tag": "old"})])
    store.set_metadata("a", {"tag": "sunset"}, merge=True)
    assert store.get(["a"])[0].metadata == {"k": 1, "tag": "sunset"}
    assert [h[0] for h in store.text_search("sunset")] == ["a"]
    assert store.text_search("old") == []
    assert store.count({"tag": "sunset"}) == 1
    store.set_metadata("a", {"only": "this"})
    assert store.get(["a"])[0].metadata == {"only": "this"}
    with pytest.raises(NotFound):
        store.set_metadata("nope", {})
    with pytest.raises(InvalidInput):
        store.set_metadata("a", {"x": float("inf")})


def test_blobs_and_missing_ids(store):
    x = clustered(2)
    store.put([Record(id="u", source="upload:u.png", vector=x[0], thumbnail=b"t",
                      original=b"o" * 1000),
               Record(id="f", source="/f.jpg", vector=x[1])])
    assert store.original("u") == b"o" * 1000 and store.get(["u"])[0].stored
    assert store.thumbnail("u") == b"t"
    assert store.thumbnail("f") is None and store.original("f") is None
    with pytest.raises(NotFound):
        store.original("nope")
    with pytest.raises(NotFound):
        store.thumbnail("nope")
    with pytest.raises(NotFound, match="nope"):
        store.vectors(["u", "nope"])


def test_listing_paging_lookup_and_source_states(store):
    x = clustered(6)
    recs = records(x)
    for i, r in enumerate(recs):
        r.sha256 = f"h{i % 3}"
        r.source = f"/data/{'a' if i < 3 else 'b'}/img{i}.jpg"
        r.file = {"mtime_ns": 1000 + i, "size": 10 * i}
    store.put(recs)
    assert store.ids(limit=2, offset=1) == ["r1", "r2"]
    assert store.ids(limit=10, offset=4) == ["r4", "r5"]
    assert store.ids(offset=6) == [] and store.ids(limit=0) == []
    pages = [store.ids(limit=4, offset=o) for o in (0, 4)]
    assert pages == [["r0", "r1", "r2", "r3"], ["r4", "r5"]]
    assert store.ids({"g10": {"$gte": 4}}) == ["r4", "r5"]
    assert store.ids({"half": 1}, limit=2, offset=1) == ["r3", "r5"]
    assert store.count({"half": 1}) == 3 and store.count() == 6 and store.count({}) == 6
    assert store.by_sha256(["h0", "h2", "zz"]) == {"h0": "r0", "h2": "r2"}   # the earliest
    assert store.by_sha256([]) == {}
    states = store.source_states("/data/a/")
    assert sorted(states) == ["/data/a/img0.jpg", "/data/a/img1.jpg", "/data/a/img2.jpg"]
    st = states["/data/a/img1.jpg"]
    assert (st.id, st.mtime_ns, st.size, st.sha256) == ("r1", 1001, 10, "h1")
    assert len(store.source_states()) == 6 and store.source_states("/data/c") == {}
    chunks = list(store.all_vectors(batch=4))
    assert [len(c[0]) for c in chunks] == [4, 2]
    assert [i for c in chunks for i in c[0]] == [f"r{i}" for i in range(6)]
    np.testing.assert_allclose(np.vstack([c[1] for c in chunks]), x, rtol=VEC_RTOL,
                               atol=VEC_ATOL)
    with pytest.raises(InvalidInput):
        store.ids(limit=-1)
    with pytest.raises(InvalidInput):
        store.ids(offset=-1)


def test_big_batches_and_many_ids(store):
    x = clustered(2500)
    assert len(store.put(records(x))) == 2500
    ids = [f"r{i}" for i in range(0, 2500, 2)] + ["missing"]
    got = store.get(ids)
    assert sum(g is not None for g in got) == 1250 and got[-1] is None
    assert store.vectors(ids[:-1]).shape == (1250, DIM)
    assert store.delete(ids) == [True] * 1250 + [False]
    assert store.count() == 1250
