"""OCR over REST and the client: `imgfind serve` reads new images' text in the background;
items carry `ocr`; GET /collections/{c}/ocr reports progress; text search and filters see it."""

from __future__ import annotations

import os
import time

import httpx
import pytest

import imgfind
from imgfind.server import BackgroundServer

from .conftest import real_photos
from .serving import serve
from .test_ocr import _signed

pytest.importorskip("rapidocr_onnxruntime")


def _wait_read(client_col, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = client_col.ocr_status()
        if st["pending"] == 0:
            return st
        assert time.monotonic() < deadline, st
        time.sleep(0.5)


def test_serve_reads_text_in_the_background(tmp_path):
    home = tmp_path / "home"
    with serve(["imgfind", "--home", str(home), "serve"], env={**os.environ}) as url:
        signed = _signed(real_photos(3, start=350), seed0=40, n_words=1)
        with imgfind.Client(url) as client:
            col = client.create_collection("signs", model="phash", ocr=True)
            assert col.ocr is True
            assert [c.ocr for c in client.collections() if c.name == "signs"] == [True]
            ids = [col.insert(data, id=f"s{n}") for n, (data, _w) in enumerate(signed)]
            st = _wait_read(col)
            assert st["done"] == 3 and st["enabled"] is True
            raw = httpx.get(f"{url}/api/collections/signs/ocr").json()
            assert raw["worker"]["running"] is True and raw["worker"]["read"] >= 3
            found = []
            for i, (_d, words) in zip(ids, signed):
                item = col.get(i)
                assert item.ocr is not None and item.ocr["engine"].startswith("rapidocr")
                found += [(i, w) for w in words if w.lower() in item.ocr["text"].lower()]
            assert len(found) >= 2, found
            item_id, word = found[0]
            assert item_id in [h.id for h in col.text_search(word.lower())]
            listed = col.items(where={"ocr": {"$contains": word.lower()}})
            assert item_id in [i.id for i in listed]
            # REST returns the field in the item view
            body = httpx.get(f"{url}/api/collections/signs/items/{item_id}").json()
            assert word.lower() in body["ocr"]["text"].lower() and body["ocr"]["lines"]
            # bad input is refused naming the field, not a silent default
            r = httpx.post(f"{url}/api/collections", json={"name": "x", "model": "phash",
                                                           "ocr": "maybe"})
            assert r.status_code == 400 and "ocr" in r.json()["error"]["message"], r.text


def test_server_without_worker_and_collection_without_ocr(tmp_path):
    with imgfind.open(tmp_path / "home") as lib:
        col = lib.create_collection("signs", model="phash", ocr=True)
        col.insert(_signed(real_photos(1, start=360), seed0=50)[0][0], id="a")
        lib.create_collection("plain", model="phash").insert(real_photos(1)[0], id="p")
        with BackgroundServer(lib, ocr_threads=0) as srv:
            time.sleep(1.0)
            r = httpx.get(f"{srv.url}/api/collections/signs/ocr").json()
            assert r == {"enabled": True, "done": 0, "pending": 1, "with_text": 0,
                         "worker": None}
            plain = httpx.get(f"{srv.url}/api/collections/plain/ocr").json()
            assert plain["enabled"] is False and plain["pending"] == 0
            item = httpx.get(f"{srv.url}/api/collections/plain/items/p").json()
            assert item["ocr"] is None
            assert httpx.get(f"{srv.url}/api/collections/ghost/ocr").status_code == 404

