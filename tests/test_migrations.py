"""Data safety across versions: old stores migrate on open, newer ones are refused untouched.

tests/fixtures/store-v1.sql is a collection database written by imgfind before schema
migrations existed (schema 1), dumped table by table; every test loads it into a real
SQLite file. Migrations added later run against it here without further work.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

import imgfind
from imgfind.errors import AlreadyExists, StoreError, StoreTooNew
from imgfind.stores import CollectionInfo, Record, open_backend
from imgfind.stores.sqlite import DB_FILE, migrations
from imgfind.stores.sqlite.migrations import Migration, current_version

FIXTURE = Path(__file__).parent / "fixtures" / "store-v1.sql"


def load_v1(home: Path, name: str = "old") -> Path:
    """The v1 fixture as ``<home>/collections/<name>/items.db``; returns the db path."""
    folder = home / "collections" / name
    folder.mkdir(parents=True)
    db = folder / DB_FILE
    con = sqlite3.connect(db)
    con.executescript(FIXTURE.read_text())
    con.execute("PRAGMA journal_mode=DELETE")     # everything in the one file
    con.close()
    return db


def schema_of(db: Path) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0]
    finally:
        con.close()


def tables_of(db: Path) -> set[str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()


def test_fixture_is_small_and_of_the_old_format(tmp_path):
    assert FIXTURE.stat().st_size < 100_000
    assert schema_of(load_v1(tmp_path)) == 1


def test_v1_store_opens_with_every_item_and_works(tmp_path):
    db = load_v1(tmp_path)
    backend = open_backend(tmp_path)
    assert [c.name for c in backend.collections()] == ["old"]
    s = backend.open("old")
    assert schema_of(db) == current_version()
    assert (s.info.model, s.info.dim) == ("toy", 4)
    assert s.ids() == ["i0", "i1", "i2", "i4"]                  # i3 was deleted in v1
    item = s.get(["i0"])[0]
    assert item.metadata == {"breed": "labrador", "n": 0, "tags": ["beach"],
                             "title": "sunset walk"}
    assert item.exif["GPS"] == {"lat": 59.9} and item.file["name"] == "dog0.jpg"
    assert s.search(np.array([[1, 0, 0, 0]], np.float32), k=2)[0][0] == ("i0", 1.0)
    assert [h[0] for h in s.search(np.array([[0, 1, 0, 0]], np.float32), k=4,
                                   where={"breed": "poodle"})[0]] == ["i1"]
    assert [h[0] for h in s.text_search("sunset")] == ["i0"]
    assert s.by_sha256([f"{4:064x}"]) == {f"{4:064x}": "i4"}
    assert s.source_states("/photos/")["/photos/dog1.jpg"].mtime_ns == 10**18 + 1
    assert s.thumbnail("i2") == b"\xff\xd8thumb2" and s.original("i4") == b"orig"
    assert s.check()["ok"], s.check()
    s.put([Record(id="new", source="/photos/new.jpg", vector=np.ones(4, np.float32))])
    assert s.count() == 5 and s.count({"breed": "labrador"}) == 3
    backend.close()


def test_migrations_run_in_order_in_one_transaction(tmp_path, monkeypatch):
    db = load_v1(tmp_path)
    seen: list[int] = []

    def backfill(con: sqlite3.Connection) -> None:
        seen.append(con.execute("SELECT count(*) FROM extra").fetchone()[0])
        con.execute("INSERT INTO extra(rowid, note) SELECT rowid, id FROM items")

    steps = [Migration(2, "extra table", "CREATE TABLE extra(rowid INTEGER PRIMARY KEY, "
                                         "note TEXT); CREATE INDEX extra_note ON extra(note)"),
             Migration(3, "backfill", backfill)]
    monkeypatch.setattr(migrations, "MIGRATIONS", steps)
    backend = open_backend(tmp_path)
    s = backend.open("old")
    assert seen == [0] and schema_of(db) == 3
    assert s.count() == 4
    backend.close()
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM extra").fetchone()[0] == 4
    con.close()
    # A fresh store runs the same steps inside its creating transaction.
    fresh = open_backend(tmp_path / "fresh").create(CollectionInfo(name="n", model="t", dim=2))
    assert "extra" in tables_of(fresh.folder / DB_FILE) and schema_of(fresh.folder / DB_FILE) == 3
    fresh.close()


def test_a_failing_migration_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    db = load_v1(tmp_path)

    def broken(con: sqlite3.Connection) -> None:
        con.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(migrations, "MIGRATIONS", [
        Migration(2, "extra table", "CREATE TABLE extra(x)"), Migration(3, "broken", broken)])
    backend = open_backend(tmp_path)
    with pytest.raises(StoreError, match="migration 3 \\(broken\\).*unchanged"):
        backend.open("old")
    assert schema_of(db) == 1 and "extra" not in tables_of(db)
    monkeypatch.setattr(migrations, "MIGRATIONS", [Migration(2, "extra table",
                                                             "CREATE TABLE extra(x)")])
    assert backend.open("old").count() == 4 and schema_of(db) == 2
    backend.close()


def test_out_of_order_migrations_are_a_programming_error(monkeypatch):
    monkeypatch.setattr(migrations, "MIGRATIONS", [Migration(3, "skips 2", "SELECT 1")])
    with pytest.raises(RuntimeError, match="out of order"):
        current_version()


def make_newer(tmp_path: Path) -> Path:
    db = load_v1(tmp_path)
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value=? WHERE key='schema'", (current_version() + 1,))
    con.execute("CREATE TABLE from_the_future(x)")
    con.commit()
    con.close()
    return db


def test_a_store_from_a_newer_imgfind_is_refused_untouched_and_still_listed(tmp_path):
    db = make_newer(tmp_path)
    before = db.read_bytes()
    backend = open_backend(tmp_path)
    with pytest.raises(StoreTooNew, match="upgrade imgfind") as e:
        backend.open("old")
    assert e.value.code == "store_too_new" and e.value.status == 409
    (listed,) = backend.collections()
    assert listed.name == "old" and listed.model == "toy" and "upgrade imgfind" in listed.problem
    with pytest.raises(StoreTooNew):
        backend.create(CollectionInfo(name="old", model="toy", dim=4))
    backend.close()
    with imgfind.open(tmp_path) as lib:
        with pytest.raises(StoreTooNew, match="upgrade imgfind"):
            lib.create_collection("old", model="phash", exist_ok=True)
        with pytest.raises(StoreTooNew):
            lib.create_collection("old", model="phash")
        assert [c.name for c in lib.collections()] == ["old"]
    assert db.read_bytes() == before


@pytest.mark.parametrize("content", [b"this is not sqlite" * 100, b"SQLite format 3\x00" * 64])
def test_create_never_deletes_a_store_it_cannot_read(tmp_path, content):
    folder = tmp_path / "collections" / "c"
    folder.mkdir(parents=True)
    (folder / DB_FILE).write_bytes(content)
    with imgfind.open(tmp_path) as lib:
        for exist_ok in (True, False):
            with pytest.raises(StoreError, match="does not overwrite"):
                lib.create_collection("c", model="phash", exist_ok=exist_ok)
    assert (folder / DB_FILE).read_bytes() == content


def test_a_foreign_sqlite_database_is_not_overwritten(tmp_path):
    folder = tmp_path / "collections" / "c"
    folder.mkdir(parents=True)
    con = sqlite3.connect(folder / DB_FILE)
    con.execute("CREATE TABLE precious(x)")
    con.execute("INSERT INTO precious VALUES ('keep me')")
    con.commit()
    con.close()
    before = (folder / DB_FILE).read_bytes()
    backend = open_backend(tmp_path)
    assert backend.collections() == []
    with pytest.raises(StoreError, match="does not overwrite"):
        backend.create(CollectionInfo(name="c", model="toy", dim=4))
    with pytest.raises(StoreError):
        backend.open("c")
    backend.close()
    assert (folder / DB_FILE).read_bytes() == before


def test_an_existing_current_store_is_already_exists_not_recreated(tmp_path):
    backend = open_backend(tmp_path)
    s = backend.create(CollectionInfo(name="c", model="toy", dim=2))
    s.put([Record(id="a", source="/a.jpg", vector=np.ones(2, np.float32))])
    backend.close()
    backend = open_backend(tmp_path)
    with pytest.raises(AlreadyExists):
        backend.create(CollectionInfo(name="c", model="toy", dim=2))
    assert backend.open("c").count() == 1
    backend.close()


def test_a_newer_store_is_listed_by_the_cli_and_rest_and_refused_with_upgrade(tmp_path):
    import json
    import os
    import subprocess
    import urllib.error
    import urllib.request

    from imgfind.server.background import BackgroundServer

    db = make_newer(tmp_path)
    before = db.read_bytes()
    env = {k: v for k, v in os.environ.items() if k != "IMGFIND_STORE"}
    r = subprocess.run(["imgfind", "--home", str(tmp_path), "collections", "--json"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert row["name"] == "old" and row["count"] is None and "upgrade imgfind" in row["problem"]
    r = subprocess.run(["imgfind", "--home", str(tmp_path), "-c", "old", "check"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1 and "upgrade imgfind" in r.stderr and "Traceback" not in r.stderr
    with imgfind.open(tmp_path) as lib, BackgroundServer(lib) as srv:
        with urllib.request.urlopen(f"{srv.url}/api/collections") as resp:
            (row,) = json.load(resp)["collections"]
        assert row["count"] is None and "upgrade imgfind" in row["problem"]
        try:
            urllib.request.urlopen(f"{srv.url}/api/collections/old/items")
            raise AssertionError("opened a store from a newer imgfind")
        except urllib.error.HTTPError as e:
            assert e.code == 409 and json.load(e)["error"]["code"] == "store_too_new"
    assert db.read_bytes() == before
