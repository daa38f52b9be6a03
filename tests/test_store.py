"""The embedded store (SQLite + derived faiss index), against real files on disk."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from imgfind.errors import AlreadyExists, InvalidInput, ModelMismatch, NotFound, StoreError
from imgfind.stores import CollectionInfo, Record, StoreOptions, open_backend
from imgfind.stores.sqlite import DB_FILE, INDEX_FILE, fts_query
from imgfind.stores.vector_index import VectorIndex

DIM = 32
LOW = StoreOptions(flat_threshold=2000, auto_index_min=500)


def clustered(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    """Unit vectors around 40 centres: clustered like real embeddings."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((40, dim))
    x = centres[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def records(x: np.ndarray, start: int = 0, **meta) -> list[Record]:
    return [Record(id=f"r{start + i}", source=f"/data/img{start + i}.jpg", vector=v,
                   metadata={"n": start + i, "g10": (start + i) % 10,
                             "g100": (start + i) % 100, "half": (start + i) % 2, **meta})
            for i, v in enumerate(x)]


def exact_top(x: np.ndarray, q: np.ndarray, k: int, keep: np.ndarray | None = None,
              start: int = 0) -> list[list[str]]:
    s = q @ x.T
    if keep is not None:
        s[:, ~keep] = -np.inf
    top = np.argsort(-s, axis=1)[:, :k]
    return [[f"r{start + j}" for j in row if np.isfinite(s[i, j])] for i, row in enumerate(top)]


def recall(got: list[list[tuple[str, float]]], truth: list[list[str]]) -> float:
    hits = sum(len({h[0] for h in g} & set(t)) for g, t in zip(got, truth, strict=True))
    return hits / sum(len(t) for t in truth)


@pytest.fixture
def backend(tmp_path):
    b = open_backend(tmp_path / "home", LOW)
    yield b
    b.close()


@pytest.fixture
def store(backend):
    return backend.create(CollectionInfo(name="c", model="toy", dim=DIM))


# ------------------------------------------------------------------ collections
def test_collections_create_open_list_drop(tmp_path, backend):
    info = CollectionInfo(name="photos.v1", model="ViT-B-32", dim=DIM, model_path="/m")
    s = backend.create(info)
    assert s.info.name == "photos.v1" and s.info.created
    assert (tmp_path / "home" / "collections" / "photos.v1" / DB_FILE).is_file()
    with pytest.raises(AlreadyExists):
        backend.create(info)
    other = open_backend(tmp_path / "home")      # a second process's view
    listed = other.collections()
    assert [(c.name, c.model, c.dim, c.model_path) for c in listed] == [
        ("photos.v1", "ViT-B-32", DIM, "/m")]
    assert other.open("photos.v1").info == s.info
    with pytest.raises(AlreadyExists):
        other.create(info)
    other.close()
    (tmp_path / "home" / "collections" / "junk").mkdir()   # not a collection
    assert [c.name for c in backend.collections()] == ["photos.v1"]
    backend.drop("photos.v1")
    assert backend.collections() == []
    with pytest.raises(NotFound):
        backend.open("photos.v1")
    with pytest.raises(NotFound):
        backend.drop("photos.v1")


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../x", "a b", "x" * 65, "é"])
def test_bad_collection_names(backend, name):
    with pytest.raises(InvalidInput):
        backend.create(CollectionInfo(name=name, model="toy", dim=4))
    with pytest.raises(InvalidInput):
        backend.open(name)


def test_bad_collection_info(backend):
    with pytest.raises(InvalidInput):
        backend.create(CollectionInfo(name="a", model="toy", dim=0))
    with pytest.raises(InvalidInput):
        backend.create(CollectionInfo(name="a", model="", dim=4))


def test_half_created_collection_can_be_created_again(tmp_path, backend):
    folder = tmp_path / "home" / "collections" / "c"
    folder.mkdir(parents=True)
    (folder / DB_FILE).write_bytes(b"")            # killed right after creating the file
    assert backend.collections() == []
    s = backend.create(CollectionInfo(name="c", model="toy", dim=4))
    assert s.count() == 0


def test_damaged_database_is_a_store_error(tmp_path, backend):
    folder = tmp_path / "home" / "collections" / "bad"
    folder.mkdir(parents=True)
    (folder / DB_FILE).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        backend.open("bad")


# --------------------------------------------------------------- rows and data
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
    assert v.shape == (1, DIM) and abs(float(np.linalg.norm(v))) == pytest.approx(1.0)


def test_replace_keeps_added_and_order(store):
    x = clustered(3)
    store.put(records(x))
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
    assert store.search(x[0:1], 2)[0][0][1] == pytest.approx(1.0)
    got = {h[0] for h in store.search(x[0:1], 2)[0]}
    assert got == {"r0", "r1"}                     # r1 now carries r0's vector
    assert store.check()["ok"]


def test_duplicate_ids_in_one_batch_last_wins(store):
    x = clustered(2)
    assert store.put([Record(id="a", source="1", vector=x[0]),
                      Record(id="a", source="2", vector=x[1])]) == ["a", "a"]
    assert store.count() == 1 and store.get(["a"])[0].source == "2"


def test_put_is_all_or_nothing(store):
    x = clustered(3)
    bad = records(x)
    bad[2] = Record(id="bad", source="s", vector=np.ones(DIM + 1, np.float32))
    with pytest.raises(ModelMismatch, match="33-d vector"):
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
    assert store.count() == 0
    with pytest.raises(ModelMismatch):
        store.search(np.ones((1, DIM + 2), np.float32), 3)


def test_delete_and_clear(store):
    x = clustered(5)
    store.put(records(x))
    assert store.delete(["r1", "nope", "r3", "r1"]) == [True, False, True, False]
    assert store.ids() == ["r0", "r2", "r4"]
    assert all(h[0] not in ("r1", "r3") for h in store.search(x, 5)[0])
    assert store.get(["r1"]) == [None]
    assert store.clear() == 3
    assert store.count() == 0 and store.search(x[:1], 3) == [[]]
    store.put(records(x[:2]))
    assert store.ids() == ["r0", "r1"] and store.check()["ok"]


def test_set_metadata_merge_and_replace(store):
    x = clustered(1)
    store.put([Record(id="a", source="/a.jpg", vector=x[0], metadata={"k": 1, "tag": "old"})])
    store.set_metadata("a", {"tag": "sunset"}, merge=True)
    assert store.get(["a"])[0].metadata == {"k": 1, "tag": "sunset"}
    assert [h[0] for h in store.text_search("sunset")] == ["a"]
    assert store.text_search("old") == []
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
    assert store.thumbnail("f") is None and store.original("f") is None
    with pytest.raises(NotFound):
        store.original("nope")
    with pytest.raises(NotFound):
        store.thumbnail("nope")
    with pytest.raises(NotFound, match="nope"):
        store.vectors(["u", "nope"])


def test_listing_lookup_and_source_states(store):
    x = clustered(6)
    recs = records(x)
    for i, r in enumerate(recs):
        r.sha256 = f"h{i % 3}"
        r.source = f"/data/{'a' if i < 3 else 'b'}/img{i}.jpg"
        r.file = {"mtime_ns": 1000 + i, "size": 10 * i}
    store.put(recs)
    assert store.ids(limit=2, offset=1) == ["r1", "r2"]
    assert store.ids({"g10": {"$gte": 4}}) == ["r4", "r5"]
    assert store.count({"half": 1}) == 3
    assert store.by_sha256(["h0", "h2", "zz"]) == {"h0": "r0", "h2": "r2"}
    states = store.source_states("/data/a/")
    assert sorted(states) == ["/data/a/img0.jpg", "/data/a/img1.jpg", "/data/a/img2.jpg"]
    st = states["/data/a/img1.jpg"]
    assert (st.id, st.mtime_ns, st.size, st.sha256) == ("r1", 1001, 10, "h1")
    assert len(store.source_states()) == 6 and store.source_states("/data/c") == {}
    chunks = list(store.all_vectors(batch=4))
    assert [len(c[0]) for c in chunks] == [4, 2]
    np.testing.assert_allclose(np.vstack([c[1] for c in chunks]), x, atol=1e-6)
    with pytest.raises(InvalidInput):
        store.ids(limit=-1)


# --------------------------------------------------------------------- search
def test_flat_search_is_exact(store):
    x = clustered(800)
    store.put(records(x))
    q = clustered(20, seed=5)
    got = store.search(q, 10)
    assert got and all(len(g) == 10 for g in got)
    assert [[h[0] for h in g] for g in got] == exact_top(x, q, 10)
    np.testing.assert_allclose([h[1] for h in got[0]], np.sort(q[0] @ x.T)[::-1][:10],
                               atol=1e-5)
    assert store.check()["index"]["kind"] == "flat"
    assert store.search(q[0], 3)[0][0][0] == got[0][0][0]        # 1-d query works too
    assert store.search(q, 0) == [[] for _ in range(20)]
    assert len(store.search(q[:1], np.int64(4))[0]) == 4
    for bad in (-1, 2.5, "3"):
        with pytest.raises(InvalidInput, match="k must be"):
            store.search(q, bad)
        with pytest.raises(InvalidInput, match="k must be"):
            store.text_search("x", bad)


def test_ivf_switch_recall_and_incremental_updates(store):
    x = clustered(3000)
    store.put(records(x))
    q = clustered(50, seed=7)
    got = store.search(q, 10)
    info = store.check()
    assert info["ok"] and info["index"]["kind"] == "ivf-sq8" and info["index"]["size"] == 3000
    assert recall(got, exact_top(x, q, 10)) >= 0.95
    # Incremental: add, replace and delete without a rebuild; scores stay exact cosines.
    y = clustered(200, seed=8)
    store.put(records(y, start=3000))
    store.put([Record(id="r0", source="s", vector=y[0])])
    store.delete(["r1"])
    allx = np.vstack([x, y])
    allx[0] = y[0]
    keep = np.ones(len(allx), bool)
    keep[1] = False
    got = store.search(q, 10)
    assert recall(got, exact_top(allx, q, 10, keep)) >= 0.95
    for qi, g in enumerate(got):
        for id, score in g:
            assert score == pytest.approx(float(allx[int(id[1:])] @ q[qi]), abs=1e-5)
    info = store.check()
    assert info["ok"] and info["index"]["size"] == 3199 and info["index"]["trained_for"] == 3000


def test_nprobe_option_trades_recall_for_speed(store):
    x = clustered(3000)
    store.put(records(x))
    q = clustered(50, seed=7)
    truth = exact_top(x, q, 10)
    info = store.index_info()
    assert info["kind"] == "ivf-sq8" and info["nprobe"] == info["tuned_nprobe"] >= 1
    store.options.nprobe = 1
    assert store.index_info()["nprobe"] == 1
    one = recall(store.search(q, 10), truth)
    store.options.nprobe = 10_000          # capped at nlist: every list, exact after re-rank
    assert store.index_info()["nprobe"] == info["nlist"]
    assert recall(store.search(q, 10), truth) == 1.0 > one
    store.options.nprobe = None
    assert store.index_info()["nprobe"] == info["tuned_nprobe"]
    with pytest.raises(ValueError):
        StoreOptions(nprobe=0)


def test_retrain_when_grown_and_back_to_flat_when_shrunk(tmp_path):
    b = open_backend(tmp_path, StoreOptions(flat_threshold=2000, retrain_factor=1.5))
    s = b.create(CollectionInfo(name="c", model="toy", dim=DIM))
    x = clustered(3300)
    s.put(records(x[:2100]))
    idx = s.check()["index"]
    assert (idx["kind"], idx["trained_for"]) == ("ivf-sq8", 2100)
    s.put(records(x[2100:2900], start=2100))
    assert s.check()["index"]["trained_for"] == 2100          # 2900 < 1.5 * 2100
    s.put(records(x[2900:], start=2900))
    idx = s.check()["index"]
    assert (idx["kind"], idx["trained_for"], idx["size"]) == ("ivf-sq8", 3300, 3300)
    s.delete([f"r{i}" for i in range(2200)])                  # 1100 left: above 2000 / 2
    assert s.check()["index"]["kind"] == "ivf-sq8"
    s.delete([f"r{i}" for i in range(2200, 2500)])            # 800 left
    idx = s.check()["index"]
    assert (idx["kind"], idx["size"]) == ("flat", 800)
    got = s.search(x[2600:2601], 1)[0]
    assert got[0][0] == "r2600" and got[0][1] == pytest.approx(1.0)
    b.close()


def test_two_handles_catch_up(tmp_path):
    """Writes through one handle (another process, say) are seen by the other's searches."""
    a = open_backend(tmp_path, LOW)
    b = open_backend(tmp_path, LOW)
    sa = a.create(CollectionInfo(name="c", model="toy", dim=DIM))
    x = clustered(2600)
    sa.put(records(x[:100]))
    sb = b.open("c")
    assert sb.search(x[5:6], 1)[0][0][0] == "r5"
    sa.put(records(x[100:2600], start=100))          # crosses the IVF threshold
    assert sb.search(x[2500:2501], 1)[0][0][0] == "r2500"
    assert sb.check()["index"]["kind"] == "ivf-sq8"
    sa.delete(["r2500"])
    assert sb.search(x[2500:2501], 1)[0][0][0] != "r2500"
    sa.put([Record(id="r7", source="s", vector=x[2500])])
    assert sb.search(x[2500:2501], 1)[0][0][0] == "r7"
    sa.clear()
    assert sb.search(x[:1], 5) == [[]] and sb.check()["ok"]
    sa.put(records(x[:3]))
    assert sb.search(x[2:3], 1)[0][0][0] == "r2"
    a.close()
    b.close()


def test_index_file_missing_stale_or_corrupt_is_rebuilt(tmp_path):
    home = tmp_path / "home"
    b = open_backend(home, LOW)
    s = b.create(CollectionInfo(name="c", model="toy", dim=DIM))
    x = clustered(2500)
    s.put(records(x))
    s.search(x[:1], 1)
    b.close()
    path = home / "collections" / "c" / INDEX_FILE
    assert VectorIndex.read_header(path)["kind"] == "ivf-sq8"
    stale = path.read_bytes()

    def reopen_and_check(expect_id: str, vec: np.ndarray) -> None:
        bb = open_backend(home, LOW)
        ss = bb.open("c")
        assert ss.search(vec[None], 1)[0][0][0] == expect_id
        c = ss.check()
        assert c["ok"] and c["index"]["in_step"], c
        bb.close()

    path.unlink()
    reopen_and_check("r3", x[3])
    assert path.exists()
    path.write_bytes(path.read_bytes()[:5000])                # truncated
    reopen_and_check("r4", x[4])
    path.write_bytes(b"IMGFIDX1" + b"\xff" * 100)             # garbage header
    reopen_and_check("r5", x[5])
    # An older file: caught up from the rows written since.
    bb = open_backend(home, LOW)
    bb.open("c").put(records(clustered(5, seed=3), start=9000))
    bb.close()
    path.write_bytes(stale)
    reopen_and_check("r9002", clustered(5, seed=3)[2])
    # Wrong kind for the size: a flat file for an IVF-sized collection is replaced.
    owner = VectorIndex.read_header(path)["owner"]
    flat = VectorIndex.empty(DIM)
    flat.seq = 10**6
    flat.save(path, owner)
    reopen_and_check("r6", x[6])
    assert VectorIndex.read_header(path)["kind"] == "ivf-sq8"
    # Another collection's index file (same dim, even a plausible seq) is not used.
    b2 = open_backend(tmp_path / "other", LOW)
    s2 = b2.create(CollectionInfo(name="c", model="toy", dim=DIM))
    s2.put(records(clustered(2100, seed=4), start=50_000))     # IVF too, older seq
    s2.search(x[:1], 1)
    b2.close()
    path.write_bytes((tmp_path / "other" / "collections" / "c" / INDEX_FILE).read_bytes())
    reopen_and_check("r7", x[7])


@pytest.mark.parametrize("n", [600, 3000])   # flat, then IVF
@pytest.mark.parametrize("field, value", [("g100", 7), ("g10", 3), ("half", 1)])  # 1/10/50%
def test_filtered_search_returns_k_when_k_match(tmp_path, n, field, value):
    b = open_backend(tmp_path, LOW)
    s = b.create(CollectionInfo(name="c", model="toy", dim=DIM))
    x = clustered(n)
    s.put(records(x))
    q = clustered(10, seed=11)
    labels = np.array([r.metadata[field] for r in records(x)])
    keep = labels == value
    k = 10 if keep.sum() >= 10 else int(keep.sum())
    got = s.search(q, 10, where={field: value})
    assert all(len(g) == min(10, keep.sum()) for g in got)
    assert all(int(id[1:]) % {"g100": 100, "g10": 10, "half": 2}[field] == value
               for g in got for id, _ in g)
    assert recall(got, exact_top(x, q, k, keep)) >= 0.95
    big = s.search(q[:2], 25, where={"$and": [{field: value}, {"n": {"$lt": n // 2}}]})
    want = int((keep & (np.arange(n) < n // 2)).sum())
    assert all(len(g) == min(25, want) for g in big)
    b.close()


def test_filter_matching_nothing_and_exclude(store):
    x = clustered(100)
    store.put(records(x))
    assert store.search(x[:2], 5, where={"g10": 99}) == [[], []]
    got = store.search(x[3:4], 5, exclude=["r3"])[0]
    assert len(got) == 5 and "r3" not in [h[0] for h in got]
    got = store.search(x[3:4], 5, where={"g10": 3}, exclude=["r3", "r13"])[0]
    assert len(got) == 5 and not {"r3", "r13"} & {h[0] for h in got}


def test_ivf_exclude_and_very_selective_filter(tmp_path):
    b = open_backend(tmp_path, LOW)
    s = b.create(CollectionInfo(name="c", model="toy", dim=DIM))
    x = clustered(2500)
    s.put(records(x))
    got = s.search(x[42:43], 3, exclude=["r42"])[0]
    assert len(got) == 3 and "r42" not in [h[0] for h in got]
    # Very few matches: every list is probed, and the re-rank makes the order exact.
    got = s.search(x[:1], 30, where={"n": {"$lt": 40}})[0]
    assert [h[0] for h in got] == exact_top(x[:40], x[:1], 30)[0]
    b.close()


def test_expression_indexes_are_created_for_used_fields(tmp_path):
    b = open_backend(tmp_path, LOW)                      # auto_index_min=500
    s = b.create(CollectionInfo(name="c", model="toy", dim=DIM))
    s.put(records(clustered(600)))
    assert s.count({"g10": 3}) == 60
    con = sqlite3.connect(tmp_path / "collections" / "c" / DB_FILE)
    sqls = [r[0] for r in con.execute("SELECT sql FROM sqlite_master WHERE type='index'")]
    assert any('json_extract(metadata, \'$."g10"\')' in (q or "") for q in sqls)
    name = s.index_field("exif.Make")
    assert name in [r[0] for r in con.execute("SELECT name FROM sqlite_master")]
    con.close()
    assert s.index_field("exif.Make") == name


# ------------------------------------------------------------------ full text
def test_text_search_ranking_filters_and_hostile_input(store):
    x = clustered(4)
    store.put([
        Record(id="beach", source="/trips/beach_day.jpg", vector=x[0],
               metadata={"caption": "A dog running on the beach", "place": "Skagen"}),
        Record(id="dogs", source="/pets/dog.jpg", vector=x[1],
               metadata={"caption": "dog dog dog sleeping"}, exif={"Make": "Canon"}),
        Record(id="cat", source="/pets/cat.jpg", vector=x[2], metadata={"caption": "a cat"},
               file={"name": "kitty.jpg"}),
        Record(id="café", source="/x/café.jpg", vector=x[3], metadata={"note": "Crème brûlée"}),
    ])
    assert {h[0] for h in store.text_search("dog")} == {"beach", "dogs"}
    assert [h[0] for h in store.text_search("dog beach")] == ["beach"]     # all terms
    assert [h[0] for h in store.text_search("dog", k=1)] == ["dogs"]       # bm25: tf wins
    scores = [h[1] for h in store.text_search("dog")]
    assert scores == sorted(scores, reverse=True)
    assert [h[0] for h in store.text_search("canon")] == ["dogs"]          # EXIF
    assert [h[0] for h in store.text_search("kitty")] == ["cat"]           # file name
    assert [h[0] for h in store.text_search("trips")] == ["beach"]         # path
    assert [h[0] for h in store.text_search("sleep")] == ["dogs"]          # prefix
    assert [h[0] for h in store.text_search("creme brulee")] == ["café"]   # diacritics
    assert [h[0] for h in store.text_search("dog", where={"place": "Skagen"})] == ["beach"]
    for hostile in ['"', 'dog"', "NEAR(dog beach)", "dog OR cat", "dog AND", "*", "^dog",
                    "dog:cat", "caption:dog", "(((", "-dog", "dog +", "'; DROP TABLE fts;--",
                    "\x00", "", "   "]:
        store.text_search(hostile)           # never raises a syntax error
    assert store.text_search("dog OR cat") == []     # OR is a plain word here
    assert store.count() == 4
    assert fts_query('say "hi"') == '"say"* "hi"*'


# ------------------------------------------------------------- check / rebuild
def test_check_finds_problems_and_rebuild_fixes_them(tmp_path, store):
    x = clustered(50)
    store.put(records(x))
    c = store.check()
    assert c["ok"] and c["items"] == 50 and c["vectors"] == 50 and c["integrity"] == "ok"
    assert (c["index"]["kind"], c["index"]["size"], c["index"]["in_step"]) == ("flat", 50, True)
    assert store.index_info() | {"in_step": True} == c["index"]
    con = sqlite3.connect(Path(store.folder) / DB_FILE)
    con.execute("DELETE FROM fts WHERE rowid IN (SELECT rowid FROM fts LIMIT 5)")
    con.execute("PRAGMA foreign_keys=OFF")
    con.execute("DELETE FROM vectors WHERE rowid = (SELECT max(rowid) FROM vectors)")
    con.commit()
    con.close()
    c = store.check()
    assert not c["ok"] and len(c["problems"]) == 3, c
    assert any("no vector" in p for p in c["problems"])
    assert any("full-text" in p for p in c["problems"])
    assert any("vector index holds 50" in p for p in c["problems"])
    summary = store.rebuild()
    assert summary["fts"] == 50 and summary["index"]["kind"] == "flat"
    c = store.check()
    assert c["fts"] == 50 and c["index"]["in_step"] and c["problems"] == [
        "1 items have no vector; re-add them"]
    store.delete(["r49"])
    assert store.check()["ok"]


def test_closed_store_says_so(backend):
    s = backend.create(CollectionInfo(name="c", model="toy", dim=4))
    s.put([Record(id="a", source="s", vector=np.ones(4, np.float32))])
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.count()
    assert backend.open("c").count() == 1      # the backend hands out a fresh handle
