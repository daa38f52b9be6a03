"""Issue 8's acceptance commands with the Milvus store, run as a user runs them: the
installed ``imgfind`` console script against a Milvus Lite file and a Milvus Lite gRPC
server; then two ``imgfind serve`` processes fronting one Milvus, written through one
and read through the other."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import real_photos
from tests.milvus_util import milvus_server, needs_milvus

pytestmark = needs_milvus


def _imgfind(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("imgfind")
    assert exe, "the imgfind console script is not installed"
    out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=600,
                         env=os.environ.copy())
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for p in real_photos(8):
        shutil.copy(p, folder / p.name)
    return folder


@pytest.fixture(scope="module")
def server_port(tmp_path_factory: pytest.TempPathFactory):
    with milvus_server(tmp_path_factory.mktemp("milvus-srv")) as port:
        yield port


def _acceptance(home: Path, store: str, photos: Path, model: Path) -> None:
    g = ["--home", str(home), "--store", store]
    first = json.loads(_imgfind(*g, "index", str(photos), "--model-path", str(model),
                                "--json").stdout)
    assert first["indexed"] == 8 and first["errors"] == []
    again = json.loads(_imgfind(*g, "index", str(photos), "--model-path", str(model),
                                "--json").stdout)
    assert again["indexed"] == 0
    x = sorted(photos.iterdir())[3]
    hits = json.loads(_imgfind(*g, "search", "--image", str(x), "-k", "5", "--json").stdout)
    assert len(hits) == 5 and Path(hits[0]["source"]).name == x.name
    hits = json.loads(_imgfind(*g, "search", "a dog", "--where", '{"format": "JPEG"}',
                               "--json").stdout)
    assert hits and all(h["item"]["format"] == "JPEG" for h in hits)
    assert json.loads(_imgfind(*g, "search", "a dog", "--where", '{"format": "PNG"}',
                               "--json").stdout) == []
    word = x.stem.split("_")[0]
    hits = json.loads(_imgfind(*g, "text", word, "--json").stdout)
    assert [Path(h["source"]).name for h in hits] == [x.name]
    report = json.loads(_imgfind(*g, "check", "--json").stdout)
    assert report["ok"] is True
    # A filter Milvus cannot express is a clear error, not a wrong answer.
    bad = _imgfind(*g, "search", "a dog", "--where", '{"width": "wide"}', check=False)
    assert bad.returncode != 0 and "width" in bad.stderr and "Traceback" not in bad.stderr


def test_acceptance_commands_on_a_milvus_lite_file(tmp_path, photos, tiny_model_dir):
    _acceptance(tmp_path / "H", f"milvus://{tmp_path}/m.db", photos, tiny_model_dir)
    # The collection lives in the .db file, its thumbnails in the home's blob folder.
    assert (tmp_path / "H" / "blobs").is_dir()


def test_acceptance_commands_on_a_milvus_lite_server(tmp_path, photos, tiny_model_dir,
                                                     server_port):
    _acceptance(tmp_path / "H", f"milvus://127.0.0.1:{server_port}", photos, tiny_model_dir)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(home: Path, store: str, model: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [shutil.which("imgfind") or "imgfind", "--home", str(home), "serve", "--port",
         str(port), "--model-path", str(model), "--store", store],
        env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/api/health").status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(proc.stdout.read().decode()[-3000:] if proc.stdout else "")
        time.sleep(0.3)


def test_two_servers_front_one_milvus(tmp_path, tiny_model_dir, server_port):
    """Stateless servers: an item inserted through one is found through the other at once."""
    store = f"milvus://127.0.0.1:{server_port}?prefix=twoservers_"
    blobs = str(tmp_path / "shared-blobs")     # both servers read the same blob store
    os.environ["IMGFIND_BLOBS"] = blobs
    try:
        a, url_a = _serve(tmp_path / "HA", store, tiny_model_dir)
        b, url_b = _serve(tmp_path / "HB", store, tiny_model_dir)
    finally:
        del os.environ["IMGFIND_BLOBS"]
    try:
        r = httpx.post(url_a + "/api/collections", json={"name": "shared"}, timeout=60)
        assert r.status_code == 201, r.text
        photo = real_photos(1, start=20)[0]
        with photo.open("rb") as f:
            r = httpx.post(url_a + "/api/collections/shared/items", timeout=60,
                           files={"file": (photo.name, f, "image/jpeg")},
                           data={"metadata": json.dumps({"who": "server-a"}), "id": "p1"})
        assert r.status_code == 201, r.text
        # Through the other server, right away: listed, fetched, searched, thumbnail.
        names = [c["name"] for c in httpx.get(url_b + "/api/collections").json()["collections"]]
        assert "shared" in names
        item = httpx.get(url_b + "/api/collections/shared/items/p1").json()
        assert item["metadata"] == {"who": "server-a"}
        hits = httpx.post(url_b + "/api/collections/shared/search", timeout=60,
                          json={"like": "p1", "k": 1}).json()["hits"]
        assert hits == [] or hits[0]["id"] != "p1"     # "like" excludes the item itself
        with photo.open("rb") as f:
            hits = httpx.post(url_b + "/api/collections/shared/search", timeout=60,
                              files={"file": (photo.name, f, "image/jpeg")},
                              data={"k": "1"}).json()["hits"]
        assert hits[0]["id"] == "p1"
        thumb = httpx.get(url_b + "/api/collections/shared/items/p1/thumbnail")
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
        hits = httpx.get(url_b + "/api/collections/shared/text-search",
                         params={"q": "server-a"}).json()["hits"]
        assert [h["id"] for h in hits] == ["p1"]
        # A delete through B is seen by A.
        r = httpx.post(url_b + "/api/collections/shared/items/delete", json={"ids": ["p1"]})
        assert r.status_code == 200
        assert httpx.get(url_a + "/api/collections/shared/items/p1").status_code == 404
    finally:
        for p in (a, b):
            p.terminate()
            p.wait(30)
