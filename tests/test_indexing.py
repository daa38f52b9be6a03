"""Issue 12 part 4 (indexing correctness) and part 2 (typed library errors).

Library tests use a weight-free ``phash`` collection (real SQLite store, real photos);
the acceptance command runs the installed ``imgfind`` console script with the tiny CLIP.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import tarfile
import threading
import time
from pathlib import Path

import pytest

import imgfind
from imgfind.errors import InvalidArgument, ModelMismatch
from imgfind.sources import NOT_AN_IMAGE

from .conftest import real_photos
from .test_cli_errors import imgfind_cli


@pytest.fixture
def col(tmp_path: Path):
    lib = imgfind.open(tmp_path / "home")
    yield lib.create_collection("default", model="phash")
    lib.close()


def photos(folder: Path, n: int, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in real_photos(n, start):
        shutil.copy(p, folder / p.name)
        out.append(folder / p.name)
    return out


def sources_of(col) -> list[str]:
    return sorted(it.source for it in col.items(limit=1000))


def test_acceptance_extensionless_jpeg_indexed_corrupt_jpg_error(tmp_path, tiny_model_dir):
    folder = tmp_path / "DIR"
    folder.mkdir()
    good, other = real_photos(2)
    shutil.copy(good, folder / "tmp")  # a JPEG without extension (Caltech's BACKGROUND_Google)
    (folder / "corrupt.jpg").write_bytes(other.read_bytes()[:2000])
    (folder / "README").write_text("photos from the trip")
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    proc = imgfind_cli("index", str(folder), "--json", "--model-path", str(tiny_model_dir),
                       home=tmp_path / "H")
    assert proc.returncode == 3, proc.stderr
    report = json.loads(proc.stdout)
    assert report["indexed"] == 1
    assert [e["source"] for e in report["errors"]] == [str(folder / "corrupt.jpg")]
    ignored = {Path(i["source"]).name: i["reason"] for i in report["ignored"]}
    assert ignored == {"README": NOT_AN_IMAGE, ".DS_Store": "hidden"}
    hits = json.loads(imgfind_cli("search", "--image", str(good), "-k", "1", "--json",
                                  home=tmp_path / "H").stdout)
    assert hits[0]["source"] == str(folder / "tmp")


def test_links_loops_and_folders_named_like_images_are_ignored_with_reason(col, tmp_path):
    folder = tmp_path / "p"
    [a] = photos(folder, 1)
    (folder / "gone.jpg").symlink_to(folder / "nowhere.jpg")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder)  # a loop
    (folder / "empty.jpg").mkdir()
    report = col.add(folder, show_progress=False)
    assert (report.indexed, report.errors) == (1, [])
    ignored = {Path(i["source"]).name: i["reason"] for i in report.ignored}
    assert ignored["gone.jpg"] == "broken symbolic link"
    assert "loop" in ignored["up"]
    assert "folder" in ignored["empty.jpg"]
    assert set(ignored) == {"gone.jpg", "up", "empty.jpg"}
    # a glob that matches a folder says so too
    report = col.add(str(folder / "*.jpg"), show_progress=False)
    assert {Path(i["source"]).name for i in report.ignored} >= {"empty.jpg", "gone.jpg"}
    assert report.skipped == 1 and sources_of(col) == [str(a)]


def test_folder_reindex_never_removes_a_file_still_on_disk(col, tmp_path):
    folder = tmp_path / "p"
    files = photos(folder, 2)
    hidden = folder / ".hidden.jpg"
    shutil.copy(real_photos(1, start=5)[0], hidden)
    deep = photos(folder / "sub", 1, start=6)[0]
    noext = folder / "scan"
    shutil.copy(real_photos(1, start=7)[0], noext)
    for f in (files[0], hidden, deep, noext):  # each file on its own first
        assert col.add(f, show_progress=False).indexed == 1
    report = col.add(folder, recursive=False, show_progress=False)
    assert report.removed == 0
    assert (report.indexed, report.skipped) == (1, 2)  # files[1]; files[0] and scan
    assert len(sources_of(col)) == 5
    report = col.add(folder, show_progress=False)
    assert report.removed == 0 and report.skipped == 4 and col.count() == 5
    deep.unlink()  # really gone: removed
    assert col.add(folder, show_progress=False).removed == 1
    assert str(deep) not in sources_of(col) and str(hidden) in sources_of(col)


def test_duplicates_apart_from_skipped_and_touch_is_not_reembedded(col, tmp_path):
    folder = tmp_path / "p"
    a, b = photos(folder, 2)
    first = col.add(folder, show_progress=False)
    assert (first.indexed, first.duplicates, first.skipped) == (2, 0, 0)
    item = next(it for it in col.items() if it.source == str(a))
    col.set_metadata(item.id, {"album": "kept"})
    shutil.copy(a, folder / "copy.jpg")
    now = time.time_ns() + 10**9
    os.utime(a, ns=(now, now))  # touched: new mtime, same bytes
    embedded: list[int] = []
    original = col.embedder.embed_pixels
    col.embedder.embed_pixels = lambda px: embedded.append(len(px)) or original(px)
    try:
        report = col.add(folder, show_progress=False)
    finally:
        del col.embedder.embed_pixels
    assert (report.indexed, report.updated, report.duplicates, report.skipped) == (0, 0, 1, 2)
    assert embedded == []  # nothing embedded: the touched file kept its vector
    again = col.get(item.id)
    assert again.metadata == {"album": "kept"} and again.file["mtime_ns"] == now
    assert col.add(folder, show_progress=False).skipped == 2  # the new mtime was saved
    d = report.to_dict()
    assert d["duplicates"] == 1 and d["skipped"] == 2


def test_csv_id_column_is_the_item_id(col, tmp_path):
    folder = tmp_path / "p"
    a, b, c = photos(folder, 3)
    csv = folder / "list.csv"
    csv.write_text(f"path,id,album\n{a.name},007,rome\n{b.name},beach-1,nice\n"
                   f"{c.name},007,dup\n")
    report = col.add(csv, show_progress=False)
    assert report.indexed == 2
    assert [e["source"] for e in report.errors] == [str(c)]
    assert "007" in report.errors[0]["error"]
    it = col.get("007")
    assert it.source == str(a) and it.metadata == {"album": "rome"}
    assert col.get("beach-1").metadata == {"album": "nice"}
    # an id already taken by another file is a per-row error; the rest goes on
    csv2 = folder / "more.csv"
    csv2.write_text(f"path,id\n{c.name},beach-1\n")
    report = col.add(csv2, show_progress=False)
    assert report.indexed == 0 and len(report.errors) == 1
    assert "beach-1" in report.errors[0]["error"] and str(b) in report.errors[0]["error"]


@pytest.fixture
def http_folder(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_remote_archive_indexes_like_a_local_one(tmp_path, http_folder):
    root, base = http_folder
    files = photos(tmp_path / "src", 3)
    with tarfile.open(root / "photos.tar.gz", "w:gz") as tf:
        for f in files:
            tf.add(f, arcname=f"trip/{f.name}")
        readme = tmp_path / "README.txt"
        readme.write_text("x")
        tf.add(readme, arcname="trip/README.txt")
    home = tmp_path / "H"
    assert imgfind_cli("create", "default", "--model", "phash", home=home).returncode == 0
    url = f"{base}/photos.tar.gz"
    proc = imgfind_cli("index", url, "--json", home=home)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["indexed"], report["errors"]) == (3, [])
    hits = json.loads(imgfind_cli("search", "--image", str(files[1]), "-k", "1", "--json",
                                  home=home).stdout)
    assert hits[0]["source"] == f"{url}!trip/{files[1].name}"
    again = json.loads(imgfind_cli("index", url, "--json", home=home).stdout)
    assert (again["indexed"], again["skipped"]) == (0, 3)
    missing = imgfind_cli("index", f"{base}/nope.zip", home=home)
    assert missing.returncode == 1 and "404" in missing.stderr


def test_remote_archive_refuses_private_hosts_for_api_callers(tmp_path, http_folder):
    root, base = http_folder
    with tarfile.open(root / "a.tar", "w") as tf:
        tf.add(real_photos(1)[0], arcname="x.jpg")
    lib = imgfind.open(tmp_path / "h", allow_private_urls=False)
    col = lib.create_collection("default", model="phash")
    with pytest.raises(imgfind.errors.SourceError, match="private or local"):
        col.add(f"{base}/a.tar", show_progress=False)
    lib.close()


def test_library_calls_with_unsupported_arguments_raise_typed_errors(col, tmp_path):
    photos(tmp_path / "p", 2)
    col.add(tmp_path / "p", show_progress=False)
    a, b = (it.id for it in col.items())
    cases = [
        lambda: col.search("x", bogus=1),
        lambda: col.delete_batch(a),
        lambda: col.search_batch("a dog"),
        lambda: col.items(limit="10"),
        lambda: col.add(3),
        lambda: col.library.create_collection("y", modle="phash"),
        lambda: col.insert(str(tmp_path / "p" / "x.jpg"), meta={}),
    ]
    for case in cases:
        with pytest.raises(InvalidArgument) as info:
            case()
        assert type(info.value) is InvalidArgument and info.value.code == "invalid_argument"
    assert col.count() == 2  # delete_batch("...") deleted nothing


def test_exist_ok_with_another_model_names_both(col):
    lib = col.library
    assert lib.create_collection("default", model="phash", exist_ok=True).model == "phash"
    with pytest.raises(ModelMismatch, match="'phash'.*'ViT-B-32__openai'"):
        lib.create_collection("default", model="ViT-B-32__openai", exist_ok=True)
    assert lib.collection("default").model == "phash"


def test_inserting_a_folder_says_it_is_a_directory(col, tmp_path):
    with pytest.raises(imgfind.errors.SourceError, match="is a directory"):
        col.insert(tmp_path)


def test_thumbnails_from_the_model_resize_look_like_the_photo(library, tmp_path):
    """Indexing makes thumbnails from the model's resized picture (cheaper): still 256 px,
    the photo's shape and colours, never an enlarged small image; vectors are unchanged."""
    import io

    import numpy as np
    from PIL import Image

    from imgfind.imageio import THUMBNAIL_SIDE, load_image, thumbnail

    folder = tmp_path / "p"
    files = photos(folder, 6)
    Image.new("RGB", (100, 80), (200, 30, 30)).save(folder / "small.png")
    col = library.create_collection("thumbs")
    report = col.add(folder, show_progress=False)
    assert (report.indexed, report.errors) == (7, [])
    by_source = {it.source: it for it in col.items(limit=100)}
    for f in files:
        item = by_source[str(f)]
        got = Image.open(io.BytesIO(col.thumbnail(item.id)))
        full = Image.open(io.BytesIO(thumbnail(load_image(f))))
        assert max(got.size) == THUMBNAIL_SIDE
        assert abs(got.width - full.width) <= 1 and abs(got.height - full.height) <= 1
        same = got.resize(full.size, Image.Resampling.BILINEAR)  # sizes may differ by 1 px
        diff = np.abs(np.asarray(same, np.int16) - np.asarray(full, np.int16))
        assert diff.mean() < 8, (f.name, diff.mean())  # 1.1-5.2 on the first 40 photos
        expected = col.embedder.embed_images([load_image(f)])[0]
        stored = col.vector(item.id)  # kept at the store's own precision
        assert float(stored @ expected) / float(np.linalg.norm(stored)) > 0.99999
    small = Image.open(io.BytesIO(col.thumbnail(by_source[str(folder / "small.png")].id)))
    assert small.size == (100, 80)
