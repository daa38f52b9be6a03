"""Uploads keep their file name and are not stored twice: library, REST (multipart and JSON)
and the HTTP client, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import shutil
import time
from pathlib import Path

import httpx
import pytest

import imgfind
from imgfind.server import BackgroundServer

from .conftest import real_photos


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    root = tmp_path_factory.mktemp("uploads")
    lib = imgfind.open(root / "home", model_path=tiny_model_dir)
    with BackgroundServer(lib) as srv, imgfind.Client(srv.url) as client, \
            httpx.Client(base_url=srv.url + "/api", timeout=120) as http:
        yield {"lib": lib, "client": client, "http": http, "root": root}
    lib.close()


def fresh(env, side: str):
    name = f"u{time.monotonic_ns()}"
    env["lib"].create_collection(name)
    return env["lib" if side == "library" else "client"].collection(name)


@pytest.mark.parametrize("side", ["library", "client"])
def test_insert_keeps_names_and_skips_identical_bytes(env, side: str, tmp_path: Path) -> None:
    col = fresh(env, side)
    photo = real_photos(1)[0]
    data = photo.read_bytes()
    a = col.insert(data, name="beach.jpg", metadata={"n": 1})
    assert col.get(a).file["name"] == "beach.jpg"
    # The same bytes again: the stored item, nothing new (whatever the name).
    assert col.insert(data, name="copy.jpg") == a
    assert col.count() == 1 and col.get(a).file["name"] == "beach.jpg"
    # A local file keeps its own name (the client uploads it; the library reads it in place).
    local = tmp_path / "Sunset at sea.jpg"
    shutil.copy(real_photos(2)[1], local)
    b = col.insert(local)
    assert col.get(b).file["name"] == "Sunset at sea.jpg"
    assert col.insert(local) == b and col.count() == 2
    # keep_duplicates stores a second copy; so does an explicit new id.
    c = col.insert(data, keep_duplicates=True)
    assert c != a and col.count() == 3
    assert col.insert(data, id="mine") == "mine" and col.count() == 4
    # Batches: duplicates of stored items and of earlier items in the same batch.
    other = real_photos(3)[2].read_bytes()
    results = col.insert_batch([data, other, {"image": other, "name": "o.jpg"}])
    assert [r.duplicate for r in results] == [True, False, True]
    assert results[0].id in (a, c, "mine") and results[2].id == results[1].id
    assert col.count() == 5
    kept = col.insert_batch([other], keep_duplicates=True)
    assert not kept[0].duplicate and kept[0].id != results[1].id and col.count() == 6


def test_rest_multipart_and_json_uploads(env) -> None:
    http = env["http"]
    name = f"r{time.monotonic_ns()}"
    assert http.post("/collections", json={"name": name}).status_code == 201
    items = f"/collections/{name}/items"
    photo = real_photos(1)[0]
    r = http.post(items, files={"file": ("holiday.jpg", photo.read_bytes(), "image/jpeg")})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["duplicate"] is False and first["item"]["file"]["name"] == "holiday.jpg"
    # Same bytes: 200, the stored item, duplicate=true.
    r = http.post(items, files={"file": ("again.jpg", photo.read_bytes(), "image/jpeg")})
    assert r.status_code == 200 and r.json()["duplicate"] is True
    assert r.json()["id"] == first["id"]
    r = http.post(items, json={"image_b64": base64.b64encode(photo.read_bytes()).decode(),
                               "name": "x.jpg"})
    assert r.status_code == 200 and r.json()["id"] == first["id"]
    assert http.get(items).json()["total"] == 1
    # keep_duplicates=true stores another copy.
    r = http.post(items, params={"keep_duplicates": "true"},
                  files={"file": ("dup.jpg", photo.read_bytes(), "image/jpeg")})
    assert r.status_code == 201 and r.json()["duplicate"] is False
    assert r.json()["id"] != first["id"] and r.json()["item"]["file"]["name"] == "dup.jpg"
    # JSON with a name.
    other = real_photos(2)[1].read_bytes()
    r = http.post(items, json={"image_b64": base64.b64encode(other).decode(),
                               "name": "folder/cat.jpg"})
    assert r.status_code == 201 and r.json()["item"]["file"]["name"] == "cat.jpg"
    # Multipart batch: names kept, duplicates flagged.
    third = real_photos(3)[2].read_bytes()
    r = http.post(items + "/batch", files=[("files", ("a.jpg", third, "image/jpeg")),
                                           ("files", ("b.jpg", third, "image/jpeg")),
                                           ("files", ("c.jpg", photo.read_bytes()))])
    res = r.json()["results"]
    assert [x["duplicate"] for x in res] == [False, True, True], res
    assert http.get(f"{items}/{res[0]['id']}").json()["file"]["name"] == "a.jpg"
    assert http.get(items).json()["total"] == 4
    assert http.post(items, json={"image_b64": base64.b64encode(other).decode(),
                                  "name": 5}).status_code == 400
