"""The embedded store's own mechanics (SQLite + derived faiss index), on real files.

Behaviour every store shares is in tests/contract/ (run against each backend).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from imgfind.errors import AlreadyExists, NotFound, StoreError
from imgfind.stores import CollectionInfo, Record, StoreOptions, open_backend
from imgfind.stores.sqlite import DB_FILE, INDEX_FILE, fts_query
from imgfind.stores.vector_index import VectorIndex

from .contract.helpers import DIM, SCORE_TOL, clustered, exact_top, recall, records

LOW = StoreOptions(flat_threshold=2000, auto_index_min=500)


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


# --------------------------------------------------------------------- search
def test_flat_search_is_exact(store):
    x = clustered(800)
    store.put(records(x))
    q = clustered(20, seed=5)
    got = store.search(q, 10)
    assert got and all(len(g) == 10 for g in got)
    # Exact over what the store keeps: with float16 rows, two cosines closer than 2**-11
    # (a near-tie, 4e-5 apart here) may rank the other way than from float32 values.
    stored = store.vectors([f"r{i}" for i in range(len(x))])
    assert [[h[0] for h in g] for g in got] == exact_top(stored, q, 10)
    np.testing.assert_allclose([h[1] for h in got[0]], np.sort(q[0] @ stored.T)[::-1][:10],
                               atol=1e-5)
    assert store.check()["index"]["kind"] == "flat"
    assert store.search(q[0], 3)[0][0][0] == got[0][0][0]        # 1-d query works too
    # k = 0, a numpy-int k and invalid k: checked by tests/contract/test_search.py


def test_ivf_switch_recall_and_incremental_updates(store):
    x = clustered(3000)
    store.put(records(x))
    q = clustered(50, seed=7)
    got = store.search(q, 10)
    info = store.check()
    assert info["ok"] and info["index"]["kind"] == "ivf-sq6" and info["index"]["size"] == 3000
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
    for qi, g in enumerate(got):       # the re-rank's exact cosines of the stored vectors
        for id, score in g:
            assert score == pytest.approx(float(store.vectors([id])[0] @ q[qi]), abs=1e-5)
            assert score == pytest.approx(float(allx[int(id[1:])] @ q[qi]), abs=SCORE_TOL)
    info = store.check()
    assert info["ok"] and info["index"]["size"] == 3199
    assert info["index"]["details"]["trained_for"] == 3000


def test_nprobe_option_trades_recall_for_speed(store):
    x = clustered(3000)
    store.put(records(x))
    q = clustered(50, seed=7)
    truth = exact_top(x, q, 10)
    info = store.index_info()
    assert info["kind"] == "ivf-sq6" and info["backend"] == "sqlite"
    info = info["details"]
    assert info["nprobe"] == info["tuned_nprobe"] >= 1
    store.options.nprobe = 1
    assert store.index_info()["details"]["nprobe"] == 1
    one = recall(store.search(q, 10), truth)
    store.options.nprobe = 10_000          # capped at nlist: every list, exact after re-rank
    assert store.index_info()["details"]["nprobe"] == info["nlist"]
    assert recall(store.search(q, 10), truth) == 1.0 > one
    store.options.nprobe = None
    assert store.index_info()["details"]["nprobe"] == info["tuned_nprobe"]
    with pytest.raises(ValueError):
        StoreOptions(nprobe=0)


def test_retrain_when_grown_and_back_to_flat_when_shrunk(tmp_path):
    b = open_backend(tmp_path, StoreOptions(flat_threshold=2000, retrain_factor=1.5))
    s = b.create(CollectionInfo(name="c", model="toy", dim=DIM))
    x = clustered(3300)
    s.put(records(x[:2100]))
    idx = s.check()["index"]
    assert (idx["kind"], idx["details"]["trained_for"]) == ("ivf-sq6", 2100)
    s.put(records(x[2100:2900], start=2100))
    assert s.check()["index"]["details"]["trained_for"] == 2100          # 2900 < 1.5 * 2100
    s.put(records(x[2900:], start=2900))
    idx = s.check()["index"]
    assert (idx["kind"], idx["details"]["trained_for"], idx["size"]) == ("ivf-sq6", 3300, 3300)
    s.delete([f"r{i}" for i in range(2200)])                  # 1100 left: above 2000 / 2
    assert s.check()["index"]["kind"] == "ivf-sq6"
    s.delete([f"r{i}" for i in range(2200, 2500)])            # 800 left
    idx = s.check()["index"]
    assert (idx["kind"], idx["size"]) == ("flat", 800)
    got = s.search(x[2600:2601], 1)[0]
    assert got[0][0] == "r2600" and got[0][1] == pytest.approx(1.0, abs=SCORE_TOL)
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
    assert sb.check()["index"]["kind"] == "ivf-sq6"
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
    assert VectorIndex.read_header(path)["kind"] == "ivf-sq6"
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
    assert VectorIndex.read_header(path)["kind"] == "ivf-sq6"
    # Another collection's index file (same dim, even a plausible seq) is not used.
    b2 = open_backend(tmp_path / "other", LOW)
    s2 = b2.create(CollectionInfo(name="c", model="toy", dim=DIM))
    s2.put(records(clustered(2100, seed=4), start=50_000))     # IVF too, older seq
    s2.search(x[:1], 1)
    b2.close()
    path.write_bytes((tmp_path / "other" / "collections" / "c" / INDEX_FILE).read_bytes())
    reopen_and_check("r7", x[7])


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
def test_fts_query_quotes_every_word():
    assert fts_query('say "hi"') == '"say"* "hi"*'
    assert fts_query("NEAR(dog OR cat)") == '"NEAR"* "dog"* "OR"* "cat"*'
    assert fts_query("*** ''") is None


# ------------------------------------------------------------- check / rebuild
def test_check_finds_problems_and_rebuild_fixes_them(tmp_path, store):
    x = clustered(50)
    store.put(records(x))
    c = store.check()
    assert c["ok"] and c["items"] == 50 and c["backend"] == "sqlite"
    assert c["details"] == {"vectors": 50, "fts": 50, "integrity": "ok", "float32_vectors": 0}
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
    assert summary["details"]["fts"] == 50 and summary["index"]["kind"] == "flat"
    c = store.check()
    assert c["details"]["fts"] == 50 and c["index"]["in_step"] and c["problems"] == [
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


# -------------------------------------------------------------- filter cache
def test_filter_cache_keeps_in_step_with_every_write(tmp_path):
    b = open_backend(tmp_path, LOW)
    s = b.create(CollectionInfo(name="c", model="toy", dim=DIM))
    other = open_backend(tmp_path, LOW).open("c")            # another process's handle
    x = clustered(300)
    s.put(records(x))
    q = x[:1]

    def hits(where, store=s):
        return sorted(h[0] for h in store.search(q, 300, where=where)[0])

    assert hits({"g10": 3}) == sorted(f"r{i}" for i in range(3, 300, 10))
    s.put([Record(id="new", source="/n.jpg", vector=x[5], metadata={"g10": 3})])
    s.put([Record(id="r3", source="/r3.jpg", vector=x[3], metadata={"g10": 4})])  # replaced
    s.delete(["r13"])
    s.set_metadata("r23", {"g10": 5})
    s.set_metadata("r4", {"g10": 3}, merge=True)
    want = sorted({f"r{i}" for i in range(3, 300, 10)} - {"r3", "r13", "r23"} | {"new", "r4"})
    assert hits({"g10": 3}) == want
    assert hits({"g10": 3}, store=other) == want              # caught up from the log
    other.put([Record(id="o", source="/o.jpg", vector=x[9], metadata={"g10": 3})])
    assert hits({"g10": 3}) == sorted([*want, "o"])           # a write by the other handle
    assert hits({"$and": [{"g10": 3}, {"n": {"$lt": 100}}]}) == sorted(
        i for i in want if i.startswith("r") and int(i[1:]) < 100)
    s.clear()
    assert hits({"g10": 3}) == []
    s.put(records(x[:20]))
    assert hits({"g10": {"$in": [3, 4]}}) == ["r13", "r14", "r3", "r4"]
    other.close()
    b.close()


def test_filtered_search_asks_sqlite_nothing_when_nothing_changed(store):
    store.put(records(clustered(500)))
    where = {"$or": [{"g10": {"$in": [1, 2]}}, {"n": {"$gte": 490}}], "half": {"$ne": 0}}
    first = store.search(clustered(1, seed=3), 10, where=where)
    second = store.search(clustered(1, seed=3), 10, where=where)    # now from memory: exact
    assert [h[0] for h in second[0]] == [h[0] for h in first[0]]
    assert [h[1] for h in second[0]] == pytest.approx([h[1] for h in first[0]], abs=1e-6)
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    try:
        again = store.search(clustered(1, seed=3), 10, where=where)
    finally:
        store._conn.set_trace_callback(None)
    assert again == second and len(first[0]) == 10
    # Only the change check and the rowid -> id lookup of the 10 hits: the filter comes
    # from the filter cache and (a repeated small match set) the vectors from memory.
    assert statements[0] == "PRAGMA data_version"
    assert [s.split(" IN ")[0] for s in statements[1:]] == [
        "SELECT rowid, id FROM items WHERE rowid"], statements


def test_filters_on_ocr_text_see_the_ocr_pass(store):
    # The OCR pass writes without a seq stamp, so 'ocr' filters must not come from the cache.
    x = clustered(20)
    store.put(records(x))
    assert store.search(x[:1], 5, where={"ocr": {"$exists": True}}) == [[]]
    store.search(x[:1], 5, where={"g10": 1})                     # the cache is warm
    store.set_ocr({"r4": {"text": "EXIT"}, "r7": {"text": "cafe"}})
    got = store.search(x[:1], 5, where={"ocr": {"$exists": True}})[0]
    assert sorted(h[0] for h in got) == ["r4", "r7"]
    got = store.search(x[:1], 5, where={"ocr": "EXIT", "g10": {"$in": [4, 7]}})[0]
    assert [h[0] for h in got] == ["r4"]


def _spy_reads(s) -> list[int]:
    """The row count of every vector read made while building a match set, from now on."""
    loads: list[int] = []
    build, read = s._match_set, s._iter_vectors

    def counted_build(wanted):
        s._iter_vectors = lambda r, *a: (loads.append(len(r)), read(r, *a))[1]
        try:
            return build(wanted)
        finally:
            s._iter_vectors = read

    s._match_set = counted_build
    return loads


def test_repeated_small_filters_are_scored_exactly_from_memory(tmp_path):
    b = open_backend(tmp_path, LOW)
    s = b.create(CollectionInfo(name="c", model="toy", dim=DIM))
    x = clustered(3000)                                    # IVF
    s.put(records(x))
    q = clustered(8, seed=21)
    where = {"g100": 7}                                    # 30 rows
    keep = np.arange(3000) % 100 == 7
    stored = s.vectors([f"r{i}" for i in range(3000)])   # exact over what is stored (float16)
    s.search(q, 10)                                        # builds the vector index
    loads = _spy_reads(s)
    for _ in range(3):
        got = s.search(q, 10, where=where)
        assert [[h[0] for h in g] for g in got] == exact_top(stored, q, 10, keep)
        for qi, g in enumerate(got):
            for id, score in g:     # exact cosines of the stored (float16) vectors
                assert score == pytest.approx(float(stored[int(id[1:])] @ q[qi]), abs=1e-5)
    assert loads == [30]                  # read once, on the second sighting
    got = s.search(q[:1], 10, where=where, exclude=["r7", "r107"])[0]
    assert len(got) == 10 and not {"r7", "r107"} & {h[0] for h in got}
    s.put([Record(id="r7", source="/r7.jpg", vector=q[0], metadata={"g100": 7})])
    for _ in range(2):                    # a write moves seq: the set is read again
        assert s.search(q[:1], 1, where=where)[0][0][0] == "r7"
    s.delete(["r7"])
    assert "r7" not in {h[0] for h in s.search(q[:1], 40, where=where)[0]}
    assert len(s.search(q[:1], 40, where=where)[0]) == 29
    b.close()


def test_repeated_larger_filters_scan_codes_and_still_return_the_exact_top(tmp_path):
    # 3,000 matches: above EXACT_ROWS, so the set is kept as 8-bit codes and only the
    # candidates within the codes' error bound are re-ranked from SQLite.
    b = open_backend(tmp_path, LOW)
    s = b.create(CollectionInfo(name="c", model="toy", dim=DIM))
    x = clustered(6000)
    s.put(records(x))
    q = clustered(20, seed=5)
    keep = np.arange(6000) % 2 == 1
    stored = s.vectors([f"r{i}" for i in range(6000)])   # exact over what is stored (float16)
    s.search(q, 10)                          # builds the vector index
    loads = _spy_reads(s)
    for _ in range(3):                       # seen once, loaded, then served from memory
        got = s.search(q, 10, where={"half": 1})
        assert [[h[0] for h in g] for g in got] == exact_top(stored, q, 10, keep)
        for qi, g in enumerate(got):
            for id, score in g:
                assert score == pytest.approx(float(stored[int(id[1:])] @ q[qi]), abs=1e-5)
    assert loads == [3000, 3000]             # read once (min/max, then codes), not per query
    (entry,) = [e for _, (_, e) in s._match_vectors._entries.items() if e is not None]
    assert entry.codes is not None and entry.vectors is None and len(entry.rowids) == 3000
    top8 = exact_top(stored, q[:1], 8, keep)[0]
    got = s.search(q[:1], 5, where={"half": 1}, exclude=top8[:3])[0]
    assert [h[0] for h in got] == top8[3:]
    b.close()


def test_ivf_rerank_reads_only_candidates_that_can_win_and_stays_exact(tmp_path):
    b = open_backend(tmp_path, StoreOptions(flat_threshold=2000, nprobe=10_000))
    s = b.create(CollectionInfo(name="c", model="toy", dim=DIM))
    x = clustered(5000)
    s.put(records(x))
    q = clustered(30, seed=8)
    got = s.search(q, 10)                    # every list probed: only the re-rank can err
    assert s.index_info()["kind"] == "ivf-sq6"
    # exact over the stored (float16) vectors: float32's order differs at near-ties
    stored = s.vectors([f"r{i}" for i in range(5000)])
    assert [[h[0] for h in g] for g in got] == exact_top(stored, q, 10)
    margin = s._ix.score_error(q)
    assert np.all(margin > 0) and np.all(margin < 0.05)
    read: list[int] = []
    s._con.set_trace_callback(
        lambda sql: read.append(sql.count(",")) if "FROM vectors WHERE" in sql else None)
    s.search(q[:1], 10)
    s._con.set_trace_callback(None)
    assert len(read) == 1 and 10 <= read[0] < 50   # rows read: not all 50 candidates
    b.close()


def test_index_file_of_the_earlier_8bit_kind_still_loads_and_searches(tmp_path):
    import faiss

    from imgfind.stores.vector_index import IVF_SQ8

    x = clustered(3000)
    index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(DIM), DIM, 16,
                                          faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT)
    index.train(x)
    old = VectorIndex(index, IVF_SQ8, DIM, nprobe=16)
    old.add(np.arange(1, 3001), x)
    old.save(tmp_path / "ix", owner="c")
    back = VectorIndex.load(tmp_path / "ix", DIM, owner="c")
    assert back.kind == IVF_SQ8 == "ivf-sq8" and back.is_ivf and back.nlist == 16
    _, rowids = back.search(x[:5], 1)
    assert rowids[:, 0].tolist() == [1, 2, 3, 4, 5]
    assert 0 < back.score_error(x[:1])[0] < 0.01          # 8-bit steps, a quarter of 6-bit


def test_exact_index_numpy_search_matches_faiss_with_and_without_a_filter():
    import faiss

    rng = np.random.default_rng(3)
    ix = VectorIndex.empty(DIM)
    x = clustered(3000)
    ids = np.arange(1, 3001) * 3
    ix.add(ids, x)
    ix.remove(ids[:200])                      # positions shift: the id map must follow
    ix.add(np.array([9001, 9002]), x[:2])
    q = clustered(5, seed=4)
    allow = rng.random(9003) < 0.05
    packed = np.packbits(allow, bitorder="little")
    sel = faiss.IDSelectorBitmap(len(packed), faiss.swig_ptr(packed))
    for k in (10, 500):
        got = ix.search(q, k)                 # numpy over faiss's storage
        ref = ix.index.search(q, k)
        assert np.array_equal(got[1], ref[1]) and np.allclose(got[0], ref[0], atol=1e-5)
        got = ix.search(q, k, selector=sel, allow=allow)
        ref = ix.index.search(q, k, params=faiss.SearchParameters(sel=sel))
        assert np.array_equal(got[1], ref[1])
        found = got[1] >= 0
        assert np.allclose(got[0][found], ref[0][found], atol=1e-5)
