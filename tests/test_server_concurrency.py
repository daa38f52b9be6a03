"""20 parallel HTTP clients mixing inserts, updates, deletes and searches on one server.

Bounded by request count and by a deadline (never a timing assertion): afterwards
every acknowledged insert is present with its last acknowledged metadata, every
acknowledged delete is gone, and no request got a 5xx (or any unexpected answer).
"""

from __future__ import annotations

import io
import json
import random
import threading
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

import imgfind
from imgfind.server import BackgroundServer

from .conftest import real_photos

WORKERS = 20
OPS_PER_WORKER = 20
DEADLINE_S = 15.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    lib = imgfind.open(tmp_path_factory.mktemp("conc") / "home", model_path=tiny_model_dir)
    lib.create_collection("default")
    with BackgroundServer(lib) as srv:
        yield srv
    lib.close()


def small_jpegs(n: int) -> list[bytes]:
    out = []
    for p in real_photos(n):
        img = Image.open(p).convert("RGB")
        img.thumbnail((160, 160))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def test_parallel_clients_keep_every_acknowledged_write(server) -> None:
    images = small_jpegs(8)
    base = server.url + "/api/collections/default"
    deadline = time.monotonic() + DEADLINE_S
    lock = threading.Lock()
    live: dict[str, dict] = {}      # id -> last acknowledged metadata
    deleted: set[str] = set()
    unexpected: list[tuple[str, int, str]] = []

    def check(r: httpx.Response, ok: int, what: str) -> bool:
        if r.status_code != ok:
            with lock:
                unexpected.append((what, r.status_code, r.text[:200]))
        return r.status_code == ok

    def worker(w: int) -> None:
        rng = random.Random(w)
        mine: list[str] = []
        with httpx.Client(base_url=base, timeout=120) as http:
            for n in range(OPS_PER_WORKER):
                if time.monotonic() > deadline:
                    break
                op = rng.choice(["insert", "insert", "update", "delete", "search", "search"])
                if op == "insert" or not mine and op in ("update", "delete"):
                    meta = {"worker": w, "seq": n}
                    r = http.post("/items", files={"file": ("x.jpg", rng.choice(images))},
                                  data={"metadata": json.dumps(meta)},
                                  params={"keep_duplicates": "true"})
                    if check(r, 201, "insert"):
                        item_id = r.json()["id"]
                        mine.append(item_id)
                        with lock:
                            live[item_id] = meta
                elif op == "update":
                    item_id = rng.choice(mine)
                    meta = {"worker": w, "seq": n, "updated": True}
                    if check(http.put(f"/items/{item_id}/metadata", json=meta), 200, "update"):
                        with lock:
                            live[item_id] = meta
                elif op == "delete":
                    item_id = mine.pop(rng.randrange(len(mine)))
                    if check(http.delete(f"/items/{item_id}"), 200, "delete"):
                        with lock:
                            live.pop(item_id)
                            deleted.add(item_id)
                elif rng.random() < 0.5:
                    check(http.post("/search", json={"text": "a dog", "k": 5}), 200, "search")
                else:
                    check(http.post("/search", files={"file": ("q.jpg", rng.choice(images))},
                                    data={"k": "3", "where": json.dumps({"worker": w})}),
                          200, "image search")

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert unexpected == []
    assert live, "no insert was acknowledged"
    with httpx.Client(base_url=base, timeout=60) as http:
        for item_id, meta in live.items():
            r = http.get(f"/items/{item_id}")
            assert r.status_code == 200 and r.json()["metadata"] == meta
        for item_id in deleted:
            assert http.get(f"/items/{item_id}").status_code == 404
        listed = http.get("/items", params={"limit": 1000}).json()
        assert listed["total"] == len(live)
        assert {i["id"] for i in listed["items"]} == set(live)
        assert http.get("/health").json()["ok"] is True
        # The vector index agrees with the rows: live items are found by their own vectors
        # (k covers every copy of the same photo), deleted ones never are.
        for item_id in sorted(live)[:5]:
            vec = http.get(f"/items/{item_id}", params={"vector": True}).json()["vector"]
            hits = http.post("/search", json={"vector": vec, "k": len(live)}).json()["hits"]
            assert item_id in [h["id"] for h in hits]
            assert not {h["id"] for h in hits} & deleted
