"""sources: folders, files, globs, CSV, archives, URLs (a real HTTP server), allowed paths."""

from __future__ import annotations

import io
import os
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from imgfind.archives import split_archive_ref
from imgfind.errors import ImageTooLarge, PathNotAllowed, SourceError
from imgfind.fetch import fetch_url
from imgfind.imageio import decode
from imgfind.sources import NOT_AN_IMAGE, Source, iter_sources, read_bytes, resolve_allowed

from .conftest import FLICKR

PHOTOS = sorted(FLICKR.glob("*.jpg"))
pytestmark = pytest.mark.skipif(not PHOTOS, reason="flickr8k-1k photos not available")


@pytest.fixture(scope="module")
def jpg() -> bytes:
    return PHOTOS[3].read_bytes()


@pytest.fixture(scope="module")
def png() -> bytes:
    buf = io.BytesIO()
    Image.open(PHOTOS[4]).save(buf, format="PNG")
    return buf.getvalue()


def names(sources: Iterator[Source], root: Path) -> list[str]:
    out = []
    for src in sources:
        assert os.path.isabs(src.ref), src.ref
        out.append(Path(src.ref).relative_to(root).as_posix())
    return out


@pytest.fixture
def tree(tmp_path: Path, jpg: bytes, png: bytes) -> Path:
    root = tmp_path / "photos"
    outside = tmp_path / "elsewhere"
    for rel, data in {
        "b.JPG": jpg,
        "a.png": png,
        "notes.txt": b"not an image",
        ".hidden.jpg": jpg,
        ".cache/x.jpg": jpg,
        "sub/c.jpeg": jpg,
        "sub/deeper/d.webp": b"RIFF",
        "sub/deeper/readme.md": b"#",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (outside / "e.jpg").parent.mkdir(parents=True)
    (outside / "e.jpg").write_bytes(jpg)
    (root / "sub" / "loop").symlink_to(root)  # a symlink loop
    (root / "linked").symlink_to(outside)  # a linked folder is followed
    (root / "broken.jpg").symlink_to(tmp_path / "gone.jpg")
    return root


def test_folder_walk_is_recursive_sorted_and_skips_hidden(tree: Path) -> None:
    sources = list(iter_sources(tree))
    assert {s.kind for s in sources} == {"file"}
    assert names(iter(sources), tree) == [
        "a.png",
        "b.JPG",
        "linked/e.jpg",
        "sub/c.jpeg",
        "sub/deeper/d.webp",
    ]
    assert names(iter_sources(str(tree), recursive=False), tree) == ["a.png", "b.JPG"]


def test_single_file_counts_whatever_its_extension(tree: Path, png: bytes) -> None:
    disguised = tree / "holiday.jpg"  # PNG content, JPEG name
    disguised.write_bytes(png)
    odd = tree / "scan.dat"
    odd.write_bytes(png)
    for path in (disguised, odd):
        [src] = iter_sources(path)
        assert src == Source(ref=str(path), kind="file")
        assert decode(read_bytes(src)).format == "PNG"
    # neither an image name nor image content: ignored with a reason, not an item error
    ignored: list[tuple[str, str]] = []
    assert list(iter_sources(tree / "notes.txt", on_ignored=lambda *a: ignored.append(a))) == []
    assert ignored == [(str(tree / "notes.txt"), NOT_AN_IMAGE)]


def test_missing_target_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist.*folder.*glob.*URL.*CSV.*archive"):
        list(iter_sources(tmp_path / "nope"))


def test_globs(tree: Path) -> None:
    assert names(iter_sources(f"{tree}/*.jpg"), tree) == ["b.JPG"]  # case-insensitive
    assert names(iter_sources(f"{tree}/?.png"), tree) == ["a.png"]
    assert names(iter_sources(f"{tree}/sub/*"), tree) == ["sub/c.jpeg"]
    assert names(iter_sources(f"{tree}/**/*.jp*g"), tree) == ["b.JPG", "linked/e.jpg", "sub/c.jpeg"]
    assert names(iter_sources(f"{tree}/s*/**"), tree) == ["sub/c.jpeg", "sub/deeper/d.webp"]
    assert names(iter_sources(f"{tree}/[ab].*"), tree) == ["a.png", "b.JPG"]
    with pytest.raises(SourceError, match="no image files match"):
        list(iter_sources(f"{tree}/*.gif"))


def test_relative_glob(tree: Path, monkeypatch) -> None:
    monkeypatch.chdir(tree)
    assert names(iter_sources("sub/*.jpeg"), tree) == ["sub/c.jpeg"]


def test_csv_with_metadata_columns_and_relative_paths(tmp_path: Path, jpg: bytes) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.jpg").write_bytes(jpg)
    lists = tmp_path / "lists"
    lists.mkdir()
    csv_path = lists / "photos.csv"
    csv_path.write_text(
        "\ufeffCaption, Path ,rating,score,zip,note\n"
        "a dog,../imgs/a.jpg,5,4.5,007,\n"
        "remote,https://example.com/x.jpg,,-1e3,,\n"
        ',/abs/elsewhere.png,-2,,,"hello, world"\n'
        "no path here,,1,,,\n"
        "\n",
        encoding="utf-8",
    )
    sources = list(iter_sources(csv_path))
    assert sources == [
        Source(
            ref=str(tmp_path / "imgs" / "a.jpg"),
            kind="file",
            metadata={"Caption": "a dog", "rating": 5, "score": 4.5, "zip": "007"},
        ),
        Source(
            ref="https://example.com/x.jpg",
            kind="url",
            metadata={"Caption": "remote", "score": -1000.0},
        ),
        Source(
            ref="/abs/elsewhere.png", kind="file", metadata={"rating": -2, "note": "hello, world"}
        ),
    ]
    assert decode(read_bytes(sources[0])).format == "JPEG"


def test_csv_without_a_known_column_or_header(tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text("location;label\npics/one.jpg;cat\npics/two.png;dog\n")
    assert [(Path(s.ref).name, s.metadata) for s in iter_sources(first)] == [
        ("one.jpg", {"label": "cat"}),
        ("two.png", {"label": "dog"}),
    ]
    bare = tmp_path / "bare.csv"
    bare.write_text('one.jpg\nhttp://example.com/two.jpg\n"three\nlines.png"\nset.zip!a/b.jpg\n')
    assert [(s.ref, s.kind, s.metadata) for s in iter_sources(bare)] == [
        (str(tmp_path / "one.jpg"), "file", {}),
        ("http://example.com/two.jpg", "url", {}),
        (str(tmp_path / "three\nlines.png"), "file", {}),
        (f"{tmp_path / 'set.zip'}!a/b.jpg", "archive", {}),
    ]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("path,caption\na.jpg,caf\xe9\n".encode("latin-1"))
    with pytest.raises(SourceError, match="UTF-8"):
        list(iter_sources(latin))


def make_archive_members(jpg: bytes, png: bytes) -> dict[str, bytes]:
    return {
        "z.jpg": jpg,
        "album/b.png": png,
        "album/readme.txt": b"text",
        "__MACOSX/album/._b.png": b"resource fork",
        ".DS_Store": b"x",
        "album/.thumb.jpg": jpg,
    }


EXPECTED_MEMBERS = ["album/b.png", "z.jpg"]


def test_zip_members(tmp_path: Path, jpg: bytes, png: bytes) -> None:
    path = tmp_path / "My Photos!.zip"  # a "!" in the archive name is fine
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("album/", b"")
        for name, data in make_archive_members(jpg, png).items():
            zf.writestr(name, data)
    sources = list(iter_sources(path))
    assert [s.ref for s in sources] == [f"{path}!{m}" for m in EXPECTED_MEMBERS]
    assert split_archive_ref(sources[0].ref) == (path, "album/b.png")
    assert {s.kind for s in sources} == {"archive"}
    assert [decode(read_bytes(s)).format for s in sources] == ["PNG", "JPEG"]
    with pytest.raises(ImageTooLarge):
        read_bytes(sources[1], max_bytes=len(jpg) - 1)
    with pytest.raises(SourceError, match="no member"):
        read_bytes(Source(ref=f"{path}!nope.jpg", kind="archive"))
    assert not any(p.name != path.name for p in tmp_path.iterdir())  # nothing extracted


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"])
def test_tar_members(tmp_path: Path, suffix: str, jpg: bytes, png: bytes) -> None:
    path = tmp_path / f"photos{suffix}"
    mode = {".tar": "w", ".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.bz2": "w:bz2", ".tar.xz": "w:xz"}
    with tarfile.open(path, mode[suffix]) as tf:
        for name, data in sorted(make_archive_members(jpg, png).items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    sources = list(iter_sources(path))
    assert [s.ref for s in sources] == [f"{path}!{m}" for m in EXPECTED_MEMBERS]
    assert all(s.data is None for s in sources)  # read on demand, not held while listing
    assert [decode(read_bytes(s)).format for s in sources] == ["PNG", "JPEG"]
    # Out of archive order (and from a ref stored earlier) works too.
    assert read_bytes(Source(ref=f"{path}!z.jpg", kind="archive")) == jpg
    assert read_bytes(Source(ref=f"{path}!album/b.png", kind="archive")) == png
    assert read_bytes(Source(ref=f"{path}!z.jpg", kind="archive")) == jpg
    with pytest.raises(ImageTooLarge):
        read_bytes(Source(ref=f"{path}!z.jpg", kind="archive"), max_bytes=100)
    with pytest.raises(SourceError, match="no member"):
        read_bytes(Source(ref=f"{path}!album/missing.png", kind="archive"))


def test_broken_archive_is_a_source_error(tmp_path: Path) -> None:
    for name in ("bad.zip", "bad.tar.gz"):
        (tmp_path / name).write_bytes(b"definitely not an archive" * 10)
        with pytest.raises(SourceError):
            list(iter_sources(tmp_path / name))


def test_read_bytes_of_files_and_data(tmp_path: Path, jpg: bytes) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(jpg)
    assert read_bytes(Source(ref=str(path), kind="file")) == jpg
    with pytest.raises(ImageTooLarge, match="over the limit"):
        read_bytes(Source(ref=str(path), kind="file"), max_bytes=len(jpg) - 1)
    with pytest.raises(SourceError, match="no such file"):
        read_bytes(Source(ref=str(tmp_path / "gone.jpg"), kind="file"))
    with pytest.raises(SourceError, match="folder"):
        read_bytes(Source(ref=str(tmp_path), kind="file"))
    assert read_bytes(Source(ref="upload:x.jpg", kind="bytes", data=b"abc")) == b"abc"
    with pytest.raises(SourceError):
        read_bytes(Source(ref="upload:x.jpg", kind="bytes"))


# --- URLs, against a real HTTP server on 127.0.0.1 ---------------------------------


class Handler(BaseHTTPRequestHandler):
    photo = b""

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def route(self) -> None:
        if self.path == "/photo.jpg":
            self.send(
                200, self.photo, Content_Type="image/jpeg", Content_Length=str(len(self.photo))
            )
        elif self.path == "/slow":  # a byte at a time: every read is quick, the whole is not
            self.send(200, Content_Type="image/jpeg")
            for _ in range(400):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.02)
        elif self.path == "/stall":
            self.send(200, b"\xff\xd8", Content_Type="image/jpeg", Content_Length="1000")
            self.wfile.flush()
            time.sleep(8)
        elif self.path == "/huge-declared":
            self.send(200, b"x" * 1000, Content_Length=str(10**10))
        elif self.path == "/huge-stream":  # no Content-Length: the body ends at close
            self.send(200, Content_Type="image/jpeg")
            for _ in range(64):
                self.wfile.write(b"x" * 2**20)
        elif self.path == "/to-file":
            self.send(302, Location="file:///etc/passwd")
        elif self.path == "/to-photo":
            self.send(301, Location="/photo.jpg")
        elif self.path == "/loop":
            self.send(302, Location="/loop")
        else:
            self.send(404, b"not here")


@pytest.fixture(scope="module")
def server(jpg: bytes) -> Iterator[str]:
    handler = type("PhotoHandler", (Handler,), {"photo": jpg})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_source_is_fetched_and_decoded(server: str, jpg: bytes) -> None:
    [src] = iter_sources(f"{server}/photo.jpg")
    assert src == Source(ref=f"{server}/photo.jpg", kind="url")
    assert read_bytes(src) == jpg
    assert fetch_url(f"{server}/to-photo") == jpg  # redirects within http are followed
    assert decode(fetch_url(f"{server}/photo.jpg")).format == "JPEG"


def test_url_size_limit(server: str, jpg: bytes) -> None:
    with pytest.raises(ImageTooLarge):
        fetch_url(f"{server}/photo.jpg", max_bytes=len(jpg) - 1)
    with pytest.raises(ImageTooLarge):
        fetch_url(f"{server}/huge-declared")  # refused from the header alone
    with pytest.raises(ImageTooLarge, match="still downloading"):
        fetch_url(f"{server}/huge-stream", max_bytes=2**20)


def test_url_total_time_limit(server: str) -> None:
    # /slow finishes in ~8 s with every single read fast, so only a limit on the
    # total time stops it; /stall stops sending after two bytes.
    with pytest.raises(SourceError, match="took longer|too long"):
        fetch_url(f"{server}/slow", timeout=0.5)
    with pytest.raises(SourceError, match="took longer|too long|timed out"):
        fetch_url(f"{server}/stall", timeout=0.5)


def test_url_refusals_and_http_errors(server: str, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="only http and https"):
        fetch_url(f"{server}/to-file")
    for url in ("file:///etc/passwd", "ftp://example.com/a.jpg", "/etc/passwd"):
        with pytest.raises(SourceError, match="only http and https"):
            fetch_url(url)
    with pytest.raises(SourceError, match="404"):
        read_bytes(Source(ref=f"{server}/missing.jpg", kind="url"))
    with pytest.raises(SourceError, match="redirected more than 3 times"):
        fetch_url(f"{server}/loop", max_redirects=3)
    with pytest.raises(SourceError, match="cannot fetch"):
        fetch_url("http://127.0.0.1:9/closed-port.jpg")


def test_private_addresses_refused_when_asked(server: str) -> None:
    """What the server uses for callers' URLs: no loopback/private/link-local targets."""
    for url in (f"{server}/missing.jpg", "http://localhost:9/a.jpg", "http://10.1.2.3/a.jpg",
                "http://169.254.169.254/latest/meta-data", "http://[::1]:9/a.jpg"):
        with pytest.raises(SourceError, match="private or local address"):
            fetch_url(url, allow_private=False)
    with pytest.raises(SourceError, match="private or local address"):
        read_bytes(Source(ref=f"{server}/missing.jpg", kind="url"), allow_private=False)
    with pytest.raises(SourceError, match="404"):  # the default (library) allows them
        fetch_url(f"{server}/missing.jpg")


# --- resolve_allowed ------------------------------------------------------------------


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data2").mkdir()
    (tmp_path / "data" / "sub" / "a.jpg").write_bytes(b"a")
    (tmp_path / "data2" / "b.jpg").write_bytes(b"b")
    (tmp_path / "data" / "escape.jpg").symlink_to(tmp_path / "data2" / "b.jpg")
    (tmp_path / "data" / "inside.jpg").symlink_to(tmp_path / "data" / "sub" / "a.jpg")
    (tmp_path / "data" / "out").symlink_to(tmp_path / "data2")
    (tmp_path / "alias").symlink_to(tmp_path / "data")
    return tmp_path


def test_paths_inside_the_roots_are_resolved(roots: Path) -> None:
    data = roots / "data"
    assert resolve_allowed(data / "sub" / "a.jpg", [data]) == data / "sub" / "a.jpg"
    assert resolve_allowed(str(data / "inside.jpg"), [str(data)]) == data / "sub" / "a.jpg"
    assert resolve_allowed(data / "sub" / ".." / "sub" / "a.jpg", [data]) == data / "sub" / "a.jpg"
    assert resolve_allowed("sub/a.jpg", [roots / "data2", data]) == data / "sub" / "a.jpg"
    assert resolve_allowed(data, [data]) == data
    assert resolve_allowed(data / "not-yet.jpg", [data]) == data / "not-yet.jpg"
    # Roots given through a symlink still cover the real folder, and vice versa.
    assert resolve_allowed(data / "sub" / "a.jpg", [roots / "alias"]) == data / "sub" / "a.jpg"
    assert resolve_allowed(roots / "alias" / "sub" / "a.jpg", [data]) == data / "sub" / "a.jpg"


@pytest.mark.parametrize(
    "path",
    [
        "data/../data2/b.jpg",  # dot-dot
        "data/escape.jpg",  # a symlink pointing out
        "data/out/b.jpg",  # through a symlinked folder pointing out
        "data2/b.jpg",  # "/data" is a string prefix of "/data2" but not its parent
        "/etc/passwd",  # absolute, elsewhere
    ],
)
def test_paths_outside_the_roots_are_refused(roots: Path, path: str) -> None:
    full = path if path.startswith("/") else str(roots / path)
    with pytest.raises(PathNotAllowed) as err:
        resolve_allowed(full, [roots / "data"])
    assert err.value.status == 403


def test_relative_escapes_empty_roots_and_bad_paths(roots: Path) -> None:
    data = roots / "data"
    with pytest.raises(PathNotAllowed):
        resolve_allowed("../data2/b.jpg", [data])
    with pytest.raises(PathNotAllowed, match="no folders are allowed"):
        resolve_allowed(data / "sub" / "a.jpg", [])
    with pytest.raises(PathNotAllowed):
        resolve_allowed(f"{data}/a\x00.jpg", [data])
