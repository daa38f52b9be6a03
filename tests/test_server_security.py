"""Server security over real HTTP: API key, protected reads, path escapes, URL schemes, limits."""

from __future__ import annotations

import base64
import io
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

import imgfind
from imgfind.errors import InvalidInput, Unauthorized
from imgfind.server import BackgroundServer, create_app

from .conftest import real_photos

KEY = "correct horse battery staple"
MAX_UPLOAD = 300_000


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    lib = imgfind.open(tmp_path_factory.mktemp("sec") / "home", model_path=tiny_model_dir)
    col = lib.create_collection("default")
    col.insert(real_photos(1)[0], id="first")
    yield lib
    lib.close()


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An allowed root with a photo, a secret photo outside it, and symlinks pointing out."""
    base = tmp_path_factory.mktemp("tree")
    root, outside = base / "root", base / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    p1, p2 = real_photos(3)[1:3]
    shutil.copy(p1, root / "sub" / "ok.jpg")
    shutil.copy(p2, outside / "secret.jpg")
    os.symlink(outside / "secret.jpg", root / "link.jpg")
    os.symlink(outside, root / "linkdir")
    # A folder that looks harmless but holds a symlink to a file outside the root.
    (root / "sneaky").mkdir()
    shutil.copy(p1, root / "sneaky" / "fine.jpg")
    os.symlink(outside / "secret.jpg", root / "sneaky" / "escape.jpg")
    return {"root": root, "outside": outside, "base": base}


@pytest.fixture(scope="module")
def keyed(lib, tree):
    with BackgroundServer(lib, api_key=KEY, allow_paths=[tree["root"]],
                          max_upload_bytes=MAX_UPLOAD, max_request_bytes=2 * MAX_UPLOAD,
                          max_batch=8) as srv:
        yield srv


@pytest.fixture(scope="module")
def locked(lib):
    with BackgroundServer(lib, api_key=KEY, protect_reads=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def open_server(lib):
    with BackgroundServer(lib) as srv:
        yield srv


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def code(r: httpx.Response) -> str:
    return r.json()["error"]["code"]


def photo_bytes(i: int = 0) -> bytes:
    return real_photos(i + 1)[i].read_bytes()


def small_photo() -> bytes:
    img = Image.open(io.BytesIO(photo_bytes(3))).convert("RGB")
    img.thumbnail((128, 128))
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    return buf.getvalue()


# -- API key ----------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, auth("wrong"), auth(KEY + "x"), {"Authorization": KEY},
                                     {"Authorization": f"Basic {KEY}"}])
def test_writes_need_the_key(keyed, headers) -> None:
    url = keyed.url + "/api/collections/default"
    for r in (httpx.post(url + "/items", files={"file": ("a.jpg", small_photo())},
                         headers=headers),
              httpx.delete(url + "/items/first", headers=headers),
              httpx.delete(url + "/items", headers=headers),
              httpx.put(url + "/items/first/metadata", json={}, headers=headers),
              httpx.post(keyed.url + "/api/collections", json={"name": "x"}, headers=headers),
              httpx.post(url + "/rebuild", headers=headers)):
        assert r.status_code == 401 and code(r) == "unauthorized", r.text
        assert r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(url + "/items/first").status_code == 200  # nothing was deleted


def test_writes_succeed_with_the_key_and_reads_stay_open(keyed) -> None:
    url = keyed.url + "/api/collections/default"
    r = httpx.post(url + "/items", files={"file": ("a.jpg", small_photo())}, headers=auth())
    assert r.status_code == 201
    assert httpx.delete(url + f"/items/{r.json()['id']}", headers=auth()).status_code == 200
    assert httpx.get(url + "/items").status_code == 200
    assert httpx.post(url + "/search", json={"text": "a dog"}).status_code == 200  # a read
    client = imgfind.Client(keyed.url)
    assert client.collection("default").count() >= 1
    with pytest.raises(Unauthorized):
        client.collection("default").delete("first")
    keyed_client = imgfind.Client(keyed.url, api_key=KEY)
    item_id = keyed_client.collection("default").insert(small_photo())
    keyed_client.collection("default").delete(item_id)


def test_protected_reads(locked) -> None:
    url = locked.url + "/api/collections/default"
    for path in ("", "/items", "/items/first", "/items/first/image", "/fields", "/health"):
        r = httpx.get(url + path)
        assert r.status_code == 401 and code(r) == "unauthorized", path
        assert httpx.get(url + path, headers=auth()).status_code == 200, path
    assert httpx.post(url + "/search", json={"text": "a"}).status_code == 401
    assert httpx.get(locked.url + "/api/collections", headers=auth("nope")).status_code == 401
    with pytest.raises(Unauthorized):
        imgfind.Client(locked.url).collection("default")
    assert imgfind.Client(locked.url, api_key=KEY).collection("default").get("first").id \
        == "first"


def test_urls_on_private_networks_are_refused(keyed) -> None:
    url = keyed.url + "/api/collections/default"
    for target in ("http://127.0.0.1:9/a.jpg", "http://169.254.169.254/latest/meta-data"):
        r = httpx.post(url + "/items", json={"url": target}, headers=auth())
        assert r.status_code == 422 and "private or local" in r.json()["error"]["message"]
        r = httpx.post(url + "/search", json={"url": target})
        assert 400 <= r.status_code < 500 and "private or local" in r.text


def test_key_cookie_opens_reads_but_never_writes(locked) -> None:
    """The web UI's <img> tags send the key as a cookie: good for reads only."""
    url = locked.url + "/api/collections/default"
    jar = {"imgfind_key": KEY}
    assert httpx.get(url + "/items/first/thumbnail", cookies=jar).status_code == 200
    assert httpx.get(url + "/items/first/image", cookies={"imgfind_key": "nope"}
                     ).status_code == 401
    r = httpx.patch(url + "/items/first/metadata", json={"x": 1}, cookies=jar)
    assert r.status_code == 401 and code(r) == "unauthorized"
    r = httpx.delete(url + "/items/first", cookies=jar)
    assert r.status_code == 401


