"""Stored vectors at half precision: float16 rows on disk, float32 rows from before still read.

The SQLite store writes every vector as float16 (2 * dim bytes) since schema 5 and
decodes each blob by its length, so a store written by an older imgfind (float32
rows, 4 * dim bytes) keeps working with old and new rows mixed. Old rows are written
here with sqlite3 directly, byte for byte as the older store wrote them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from imgfind.errors import StoreError, StoreTooNew
from imgfind.portable import export_collection, import_collection
from imgfind.stores import CollectionInfo, Record, StoreOptions, open_backend
from imgfind.stores.sqlite import DB_FILE, INDEX_FILE, migrations
from imgfind.stores.sqlite import store as store_module
from imgfind.stores.sqlite.codec import decode_vectors, encode_vectors

from .contract.helpers import DIM, VEC_ATOL, VEC_RTOL, clustered, exact_top, records
from .test_migrations import load_v1, schema_of
from .test_reembed import NEW_NAME, wide_model_dir  # noqa: F401  (fixture)

LOW = StoreOptions(flat_threshold=2000, auto_index_min=500)


def blob_sizes(db: Path, table: str = "vectors") -> dict[int, int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return dict(con.execute(f"SELECT length(v), count(*) FROM {table} GROUP BY 1"))
    finally:
        con.close()


def write_float32(db: Path, vectors: dict[int, np.ndarray]) -> None:
    """Rows as an imgfind before schema 5 wrote them: rowid -> float32 bytes."""
    con = sqlite3.connect(db)
    con.executemany("UPDATE vectors SET v=? WHERE rowid=?",
                    [(np.asarray(v, "<f4").tobytes(), r) for r, v in vectors.items()])
    con.commit()
    con.close()


def half(x: np.ndarray) -> np.ndarray:
    """float16 values of ``x``, as float32."""
    return x.astype(np.float16).astype(np.float32)


def kept(x: np.ndarray) -> np.ndarray:
    """What ``put`` stores for ``x``: normalised in float32 as the store does, then float16."""
    return half(x / np.linalg.norm(x, axis=1, keepdims=True))


@pytest.fixture
def backend(tmp_path):
    b = open_backend(tmp_path / "home", LOW)
    yield b
    b.close()


def test_codec_decodes_by_length_and_refuses_any_other_length():
    x = clustered(3)
    new = encode_vectors(x)
    assert [len(b) for b in new] == [2 * DIM] * 3
    np.testing.assert_array_equal(decode_vectors(new, DIM), half(x))
    old = [v.astype("<f4").tobytes() for v in x]
    mixed = decode_vectors([old[0], new[1], old[2]], DIM, [7, 8, 9])
    assert mixed.dtype == np.float32 and mixed.flags.writeable
    np.testing.assert_array_equal(mixed, np.stack([x[0], half(x[1:2])[0], x[2]]))
    np.testing.assert_array_equal(decode_vectors(old, DIM), x)       # float32 read exactly
    assert decode_vectors([], DIM).shape == (0, DIM)
    for bad in (new[0][:-2], old[0] + b"\0", b""):
        with pytest.raises(StoreError, match=f"row 8 is {len(bad)} bytes.*{2 * DIM}.*damaged"):
            decode_vectors([new[0], bad], DIM, [7, 8])


def test_a_new_store_writes_float16_rows_live_and_staged(backend):
    s = backend.create(CollectionInfo(name="c", model="toy", dim=DIM))
    x = clustered(50)
    s.put(records(x))
    db = s.folder / DB_FILE
    assert blob_sizes(db) == {2 * DIM: 50}
    assert schema_of(db) == migrations.current_version() >= 5
    got = s.vectors([f"r{i}" for i in range(50)])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, kept(x))                  # float32 upcasts, exactly
    s.begin_staging(CollectionInfo(name="c", model="wider", dim=48))
    tasks = s.staging_todo(limit=100)
    w = clustered(len(tasks), seed=3, dim=48)
    assert s.put_staged(tasks, w) == 50
    assert blob_sizes(db, "staged_vectors") == {96: 50}
    assert s.commit_staging()
    assert blob_sizes(db) == {96: 50} and s.dim == 48
    np.testing.assert_array_equal(s.vectors([t.id for t in tasks]), kept(w))


@pytest.mark.parametrize("n", [800, 3000], ids=["flat", "ivf"])
def test_float32_rows_from_before_mix_with_new_rows(tmp_path, backend, n):
    s = backend.create(CollectionInfo(name="c", model="toy", dim=DIM))
    x = clustered(n)
    s.put(records(x))
    s.search(x[:1], 1)                             # an index file of float16 values
    rowid = dict(s._con.execute("SELECT id, rowid FROM items"))
    old = [i for i in range(n) if i % 2 == 0]
    backend.close()
    db = tmp_path / "home" / "collections" / "c" / DB_FILE
    write_float32(db, {rowid[f"r{i}"]: x[i] for i in old})
    (db.parent / INDEX_FILE).unlink()              # the index is built again from the rows
    assert blob_sizes(db) == {2 * DIM: n - len(old), 4 * DIM: len(old)}

    b = open_backend(tmp_path / "home", LOW)
    s = b.open("c")
    ids = [f"r{i}" for i in range(n)]
    stored = kept(x)
    stored[old] = x[old]                           # float32 rows come back as they are
    np.testing.assert_array_equal(s.vectors(ids), stored)
    np.testing.assert_array_equal(np.vstack([v for _, v in s.all_vectors(batch=333)]), stored)
    assert s.get(["r0", "r1"])[0].source == "/data/img0.jpg"
    q = clustered(20, seed=5)
    if n >= 2000:
        assert s.index_info()["kind"] == "ivf-sq6"
        s.options.nprobe = 10_000                  # every list: exact after the re-rank
    got = s.search(q, 10)                          # exact over the stored values
    assert [[h[0] for h in g] for g in got] == exact_top(stored, q, 10)
    for qi, g in enumerate(got):
        for id, score in g:
            assert score == pytest.approx(float(stored[int(id[1:])] @ q[qi]), abs=1e-5)
    assert [h[0] for h in s.search(q, 5, where={"half": 0})[0]] == \
        exact_top(stored, q[:1], 5, np.arange(n) % 2 == 0)[0]
    c = s.check()
    assert c["ok"] and c["details"]["float32_vectors"] == len(old)
    # Writing an item again stores it as float16.
    s.put([Record(id="r0", source="/new.jpg", vector=x[0])])
    assert blob_sizes(db)[4 * DIM] == len(old) - 1
    b.close()


def test_rebuild_converts_float32_rows_in_batches_and_survives_a_kill(tmp_path, backend,
                                                                      monkeypatch):
    s = backend.create(CollectionInfo(name="c", model="toy", dim=DIM))
    x = clustered(1000)
    s.put(records(x))
    db = s.folder / DB_FILE
    rowid = dict(s._con.execute("SELECT id, rowid FROM items"))
    write_float32(db, {rowid[f"r{i}"]: x[i] for i in range(1000)})
    calls = 0
    real = store_module.encode_vectors

    def dies_third_time(v: np.ndarray) -> list[bytes]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt           # a kill in the middle of the third batch
        return real(v)

    monkeypatch.setattr(store_module, "encode_vectors", dies_third_time)
    with pytest.raises(KeyboardInterrupt):
        s._convert_float32(batch=300)
    assert blob_sizes(db) == {2 * DIM: 600, 4 * DIM: 400}    # two batches committed
    ids = [f"r{i}" for i in range(1000)]
    stored = np.vstack([half(x[:600]), x[600:]])
    np.testing.assert_array_equal(s.vectors(ids), stored)
    assert s.check()["ok"] and s.check()["details"]["float32_vectors"] == 400
    monkeypatch.setattr(store_module, "encode_vectors", real)
    report = s.rebuild()
    assert report["details"]["converted"] == 400
    assert blob_sizes(db) == {2 * DIM: 1000}
    np.testing.assert_array_equal(s.vectors(ids), half(x))
    q = clustered(10, seed=4)
    assert [[h[0] for h in g] for g in s.search(q, 10)] == exact_top(half(x), q, 10)
    assert s.check()["details"]["float32_vectors"] == 0
    assert s.rebuild()["details"]["converted"] == 0


def test_a_vector_blob_of_a_wrong_length_is_a_store_error_naming_the_row(tmp_path, backend):
    s = backend.create(CollectionInfo(name="c", model="toy", dim=DIM))
    s.put(records(clustered(20)))
    s.search(clustered(1), 1)                     # the index file, saved on close
    bad = s._con.execute("SELECT rowid FROM items WHERE id='r5'").fetchone()[0]
    backend.close()
    db = tmp_path / "home" / "collections" / "c" / DB_FILE
    con = sqlite3.connect(db)
    con.execute("UPDATE vectors SET v=? WHERE rowid=?", (b"\0" * (3 * DIM), bad))
    con.commit()
    con.close()
    b = open_backend(tmp_path / "home", LOW)
    s = b.open("c")
    message = f"row {bad} is {3 * DIM} bytes"
    with pytest.raises(StoreError, match=message):
        s.vectors(["r4", "r5"])
    with pytest.raises(StoreError, match=message):
        list(s.all_vectors())
    assert s.vectors(["r4"]).shape == (1, DIM)              # the other rows still read
    c = s.check()                                           # the saved index is in step
    assert not c["ok"] and any("1 stored vectors have a wrong size for 32-d (items 'r5')" in p
                               for p in c["problems"]), c
    b.close()
    (db.parent / INDEX_FILE).unlink()
    b = open_backend(tmp_path / "home", LOW)
    with pytest.raises(StoreError, match=message):          # a rebuild from the rows
        b.open("c").search(clustered(1), 3)
    b.close()


def test_an_older_imgfind_refuses_a_store_that_may_hold_float16_rows(tmp_path, monkeypatch):
    b = open_backend(tmp_path)
    b.create(CollectionInfo(name="c", model="toy", dim=DIM)).put(records(clustered(5)))
    b.close()
    db = tmp_path / "collections" / "c" / DB_FILE
    before = db.read_bytes()
    step = next(m for m in migrations.MIGRATIONS if m.what == "float16 vectors")
    older = [m for m in migrations.MIGRATIONS if m.version < step.version]
    monkeypatch.setattr(migrations, "MIGRATIONS", older)     # the imgfind before it
    b = open_backend(tmp_path)
    with pytest.raises(StoreTooNew, match="upgrade imgfind"):
        b.open("c")
    assert "upgrade imgfind" in b.collections()[0].problem
    b.close()
    assert db.read_bytes() == before


def test_upgrading_a_float32_store_rewrites_no_row(tmp_path):
    db = load_v1(tmp_path)                                    # float32 rows, 4-d
    assert blob_sizes(db) == {16: 4}
    con = sqlite3.connect(db)
    raw = dict(con.execute("SELECT rowid, v FROM vectors"))
    con.close()
    b = open_backend(tmp_path)
    s = b.open("old")
    assert schema_of(db) == migrations.current_version()
    assert s.search(np.array([[1, 0, 0, 0]], np.float32), k=1)[0] == [("i0", 1.0)]
    s.put([Record(id="new", source="/new.jpg", vector=np.array([0, 0, 0.6, 0.8], np.float32))])
    b.close()
    con = sqlite3.connect(db)
    after = dict(con.execute("SELECT rowid, v FROM vectors"))
    con.close()
    assert {r: after[r] for r in raw} == raw                  # old rows untouched
    assert blob_sizes(db) == {16: 4, 8: 1}


def test_export_import_and_reembed_with_mixed_rows(library, photo_dir, tmp_path,
                                                   wide_model_dir):  # noqa: F811
    col = library.create_collection("photos")
    col.add(photo_dir, show_progress=False)
    ids = sorted(it.id for it in col.items())
    vecs = col.store.vectors(ids)
    rowid = dict(col.store._con.execute("SELECT id, rowid FROM items"))
    # as an older imgfind stored them: float32 (the float16 values, so searches agree)
    write_float32(col.store.folder / DB_FILE, {rowid[i]: vecs[n] for n, i in enumerate(ids)
                                               if n % 2})
    assert blob_sizes(col.store.folder / DB_FILE) == {128: 6, 256: 6}
    hits = [h.id for h in col.search(like=ids[1], k=12)]
    path = tmp_path / "photos.tar"
    assert export_collection(col, path)["items"] == 12
    got = import_collection(library, path, name="copy")
    assert got["items"] == 12 and not got["reembedded"]
    copy = library.collection("copy")
    # put normalises again: a value may move by one float16 step (2**-10 relatively)
    np.testing.assert_allclose(copy.store.vectors(ids), vecs, rtol=2 * VEC_RTOL, atol=VEC_ATOL)
    assert blob_sizes(copy.store.folder / DB_FILE) == {128: 12}
    assert [h.id for h in copy.search(like=ids[1], k=12)] == hits
    report = col.reembed(model_path=wide_model_dir, batch_size=4)
    assert report.switched and report.embedded == 12 and col.model == NEW_NAME
    assert blob_sizes(col.store.folder / DB_FILE) == {256: 12}        # 128-d float16
    assert col.store.vectors(ids).shape == (12, 128) and col.check()["ok"]
