"""Server hardening (issue 12 part 6), over real HTTP on 127.0.0.1: model names and
downloads, case-insensitive URL schemes, the shared memory budget, pinned DNS for URL
fetches, the non-loopback warning and offline API docs."""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

import imgfind
from imgfind import fetch
from imgfind.errors import SourceError
from imgfind.server import BackgroundServer

from .conftest import real_photos
from .serving import free_port


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    lib = imgfind.open(tmp_path_factory.mktemp("hard") / "home", model_path=tiny_model_dir)
    lib.create_collection("default")
    yield lib
    lib.close()


@pytest.fixture(scope="module")
def srv(lib):
    with BackgroundServer(lib) as s:
        yield s


def code(r: httpx.Response) -> str:
    return r.json()["error"]["code"]


# -- model names and downloads ----------------------------------------------------------------

@pytest.mark.parametrize("model", ["../../x", "caf\u00e9", "", "  ", "a/b/c", "x" * 300,
                                   "/etc/passwd", "..", "owner/..", 5])
def test_bad_model_names_are_400(srv, model) -> None:
    r = httpx.post(srv.url + "/api/collections", json={"name": "m1", "model": model})
    assert r.status_code in (400, 422), (model, r.status_code, r.text)
    assert code(r) == "invalid_input"
    assert "m1" not in [c["name"] for c in
                        httpx.get(srv.url + "/api/collections").json()["collections"]]


def test_models_are_downloaded_only_when_allowed(lib, srv, monkeypatch) -> None:
    # Not on this machine: refused before any network access.
    r = httpx.post(srv.url + "/api/collections",
                   json={"name": "m2", "model": "ViT-B-32__openai"})
    assert r.status_code == 403 and code(r) == "not_allowed"
    assert "--allow-model-download" in r.json()["error"]["message"]
    # A model that needs no weights is always fine.
    r = httpx.post(srv.url + "/api/collections", json={"name": "m3", "model": "phash"})
    assert r.status_code == 201, r.text
    # With --allow-model-download the server tries the hub (offline here: 503, not 403).
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with BackgroundServer(lib, allow_model_download=True) as open_srv:
        r = httpx.post(open_srv.url + "/api/collections",
                       json={"name": "m4", "model": "someone/clip-onnx"}, timeout=60)
    assert r.status_code == 503 and code(r) == "model_unavailable", r.text


# -- URL schemes ------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["HTTP://127.0.0.1:9/x.jpg", "Https://127.0.0.1:9/x.jpg"])
def test_upper_case_schemes_are_urls_everywhere(lib, srv, url: str) -> None:
    col = lib.collection("default")
    lib.allow_private_urls = False
    # The library sees a URL (refused: private address), not a file path.
    with pytest.raises(SourceError, match="private"):
        col.insert(url)
    with pytest.raises(SourceError, match="private"):
        col.search(url)
    r = httpx.post(srv.url + "/api/collections/default/items", json={"url": url})
    assert r.status_code == 422 and "private" in r.json()["error"]["message"], r.text
    r = httpx.post(srv.url + "/api/collections/default/search", json={"url": url})
    assert r.status_code == 422 and "private" in r.json()["error"]["message"], r.text


# -- pinned DNS -------------------------------------------------------------------------------