def test_protect_reads_without_a_key_is_refused(lib) -> None:
    with pytest.raises(InvalidInput):
        create_app(lib, protect_reads=True)


# -- server-side paths ------------------------------------------------------------------------

def test_paths_refused_without_allow_path(open_server) -> None:
    url = open_server.url + "/api/collections/default"
    path = str(real_photos(1)[0])
    r = httpx.post(url + "/items", json={"path": path})
    assert r.status_code == 403 and code(r) == "path_not_allowed"
    r = httpx.post(url + "/jobs/index", json={"path": str(Path(path).parent)})
    assert r.status_code == 403 and code(r) == "path_not_allowed"
    res = httpx.post(url + "/items/batch", json={"items": [{"path": path}]}).json()
    assert res["results"][0]["code"] == "path_not_allowed"


def test_paths_inside_the_root_work(keyed, tree) -> None:
    url = keyed.url + "/api/collections/default"
    for path in (str(tree["root"] / "sub" / "ok.jpg"), "sub/ok.jpg", "sub/../sub/ok.jpg"):
        r = httpx.post(url + "/items", json={"path": path}, headers=auth(),
                       params={"keep_duplicates": "true"})
        assert r.status_code == 201, r.text
        assert r.json()["item"]["source"] == str((tree["root"] / "sub" / "ok.jpg").resolve())


@pytest.mark.parametrize("name", [
    "outside/secret.jpg",          # absolute path outside the root
    "root/../outside/secret.jpg",  # .. out of the root
    "../outside/secret.jpg",       # relative, climbing out
    "root/link.jpg",               # symlinked file pointing out
    "root/linkdir/secret.jpg",     # through a symlinked folder
    "/etc/passwd",
    "rootx",                       # a sibling that shares the root's name prefix
])
def test_path_escapes_are_refused(keyed, tree, name) -> None:
    url = keyed.url + "/api/collections/default"
    path = name if name.startswith(("/", "..")) else str(tree["base"] / name)
    if name == "rootx":
        (tree["base"] / "rootx").mkdir(exist_ok=True)
    r = httpx.post(url + "/items", json={"path": path}, headers=auth())
    assert r.status_code == 403 and code(r) == "path_not_allowed", r.text
    r = httpx.post(url + "/jobs/index", json={"path": path}, headers=auth())
    assert r.status_code == 403 and code(r) == "path_not_allowed", r.text
    r = httpx.patch(url + "/items/first", json={"path": path}, headers=auth())
    assert r.status_code == 403


def test_index_job_refuses_a_folder_with_a_symlink_out(keyed, tree) -> None:
    url = keyed.url + "/api/collections/default"
    before = httpx.get(url + "/items", params={"limit": 0}).json()["total"]
    job = httpx.post(url + "/jobs/index", json={"path": str(tree["root"] / "sneaky")},
                     headers=auth()).json()
    deadline = time.monotonic() + 60
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        job = httpx.get(keyed.url + f"/api/jobs/{job['id']}").json()
    assert job["state"] == "failed" and job["error"]["code"] == "path_not_allowed"
    assert httpx.get(url + "/items", params={"limit": 0}).json()["total"] == before


