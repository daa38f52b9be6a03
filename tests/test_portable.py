"""Export/import: one portable file that round-trips a collection, through library and CLI."""

from __future__ import annotations

import json
import subprocess
import tarfile

import numpy as np
import pytest

import imgfind
from imgfind.errors import AlreadyExists, InvalidInput, SourceError
from imgfind.portable import FIELDS, export_collection, import_collection, read_manifest

from .conftest import real_photos
from .test_reembed import NEW_NAME, SAME, wide_model_dir  # noqa: F401  (fixture)

KEPT = [f for f in FIELDS if f not in ("added", "updated")]


@pytest.fixture
def col(library, photo_dir):
    c = library.create_collection("photos")
    c.add(photo_dir, show_progress=False)
    with open(real_photos(13)[12], "rb") as f:
        c.insert(f.read(), metadata={"kind": "upload", "nested": {"a": [1, 2.5, None]}},
                 id="stored-1")
    for i, it in enumerate(c.items()):
        c.update(it.id, metadata={"n": i, "tags": ["x", "ü"]}, merge=True)
    return c


def state(c) -> dict:
    out = {}
    for it in c.items(limit=1000):
        out[it.id] = ({f: getattr(it, f) for f in KEPT}, c.thumbnail(it.id),
                      c.store.original(it.id))
    return out


def test_round_trip_keeps_everything(col, tmp_path, tiny_model_dir):
    path = tmp_path / "photos.tar"
    report = export_collection(col, path)
    assert report["items"] == 13 and report["chunks"] == 1 and path.stat().st_size > 0
    manifest = read_manifest(path)
    assert manifest["collection"]["model"] == "imgfind-test-tiny"
    assert manifest["items"] == 13
    with imgfind.open(tmp_path / "other", model_path=tiny_model_dir) as lib:
        got = import_collection(lib, path, name="copy")
        assert got == {"collection": "copy", "items": 13, "model": "imgfind-test-tiny",
                       "dim": 64, "reembedded": False}
        copy = lib.collection("copy")
        assert state(copy) == state(col)
        ids = sorted(state(col))
        assert np.allclose(copy.store.vectors(ids), col.store.vectors(ids), atol=1e-7)
        assert [h.id for h in copy.search(like="stored-1", k=5)] == \
               [h.id for h in col.search(like="stored-1", k=5)]
        assert copy.check()["ok"]
        with pytest.raises(AlreadyExists):
            import_collection(lib, path, name="copy")


def test_chunks_and_gzip(col, tmp_path, monkeypatch):
    import imgfind.portable as portable

    monkeypatch.setattr(portable, "CHUNK_ITEMS", 5)
    path = tmp_path / "photos.tgz"
    assert export_collection(col, path)["chunks"] == 3
    with tarfile.open(path, "r:gz") as tar:
        names = tar.getnames()
    assert names[0] == "imgfind-export.json" and names[-1] == "end.json"
    assert "chunks/000002/items.jsonl" in names
    got = import_collection(col.library, path, name="again")
    assert got["items"] == 13 and state(col.library.collection("again")) == state(col)


def test_import_into_another_model_embeds_again(col, tmp_path, wide_model_dir):  # noqa: F811
    path = tmp_path / "photos.tar"
    export_collection(col, path)
    got = import_collection(col.library, path, name="wide", model_path=wide_model_dir)
    assert got["reembedded"] and got["model"] == NEW_NAME and got["dim"] == 128
    wide = col.library.collection("wide")
    assert state(wide) == state(col)
    with imgfind.open(tmp_path / "ref", model_path=wide_model_dir) as lib:
        ref = lib.create_collection("ref")
        ids = sorted(state(col))
        want = ref.store.vectors([ref.insert(col.image(i)) for i in ids])
    assert np.allclose((wide.store.vectors(ids) * want).sum(axis=1), 1, atol=SAME)


def test_another_model_refuses_when_images_are_unreachable(col, tmp_path, photo_dir,
                                                           wide_model_dir):  # noqa: F811
    path = tmp_path / "photos.tar"
    export_collection(col, path)
    gone = sorted(photo_dir.iterdir())[:2]
    for p in gone:
        p.unlink()
    with pytest.raises(SourceError, match="2 images of this export are not stored"):
        import_collection(col.library, path, name="wide", model_path=wide_model_dir)
    assert "wide" not in {c.name for c in col.library.collections()}
    # with the exported model nothing needs reading: it imports
    assert import_collection(col.library, path, name="same")["items"] == 13


def test_bad_files_are_refused_and_leave_nothing(col, tmp_path):
    lib = col.library
    with pytest.raises(SourceError):
        import_collection(lib, tmp_path / "missing.tar")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(InvalidInput, match="not an imgfind export"):
        import_collection(lib, junk)
    other = tmp_path / "other.tar"
    with tarfile.open(other, "w") as tar:
        tar.add(real_photos(1)[0], arcname="x.jpg")
    with pytest.raises(InvalidInput, match="not an imgfind export"):
        import_collection(lib, other)
    good = tmp_path / "good.tar"
    export_collection(col, good)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    with pytest.raises(InvalidInput, match="truncated|damaged"):
        import_collection(lib, cut, name="cut")
    assert "cut" not in {c.name for c in lib.collections()}
    with pytest.raises(InvalidInput, match="is a folder"):
        export_collection(col, tmp_path)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["imgfind", *args], capture_output=True, text=True, timeout=300)


def test_cli_export_import(col, tmp_path):
    home = str(col.library.home)
    col.library.close()
    path = tmp_path / "out.tar"
    r = run("--home", home, "export", "photos", str(path), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["items"] == 13
    r = run("--home", str(tmp_path / "h2"), "import", str(path), "--as", "restored", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["collection"] == "restored"
    r = run("--home", str(tmp_path / "h2"), "import", str(path), "--as", "restored")
    assert r.returncode == 1 and "already exists" in r.stderr and "Traceback" not in r.stderr
    r = run("--home", str(tmp_path / "h2"), "import", str(tmp_path / "nope.tar"))
    assert r.returncode == 1 and "no such file" in r.stderr
    r = run("--home", home, "export", "nosuch", str(path))
    assert r.returncode == 1 and "nosuch" in r.stderr
    r = run("--home", str(tmp_path / "h2"), "collections", "--json")
    assert [c["name"] for c in json.loads(r.stdout)] == ["restored"]
    with imgfind.open(tmp_path / "h2") as lib, imgfind.open(home) as lib1:
        assert state(lib.collection("restored")) == state(lib1.collection("photos"))
