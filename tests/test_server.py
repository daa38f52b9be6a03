"""The REST API over real HTTP: a real uvicorn server on 127.0.0.1, real photos, tiny model."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

import imgfind
from imgfind.server import BackgroundServer

from .conftest import real_photos
from .contract.helpers import SCORE_TOL
from .serving import serve


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    """A library with an allowed folder of 12 photos, served on a free port."""
    root = tmp_path_factory.mktemp("server")
    allowed = root / "allowed"
    (allowed / "photos").mkdir(parents=True)
    for p in real_photos(12):
        shutil.copy(p, allowed / "photos" / p.name)
    lib = imgfind.open(root / "home", model_path=tiny_model_dir)
    with BackgroundServer(lib, allow_paths=[allowed]) as srv, \
            httpx.Client(base_url=srv.url + "/api", timeout=120) as http:
        yield http, allowed, srv
    lib.close()


@pytest.fixture
def api(served):
    return served[0]


@pytest.fixture
def col(api) -> str:
    """A fresh collection name, created over HTTP, with 6 photos uploaded."""
    name = f"c{time.monotonic_ns()}"
    assert api.post("/collections", json={"name": name}).status_code == 201
    for i, p in enumerate(real_photos(6)):
        r = api.post(f"/collections/{name}/items",
                     files={"file": (p.name, p.read_bytes(), "image/jpeg")},
                     data={"metadata": json.dumps({"n": i, "group": "even" if i % 2 == 0
                                                  else "odd"}), "id": f"p{i}"})
        assert r.status_code == 201, r.text
    return name


def error_of(r: httpx.Response) -> str:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"]
    return body["error"]["code"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_health_docs_openapi_and_ui(served) -> None:
    api, _, srv = served
    assert api.get("/health").json()["ok"] is True
    # Generous timeout: the schema of every route is built on the first request.
    spec = httpx.get(srv.url + "/openapi.json", timeout=120).json()
    assert "/api/collections/{c}/search" in spec["paths"]
    assert {t["name"] for t in spec["tags"]} >= {"collections", "items", "search", "jobs"}
    # Routes that parse their own body still document it.
    assert "multipart/form-data" in spec["paths"]["/api/collections/{c}/items"]["post"][
        "requestBody"]["content"]
    assert "swagger" in httpx.get(srv.url + "/docs", timeout=60).text.lower()
    page = httpx.get(srv.url + "/", timeout=60)
    if (Path(imgfind.__file__).parent / "server" / "static" / "index.html").is_file():
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    else:
        assert error_of(page) == "not_found"


def test_collections_lifecycle(api) -> None:
    name = f"life{time.monotonic_ns()}"
    r = api.post("/collections", json={"name": name})
    assert r.status_code == 201 and r.json()["count"] == 0 and r.json()["dim"] > 0
    assert error_of(api.post("/collections", json={"name": name})) == "already_exists"
    assert name in [c["name"] for c in api.get("/collections").json()["collections"]]
    info = api.get(f"/collections/{name}").json()
    assert info["name"] == name and "index" in info
    assert api.delete(f"/collections/{name}").json() == {"dropped": name}
    assert error_of(api.get(f"/collections/{name}")) == "not_found"
    assert error_of(api.delete(f"/collections/{name}")) == "not_found"
    assert error_of(api.post("/collections", json={"nom": "x"})) == "unknown_field"
    assert error_of(api.post("/collections", json={})) == "invalid_input"


def test_item_upload_get_image_thumbnail_metadata(api, col) -> None:
    photo = real_photos(7)[6]
    data = photo.read_bytes()
    r = api.post(f"/collections/{col}/items", json={"image_b64": b64(data), "id": "b64",
                                                   "metadata": {"tag": "x"}})
    assert r.status_code == 201 and r.json()["id"] == "b64"
    item = api.get(f"/collections/{col}/items/b64").json()
    assert item["metadata"] == {"tag": "x"} and item["format"] == "JPEG" and item["stored"]
    got = api.get(f"/collections/{col}/items/b64/image")
    assert got.content == data and got.headers["content-type"] == "image/jpeg"
    thumb = api.get(f"/collections/{col}/items/b64/thumbnail")
    assert thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).format == "JPEG"
    vec = api.get(f"/collections/{col}/items/b64", params={"vector": "true"}).json()["vector"]
    assert len(vec) == api.get(f"/collections/{col}").json()["dim"]

    base = f"/collections/{col}/items/b64/metadata"
    assert api.put(base, json={"a": 1}).json() == {"a": 1}
    assert api.patch(base, json={"b": 2}).json() == {"a": 1, "b": 2}
    assert api.get(base).json() == {"a": 1, "b": 2}
    assert error_of(api.put(base, json=[1, 2])) == "invalid_input"
    r = api.patch(f"/collections/{col}/items/b64", json={"metadata": {"c": 3}, "merge": True})
    assert r.json()["metadata"] == {"a": 1, "b": 2, "c": 3}
    # Replace the image in place (multipart): same id, new pixels.
    other = real_photos(8)[7].read_bytes()
    r = api.patch(f"/collections/{col}/items/b64", files={"file": ("o.jpg", other)})
    assert r.status_code == 200 and r.json()["sha256"] != item["sha256"]
    assert api.get(f"/collections/{col}/items/b64/image").content == other

    assert api.delete(f"/collections/{col}/items/b64").json() == {"deleted": "b64"}
    for path in ("", "/image", "/thumbnail", "/metadata"):
        assert error_of(api.get(f"/collections/{col}/items/b64{path}")) == "not_found"
    assert error_of(api.delete(f"/collections/{col}/items/b64")) == "not_found"


def test_listing_paging_filters_and_fields(api, col) -> None:
    page = api.get(f"/collections/{col}/items", params={"limit": 4}).json()
    assert page["total"] == 6 and [i["id"] for i in page["items"]] == ["p0", "p1", "p2", "p3"]
    page = api.get(f"/collections/{col}/items", params={"limit": 4, "offset": 4}).json()
    assert [i["id"] for i in page["items"]] == ["p4", "p5"]
    odd = api.get(f"/collections/{col}/items",
                  params={"where": json.dumps({"group": "odd"})}).json()
    assert odd["total"] == 3 and {i["id"] for i in odd["items"]} == {"p1", "p3", "p5"}
    assert api.get(f"/collections/{col}/items", params={"limit": 0}).json()["items"] == []
    for bad in ("{nope", "[1]", json.dumps({"$bogus": 1})):
        assert error_of(api.get(f"/collections/{col}/items", params={"where": bad})) \
            == "invalid_filter"
    assert error_of(api.get(f"/collections/{col}/items", params={"limit": -1})) \
        == "invalid_input"
    assert error_of(api.get(f"/collections/{col}/items", params={"limit": "x"})) \
        == "invalid_input"
    fields = {f["key"]: f for f in api.get(f"/collections/{col}/fields").json()["fields"]}
    assert fields["format"]["values"] == ["JPEG"]
    assert set(fields["metadata.group"]["values"]) == {"even", "odd"}
    assert fields["metadata.n"]["type"] == "number"


def test_batch_insert_reports_each_item(api, col) -> None:
    good = real_photos(9)[8].read_bytes()
    r = api.post(f"/collections/{col}/items/batch", json={"items": [
        {"image_b64": b64(good), "id": "ok1", "metadata": {"k": 1}},
        {"image_b64": "!!!not base64", "id": "bad64"},
        {"image_b64": b64(b"plain text, not an image"), "id": "notimg"},
        {"url": "file:///etc/passwd", "id": "scheme"},
        {"id": "noimage"},
        "not an object",
    ]})
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["code"] for x in res] == [None, "invalid_input", "invalid_image",
                                       "invalid_input", "invalid_input", "invalid_input"]
    assert res[0]["id"] == "ok1" and res[0]["error"] is None
    assert [x["id"] for x in res[1:5]] == ["bad64", "notimg", "scheme", "noimage"]
    assert api.get(f"/collections/{col}/items/ok1").json()["metadata"] == {"k": 1}
    # Multipart: many files in one request.
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in real_photos(2)]
    res = api.post(f"/collections/{col}/items/batch", files=files).json()["results"]
    assert len(res) == 2 and all(x["error"] is None for x in res)
    # ... the same bytes as the collection's p0 and p1: answered with those, not stored twice.
    assert [(x["id"], x["duplicate"]) for x in res] == [("p0", True), ("p1", True)]
    # Batch updates and deletes, one result per item.
    res = api.post(f"/collections/{col}/items/update", json={"items": [
        {"id": "ok1", "metadata": {"k": 2}}, {"id": "ghost", "metadata": {}}]}).json()
    assert [x["code"] for x in res["results"]] == [None, "not_found"]
    res = api.post(f"/collections/{col}/items/delete", json={"ids": ["ok1", "ghost"]}).json()
    assert [x["error"] is None for x in res["results"]] == [True, False]
    assert api.delete(f"/collections/{col}/items").json() == {"deleted": 6}
    assert api.get(f"/collections/{col}/items").json()["total"] == 0


def test_search_every_query_kind(api, col) -> None:
    s = f"/collections/{col}/search"
    photo = real_photos(1)[0].read_bytes()
    by_file = api.post(s, files={"file": ("q.jpg", photo)}, data={"k": "3"}).json()
    assert by_file["hits"][0]["id"] == "p0" and len(by_file["hits"]) == 3
    # the photo's own float32 vector against its stored float16 copy (contract.helpers)
    assert by_file["hits"][0]["score"] == pytest.approx(1.0, abs=SCORE_TOL)
    assert by_file["took_ms"] >= 0
    by_b64 = api.post(s, json={"image_b64": b64(photo), "k": 3}).json()
    assert [h["id"] for h in by_b64["hits"]] == [h["id"] for h in by_file["hits"]]
    like = api.post(s, json={"like": "p0", "k": 2}).json()["hits"]
    assert "p0" not in [h["id"] for h in like] and len(like) == 2
    vec = api.get(f"/collections/{col}/items/p3", params={"vector": True}).json()["vector"]
    assert api.post(s, json={"vector": vec, "k": 1}).json()["hits"][0]["id"] == "p3"
    text = api.post(s, json={"text": "a dog running", "k": 6}).json()["hits"]
    assert len(text) == 6 and set(text[0]) == {"id", "score", "source", "item"}
    filtered = api.post(s, json={"text": "a dog", "k": 6, "where": {"group": "odd"}}).json()
    assert {h["id"] for h in filtered["hits"]} == {"p1", "p3", "p5"}
    multipart_where = api.post(s, files={"file": ("q.jpg", photo)},
                               data={"k": "6", "where": json.dumps({"group": "odd"})}).json()
    assert {h["id"] for h in multipart_where["hits"]} == {"p1", "p3", "p5"}

    batch = api.post(f"{s}/batch", json={"queries": [{"like": "p0"}, {"text": "a cat"},
                                                     {"image_b64": b64(photo)}],
                                         "k": 2}).json()["results"]
    assert [len(b) for b in batch] == [2, 2, 2] and batch[2][0]["id"] == "p0"


@pytest.mark.parametrize("body, code", [
    ({"text": "x", "k": 0}, "invalid_input"),
    ({"text": "x", "k": "5"}, "invalid_input"),
    ({"text": "x", "k": 10**6}, "invalid_input"),
    ({"text": "x", "like": "p0"}, "invalid_input"),
    ({}, "invalid_input"),
    ({"text": ""}, "invalid_input"),
    ({"text": 5}, "invalid_input"),
    ({"vector": [1.0, 2.0]}, "model_mismatch"),
    ({"vector": ["a", "b"]}, "invalid_input"),
    ({"like": "ghost"}, "not_found"),
    ({"url": "file:///etc/passwd"}, "invalid_input"),
    ({"url": "/etc/passwd"}, "invalid_input"),
    ({"image_b64": "%%%"}, "invalid_input"),
    ({"image_b64": b64(b"GIF89a but not really")}, "invalid_image"),
    ({"text": "x", "where": "not json"}, "invalid_filter"),
    ({"text": "x", "where": {"$or": 3}}, "invalid_filter"),
    ({"text": "x", "where": {"bad key!": 1}}, "invalid_filter"),
])
def test_bad_searches_are_4xx_with_a_code(api, col, body, code) -> None:
    r = api.post(f"/collections/{col}/search", json=body)
    assert 400 <= r.status_code < 500 and error_of(r) == code


def test_bad_requests_never_500(api, col) -> None:
    cases = [
        api.post(f"/collections/{col}/search", content=b"{not json",
                 headers={"content-type": "application/json"}),
        api.post(f"/collections/{col}/search", content=b"[1, 2]",
                 headers={"content-type": "application/json"}),
        api.post(f"/collections/{col}/items", content=b"\xff\xfe garbage"),
        api.post(f"/collections/{col}/items", files={"file": ("x.jpg", b"")}),
        api.post(f"/collections/{col}/items", data={"metadata": "{"},
                 files={"file": ("x.jpg", real_photos(1)[0].read_bytes())}),
        api.post(f"/collections/{col}/items", data={"metadata": "[1]"},
                 files={"file": ("x.jpg", real_photos(1)[0].read_bytes())}),
        api.post(f"/collections/{col}/items", json={"url": "http://x", "path": "/a"}),
        api.post(f"/collections/{col}/items", json={"image_b64": b64(b"x"), "id": 5}),
        api.post(f"/collections/{col}/items/batch", json={"items": "nope"}),
        api.post(f"/collections/{col}/items/delete", json={"ids": "p0"}),
        api.post(f"/collections/{col}/search/batch", json={"queries": [{"text": "a"}],
                                                           "k": -1}),
        api.post("/collections/ghost/search", json={"text": "a"}),
        api.get(f"/collections/{col}/text-search", params={"q": " "}),
        api.get(f"/collections/{col}/text-search", params={"q": "a", "k": "many"}),
        api.get(f"/collections/{col}/duplicates", params={"threshold": 7}),
        api.get(f"/collections/{col}/nope"),
        api.put(f"/collections/{col}/items/p0"),
        api.get("/jobs/ghost"),
    ]
    for r in cases:
        assert 400 <= r.status_code < 500, (r.request.method, r.request.url, r.text)
        error_of(r)


def test_text_search_duplicates_health_rebuild(api, col) -> None:
    dup = real_photos(1)[0].read_bytes()
    api.post(f"/collections/{col}/items", files={"file": ("copy.jpg", dup)},
             data={"id": "copy", "metadata": json.dumps({"caption": "zebra crossing"})})
    hits = api.get(f"/collections/{col}/text-search", params={"q": "zebra"}).json()["hits"]
    assert [h["id"] for h in hits] == ["copy"]
    groups = api.get(f"/collections/{col}/duplicates", params={"threshold": 0.99}).json()
    assert {"ids": sorted(["p0", "copy"]), "exact": True} in [
        {"ids": sorted(g["ids"]), "exact": g["exact"]} for g in groups["groups"]]
    health = api.get(f"/collections/{col}/health").json()
    assert health["ok"] is True and health["items"] == 7
    assert api.post(f"/collections/{col}/rebuild").status_code == 200
    assert api.get(f"/collections/{col}/health").json()["ok"] is True


def test_index_job_runs_to_done(served, col) -> None:
    api, allowed, _ = served
    r = api.post(f"/collections/{col}/jobs/index", json={"path": str(allowed / "photos")})
    assert r.status_code == 202 and r.json()["state"] == "running"
    job = wait_job(api, r.json()["id"])
    assert job["state"] == "done" and job["error"] is None, job
    # 12 files, 6 of which were uploaded before with the same bytes: exact duplicates skipped.
    assert job["indexed"] + job["duplicates"] == 12 and job["done"] == job["total"]
    assert job["duplicates"] == 6 and job["skipped"] == 0
    assert api.get(f"/collections/{col}/items").json()["total"] == 6 + job["indexed"]
    # Relative to an allowed root works too; re-running touches nothing.
    again = wait_job(api, api.post(f"/collections/{col}/jobs/index",
                                   json={"path": "photos"}).json()["id"])
    assert again["state"] == "done" and again["indexed"] == 0


def test_index_job_can_be_cancelled(served, col, tmp_path) -> None:
    api, allowed, _ = served
    big = allowed / f"big{time.monotonic_ns()}"
    big.mkdir()
    for p in real_photos(60, start=20):
        shutil.copy(p, big / p.name)
    job = api.post(f"/collections/{col}/jobs/index", json={"path": str(big)}).json()
    cancelled = api.delete(f"/jobs/{job['id']}")
    assert cancelled.status_code == 200
    job = wait_job(api, job["id"])
    assert job["state"] == "cancelled" and job["indexed"] < 60
    assert api.get(f"/collections/{col}/items").json()["total"] == 6 + job["indexed"]


def wait_job(api: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/jobs/{job_id}").json()
        if job["state"] != "running" or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def test_imgfind_serve_subprocess(tmp_path, tiny_model_dir) -> None:
    """The lead's acceptance path: `imgfind serve` in a real process, searched by the client."""
    home = tmp_path / "home"
    with imgfind.open(home, model_path=tiny_model_dir) as lib:
        lib.create_collection("default").insert_batch(real_photos(8))
        expected = lib.collection("default").search("a dog", k=5)
    src = Path(imgfind.__file__).parents[1]
    with serve([sys.executable, "-m", "imgfind", "--home", str(home), "serve",
                "--model-path", str(tiny_model_dir)],
               env={**os.environ, "PYTHONPATH": str(src)}) as url:
        assert "text/html" in httpx.get(url + "/").headers["content-type"]
        assert httpx.get(url + "/docs").status_code == 200
        assert "/api/collections" in httpx.get(url + "/openapi.json").json()["paths"]
        with imgfind.Client(url) as client:
            assert client.collection("default").search("a dog", k=5) == expected