# -- URLs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg",
                                 "/etc/passwd", "javascript:alert(1)", "gopher://x"])
def test_non_http_urls_are_refused(keyed, url) -> None:
    base = keyed.url + "/api/collections/default"
    r = httpx.post(base + "/items", json={"url": url}, headers=auth())
    assert r.status_code == 400 and code(r) == "invalid_input"
    r = httpx.post(base + "/search", json={"url": url})
    assert r.status_code == 400 and code(r) == "invalid_input"


# -- sizes and content ------------------------------------------------------------------------

def test_oversize_uploads_get_413(keyed) -> None:
    url = keyed.url + "/api/collections/default"
    big = os.urandom(MAX_UPLOAD + 1)
    r = httpx.post(url + "/items", files={"file": ("big.jpg", big)}, headers=auth())
    assert r.status_code == 413 and code(r) == "image_too_large"
    r = httpx.post(url + "/items", json={"image_b64": base64.b64encode(big).decode()},
                   headers=auth())
    assert r.status_code == 413 and code(r) == "image_too_large"
    r = httpx.post(url + "/search", files={"file": ("big.jpg", big)})
    assert r.status_code == 413 and code(r) == "image_too_large"

    def chunks():  # no Content-Length: the limit must cut the stream off
        for _ in range(100):
            yield b"x" * 65536
    r = httpx.post(url + "/items", content=chunks(), headers={
        **auth(), "content-type": "application/json"})
    assert r.status_code == 413 and code(r) == "image_too_large"
    r = httpx.post(url + "/items/batch", headers=auth(), files=[
        ("files", (f"{i}.jpg", os.urandom(MAX_UPLOAD // 2))) for i in range(5)])
    assert r.status_code == 413 and code(r) == "image_too_large"
    # One file under the per-request limit but over the per-image one fails alone.
    r = httpx.post(url + "/items/batch", headers=auth(),
                   files=[("files", ("a.jpg", os.urandom(MAX_UPLOAD + 10))),
                          ("files", ("small.jpg", small_photo()))])
    assert r.status_code == 200, r.text
    big_one, ok = r.json()["results"]
    assert big_one["code"] == "image_too_large" and ok["error"] is None
    assert httpx.get(url + "/items/first").status_code == 200  # the server is still fine


def test_too_many_items_per_batch(keyed) -> None:
    url = keyed.url + "/api/collections/default"
    r = httpx.post(url + "/items/delete", json={"ids": [str(i) for i in range(9)]},
                   headers=auth())
    assert r.status_code == 400 and code(r) == "invalid_input"
    r = httpx.post(url + "/search/batch", json={"queries": [{"text": "a"}] * 9})
    assert r.status_code == 400


def test_client_splits_batches_to_the_server_limit(keyed) -> None:
    col = imgfind.Client(keyed.url, api_key=KEY).collection("default")
    # 11 copies, kept: the server takes 8 per request
    results = col.insert_batch([small_photo()] * 11, keep_duplicates=True)
    assert len(results) == 11 and all(r.ok for r in results)
    assert len(col.search_batch(["a dog"] * 11, k=1)) == 11
    gone = col.delete_batch([r.id for r in results] + ["ghost"])
    assert [r.ok for r in gone] == [True] * 11 + [False]


@pytest.mark.parametrize("data, expected", [
    (b"", "invalid_image"),
    (b"hello, I am text", "invalid_image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "invalid_image"),
    ("truncated", "invalid_image"),
    ("bomb", "image_too_large"),
])
def test_non_images_are_4xx(keyed, data, expected) -> None:
    if data == "truncated":
        data = small_photo()[:400]
    elif data == "bomb":  # a small PNG declaring a canvas over the pixel limit
        buf = io.BytesIO()
        Image.new("1", (11000, 11000)).save(buf, "PNG")
        data = buf.getvalue()
        assert len(data) < MAX_UPLOAD
    url = keyed.url + "/api/collections/default"
    r = httpx.post(url + "/items", files={"file": ("x.jpg", data)}, headers=auth())
    assert 400 <= r.status_code < 500 and code(r) == expected, r.text
    r = httpx.post(url + "/search", files={"file": ("x.jpg", data)})
    assert 400 <= r.status_code < 500 and code(r) == expected, r.text