class _Photo(http.server.BaseHTTPRequestHandler):
    hosts: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        _Photo.hosts.append(self.headers.get("Host", ""))
        data = real_photos(1)[0].read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_url_fetch_connects_to_the_checked_address(monkeypatch) -> None:
    """The address that passed the public-address check is the one connected to: the
    host name is never looked up a second time (a rebinding DNS cannot swap it)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Photo)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    lookups: list[str] = []
    real = socket.getaddrinfo

    def fake_getaddrinfo(host, *args, **kwargs):
        if host == "photos.example":
            lookups.append(host)
            if len(lookups) > 1:  # a second lookup would now answer somewhere else
                raise socket.gaierror("rebound")
            # Pretend the check saw a public address; the fetch must use this one.
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr("ipaddress.IPv4Address.is_global", property(lambda self: True))
    try:
        data = fetch.fetch_url(f"http://photos.example:{port}/x.jpg", allow_private=False)
    finally:
        server.shutdown()
    assert data == real_photos(1)[0].read_bytes()
    assert lookups == ["photos.example"]
    assert _Photo.hosts[-1] == f"photos.example:{port}"


# -- batches and the memory budget ------------------------------------------------------------

def test_multipart_batch_with_one_oversize_file_fails_alone(lib) -> None:
    small = real_photos(1)[0].read_bytes()
    with BackgroundServer(lib, max_upload_bytes=len(small) + 10) as s:
        r = httpx.post(s.url + "/api/collections/default/items/batch", files=[
            ("files", ("big.jpg", os.urandom(len(small) + 1000))),
            ("files", ("ok.jpg", small))])
    assert r.status_code == 200, r.text
    big, ok = r.json()["results"]
    assert big["code"] == "image_too_large" and big["id"] is None
    assert ok["error"] is None and ok["id"]


def _start_body(url: str, length: int) -> socket.socket:
    """Open a POST that declares ``length`` body bytes and sends only a few."""
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(f"POST /api/collections/default/items/batch HTTP/1.1\r\nHost: {host}\r\n"
              f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
              '{"items": ['.encode())
    return s


def test_request_bodies_share_one_memory_budget(lib) -> None:
    mb = 1 << 20
    with BackgroundServer(lib, max_request_bytes=4 * mb, max_inflight_bytes=3 * mb) as s:
        batch = s.url + "/api/collections/default/items/batch"
        # Over the whole budget (though under the per-request limit): it can never fit.
        r = httpx.post(batch, content=b" " * (3 * mb + 10),
                       headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text
        # One 2 MB body in flight: a second one does not fit now -> 503 + Retry-After.
        held = _start_body(s.url, 2 * mb)
        time.sleep(0.3)
        r = httpx.post(batch, content=b" " * (2 * mb), headers={
            "content-type": "application/json"})
        assert r.status_code == 503 and code(r) == "busy", r.text
        assert int(r.headers["retry-after"]) >= 1
        # Small requests still fit beside it.
        assert httpx.post(batch, json={"items": []}).status_code == 200
        held.close()  # the client gives up: its reservation is given back
        deadline = time.monotonic() + 10
        while True:
            r = httpx.post(batch, content=json.dumps({"items": []}).encode() + b" " * (2 * mb),
                           headers={"content-type": "application/json"})
            if r.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 200, r.text
        # The HTTP client waits out a 503 (Retry-After) and succeeds once there is room.
        held = _start_body(s.url, 2 * mb)
        time.sleep(0.3)
        threading.Timer(1.0, held.close).start()
        big = [{"image": real_photos(1)[0].read_bytes(), "metadata": {"pad": "x" * (2 * mb)}}]
        with imgfind.Client(s.url) as client:
            t0 = time.monotonic()
            res = client.collection("default").insert_batch(big, keep_duplicates=True)
        assert res[0].ok, res
        assert time.monotonic() - t0 >= 1.0  # it had to wait for the held request


# -- warning and docs -------------------------------------------------------------------------

def test_non_loopback_bind_without_key_warns(tmp_path: Path, tiny_model_dir: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        ["imgfind", "--home", str(tmp_path / "h"), "serve", "--host", "0.0.0.0",
         "--port", str(port), "--model-path", str(tiny_model_dir)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
            if "warning:" in line or "Uvicorn running" in line:
                break
        assert any(re.search(r"warning: serving on 0\.0\.0\.0 without --api-key", x)
                   for x in lines), lines
    finally:
        proc.terminate()
        proc.wait(30)


def test_docs_load_no_script_from_another_host(srv) -> None:
    for page in ("/docs", "/redoc"):
        html = httpx.get(srv.url + page, timeout=60).text
        refs = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', html) + re.findall(
            r"url: ['\"]([^'\"]+)['\"]", html)
        assert refs, html
        for ref in refs:
            assert not re.match(r"^(https?:)?//", ref), (page, ref)
            if ref.endswith((".js", ".css")):
                r = httpx.get(srv.url + ref, timeout=60)
                assert r.status_code == 200 and len(r.content) > 1000, ref
