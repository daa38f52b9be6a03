"""Sources: turn "what to index" into a stream of images to read.

A target may be a folder, a single file, a glob pattern, an http(s) URL, a CSV
of paths/URLs with metadata columns, or an archive (.zip, .tar, .tar.gz, .tgz,
.tar.bz2, .tar.xz). :func:`iter_sources` yields one :class:`Source` per image;
:func:`read_bytes` gets its bytes, within limits. Nothing is ever extracted to
disk, and URL fetches are bounded in size and total time.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "b.JPG").write_bytes(b"x"); _ = (folder / "a.png").write_bytes(b"x")
>>> _ = (folder / "notes.txt").write_text("not an image")
>>> [pathlib.Path(s.ref).name for s in iter_sources(folder)]
['a.png', 'b.JPG']
"""

from __future__ import annotations

import atexit
import csv
import itertools
import logging
import os
import re
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from imgfind.errors import ImageTooLarge, PathNotAllowed, SourceError
from imgfind.imageio import IMAGE_EXTENSIONS, Limits

__all__ = [
    "NOT_AN_IMAGE",
    "Source",
    "release_downloads",
    "fetch_url",
    "iter_sources",
    "read_bytes",
    "resolve_allowed",
    "split_archive_ref",
]

log = logging.getLogger(__name__)

_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
# "<archive path>!<member>": the shortest prefix ending in an archive suffix wins,
# so member names may themselves contain "!".
_ARCHIVE_REF = re.compile(
    r"^(?P<archive>.+?(?:"
    + "|".join(re.escape(s) for s in _ARCHIVE_SUFFIXES)
    + r"))!(?P<member>.+)$",
    re.IGNORECASE,
)
_REF_COLUMNS = ("path", "url", "source", "file", "filename", "image")
_INT = re.compile(r"[+-]?(?:0|[1-9]\d*)")
_FLOAT = re.compile(r"[+-]?(?:(?:0|[1-9]\d*)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_GLOB_CHARS = re.compile(r"[*?\[]")
_USER_AGENT = "imgfind/0.1 (+https://github.com/imgfind)"
#: Largest remote archive ``iter_sources`` downloads (to a temporary file, not to memory).
MAX_ARCHIVE_BYTES = 8 * 2**30
#: Called with (ref, reason) for each entry a walk passes over because it is not an image.
OnIgnored = Callable[[str, str], None]
NOT_AN_IMAGE = "not an image: neither an image file name nor image content"


@dataclass
class Source:
    """One image to index: where it is, plus any metadata that came with it.

    ``ref`` is an absolute file path, an http(s) URL, ``"archive.zip!member.jpg"``,
    an fsspec URL (``s3://...``, see :mod:`imgfind.remote`) or ``"upload:<name>"``;
    ``data`` is set when the bytes are already in hand (uploads); ``facts`` are
    file facts a listing already gave (remote objects).

    >>> Source("upload:cat.jpg", "bytes", {"album": "pets"}, b"...").kind
    'bytes'
    """

    ref: str
    kind: Literal["file", "url", "archive", "bytes", "remote"]
    metadata: dict = field(default_factory=dict)
    data: bytes | None = None
    facts: dict | None = None
    #: the item id the source asks for (a CSV ``id`` column); None: the indexer picks one
    id: str | None = None


def _is_url(text: str) -> bool:
    return text[:8].lower().startswith(("http://", "https://"))


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _has_image_ext(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _sniff_image(path: str) -> bool:
    """Whether a file's first bytes are those of an image format imgfind decodes."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return (head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a",
                             b"II*\x00", b"MM\x00*"))
            or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
            or (head[:2] == b"BM" and len(head) >= 14 and head[6:10] == b"\x00\x00\x00\x00")
            or (head[4:8] == b"ftyp" and head[8:12] in {
                b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
                b"avif", b"avis"}))


def _archive_kind(path: Path | str) -> str | None:
    name = (path.name if isinstance(path, Path) else path.rsplit("/", 1)[-1]).lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_ARCHIVE_SUFFIXES):
        return "tar"
    return None


def iter_sources(target: str | Path, *, recursive: bool = True,
                 on_ignored: OnIgnored | None = None,
                 allow_private: bool = True) -> Iterator[Source]:
    """Yield the images a target names, in a deterministic order.

    - folder: image files (by extension, any case, or by content for files
      without an image extension), walked recursively in path order,
      skipping hidden files and folders; symlinked folders are followed once
      (loops are cut); ``recursive=False`` stays at the top. Every entry
      passed over (hidden, not an image, broken link, link loop, a folder
      named like an image that is not walked, not a regular file) is told to
      ``on_ignored(ref, reason)``.
    - single file: yielded if it has an image extension or image content,
      else told to ``on_ignored`` (a file named as an image that does not
      decode is the indexer's per-item error).
    - glob (``*``, ``?``, ``[...]``, ``**`` for any depth): matching image
      files, ignoring case and hidden files, like the folder walk.
    - http(s) URL: one ``kind="url"`` source; a URL whose path ends in an
      archive suffix is downloaded (at most :data:`MAX_ARCHIVE_BYTES`, to a
      temporary file kept until :func:`release_downloads`) and listed like a
      local archive, refs ``"<url>!<member>"``.
    - ``.csv``: one source per row from the column named path/url/source/
      file/filename/image (else the first column; a header row is optional);
      cells may be paths (relative ones are relative to the CSV), URLs or
      ``archive.zip!member`` refs; a column named ``id`` gives the item id
      (text, as written); other non-empty cells become metadata
      (numbers become int/float, zero-padded ones such as "007" stay text).
    - archive: image members as ``kind="archive"``, ref ``"<archive>!<member>"``.
    - fsspec URL (``s3://bucket/prefix/``, ``gs://``, ``memory://``...): image
      objects under it as ``kind="remote"`` (:mod:`imgfind.remote`).

    ``allow_private=False`` refuses to download from loopback/private hosts.

    Raises :class:`~imgfind.errors.SourceError` when the target does not exist.

    >>> next(iter_sources("https://example.com/cat.jpg")).kind
    'url'
    """
    ignore: OnIgnored = on_ignored or (lambda ref, reason: None)
    if isinstance(target, str) and _is_url(target):
        if _archive_kind(target.split("?", 1)[0].split("#", 1)[0]):
            yield from _iter_remote_archive(target, allow_private)
            return
        yield Source(ref=target, kind="url")
        return
    from . import remote

    if remote.is_remote(target):
        yield from remote.iter_remote(str(target), recursive=recursive)
        return
    path = Path(target).expanduser()
    if not path.exists() and not path.is_symlink():
        if _GLOB_CHARS.search(str(target)):
            yield from _iter_glob(str(path), ignore)
            return
        raise SourceError(
            f"{target} does not exist; give a folder, an image file, a glob pattern, "
            "an http(s) URL, a CSV file or an archive"
        )
    path = Path(os.path.abspath(path))
    if path.is_dir():
        yield from _walk(path, max_depth=None if recursive else 0, ignore=ignore)
    elif path.suffix.lower() == ".csv":
        yield from _iter_csv(path)
    elif (kind := _archive_kind(path)) == "zip":
        yield from _iter_zip(path)
    elif kind == "tar":
        yield from _iter_tar(path)
    elif path.is_file():
        if _has_image_ext(path.name) or _sniff_image(str(path)):
            yield Source(ref=str(path), kind="file")
        else:
            ignore(str(path), NOT_AN_IMAGE)
    else:
        raise SourceError(f"{target} is neither a file nor a folder (broken link or device?)")


def _walk(root: Path, *, max_depth: int | None, ignore: OnIgnored) -> Iterator[Source]:
    """Image files under ``root`` in path order; ``max_depth`` 0 means no subfolders.

    Files without an image extension are kept when their first bytes are an image's
    (a JPEG saved without extension); everything passed over is told to ``ignore``.
    """
    seen: set[tuple[int, int]] = set()

    def visit(folder: Path, depth: int) -> Iterator[Source]:
        try:
            st = folder.stat()
        except OSError as e:
            ignore(str(folder), f"cannot read folder: {e.strerror or e}")
            return
        if (st.st_dev, st.st_ino) in seen:
            ignore(str(folder), "symbolic link to a folder already walked (a link loop)")
            return
        seen.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            ignore(str(folder), f"cannot read folder: {e.strerror or e}")
            return
        for entry in entries:
            if _is_hidden(entry.name):
                ignore(entry.path, "hidden")
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks; a broken link is neither
                is_file = not is_dir and entry.is_file()
                broken = not is_dir and not is_file and entry.is_symlink() \
                    and not os.path.exists(entry.path)
            except OSError as e:
                ignore(entry.path, f"cannot read: {e.strerror or e}")
                continue
            if is_dir:
                if max_depth is None or depth < max_depth:
                    found = False
                    for src in visit(Path(entry.path), depth + 1):
                        found = True
                        yield src
                    if not found and _has_image_ext(entry.name):
                        ignore(entry.path, "a folder (named like an image) with no images in it")
                elif _has_image_ext(entry.name):
                    ignore(entry.path, "a folder, not an image file")
            elif broken:
                ignore(entry.path, "broken symbolic link")
            elif not is_file:
                ignore(entry.path, "not a regular file")
            elif _has_image_ext(entry.name) or _sniff_image(entry.path):
                yield Source(ref=entry.path, kind="file")
            else:
                ignore(entry.path, NOT_AN_IMAGE)

    yield from visit(root, 0)


def _part_regex(part: str) -> str:
    """One path component of a glob as a regex; wildcards never cross "/"."""
    out, i = [], 0
    while i < len(part):
        ch = part[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[" and (end := part.find("]", i + 2)) != -1:
            body = part[i + 1 : end].replace("\\", "\\\\")
            out.append("[^/" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _iter_glob(pattern: str, ignore: OnIgnored) -> Iterator[Source]:
    # Matched against a loop-safe walk rather than glob.glob, which follows
    # symlink loops (yielding the same photo dozens of times) and is
    # case-sensitive where photo extensions often are not (.JPG).
    parts = Path(os.path.abspath(pattern)).parts
    fixed = next(i for i, part in enumerate(parts) if _GLOB_CHARS.search(part))
    base, rest = Path(*parts[:fixed]), parts[fixed:]
    regex = "".join(
        ("(?:[^/]+/)*" if part == "**" else _part_regex(part) + "/") for part in rest[:-1]
    ) + (".*" if rest[-1] == "**" else _part_regex(rest[-1]))
    matcher = re.compile(regex, re.IGNORECASE)
    depth = None if "**" in rest else len(rest) - 1
    found = False

    def ignore_matching(ref: str, reason: str) -> None:
        if matcher.fullmatch(Path(ref).relative_to(base).as_posix()):
            ignore(ref, reason)

    for src in _walk(base, max_depth=depth, ignore=ignore_matching):
        if matcher.fullmatch(Path(src.ref).relative_to(base).as_posix()):
            found = True
            yield src
    if not found:
        raise SourceError(f"no image files match {pattern}; check the pattern and the folder")


def _coerce(cell: str) -> Any:
    # Leading zeros ("007", zip codes) stay text: they are identifiers, not numbers.
    if _INT.fullmatch(cell):
        return int(cell)
    if _FLOAT.fullmatch(cell):
        return float(cell)
    return cell


def _iter_csv(path: Path) -> Iterator[Source]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            yield from _csv_rows(f, path.parent)
    except UnicodeDecodeError as e:
        raise SourceError(f"{path} is not UTF-8 text; save the CSV as UTF-8") from e
    except csv.Error as e:
        raise SourceError(f"{path} is not a readable CSV file: {e}") from e
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from e


def _csv_rows(f: TextIO, base: Path) -> Iterator[Source]:
    sample = f.read(8192)
    f.seek(0)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows: Iterator[list[str]] = csv.reader(f, dialect)
    first = next(rows, None)
    if first is None:
        return
    header = [name.strip() for name in first]
    lowered = [name.lower() for name in header]
    ref_col = next((lowered.index(n) for n in _REF_COLUMNS if n in lowered), None)
    if ref_col is None and header and (_is_url(header[0]) or _has_image_ext(header[0])):
        # No header row: the first line is already an image reference.
        rows = itertools.chain([first], rows)
        header = []
    ref_col = ref_col or 0
    id_col = lowered.index("id") if header and "id" in lowered else None
    for row in rows:
        ref = row[ref_col].strip() if len(row) > ref_col else ""
        if not ref:
            continue
        meta = {
            name: _coerce(cell.strip())
            for i, (name, cell) in enumerate(zip(header, row, strict=False))
            if i not in (ref_col, id_col) and name and cell.strip()
        }
        item_id = (row[id_col].strip() or None) if id_col is not None and len(row) > id_col \
            else None
        if _is_url(ref):
            yield Source(ref=ref, kind="url", metadata=meta, id=item_id)
        elif match := _ARCHIVE_REF.match(ref):
            archive = _absolute(match["archive"], base)
            yield Source(ref=f"{archive}!{match['member']}", kind="archive", metadata=meta,
                         id=item_id)
        else:
            yield Source(ref=_absolute(ref, base), kind="file", metadata=meta, id=item_id)


def _absolute(ref: str, base: Path) -> str:
    full = Path(ref).expanduser()
    return os.path.abspath(full if full.is_absolute() else base / full)


def _member_ok(name: str) -> bool:
    parts = name.split("/")
    return (
        _has_image_ext(name)
        and not any(_is_hidden(p) for p in parts)
        and "__MACOSX" not in parts  # macOS resource forks, not images
    )


_downloads: dict[str, Path] = {}
_downloads_lock = threading.Lock()


def _iter_remote_archive(url: str, allow_private: bool) -> Iterator[Source]:
    """List a downloaded archive's members under the URL, so refs say where they came from."""
    local = _download_archive(url, allow_private)
    inner = _iter_zip(local) if _archive_kind(local) == "zip" else _iter_tar(local)
    for src in inner:
        yield Source(ref=f"{url}!{src.ref.split('!', 1)[1]}", kind="archive")


def _download_archive(url: str, allow_private: bool) -> Path:
    with _downloads_lock:
        if url in _downloads and _downloads[url].exists():
            return _downloads[url]
    name = url.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
    fd, tmp = tempfile.mkstemp(prefix="imgfind-", suffix="-" + name)
    try:
        with os.fdopen(fd, "wb") as f:
            fetch_url(url, max_bytes=MAX_ARCHIVE_BYTES, timeout=3600.0,
                      allow_private=allow_private, sink=f.write)
    except BaseException:
        os.unlink(tmp)
        raise
    with _downloads_lock:
        _downloads[url] = Path(tmp)
    return Path(tmp)


def release_downloads() -> None:
    """Delete the temporary copies of remote archives (their items can no longer be read
    by ref until listed again)."""
    with _downloads_lock:
        paths = list(_downloads.values())
        _downloads.clear()
    for path in paths:
        try:
            path.unlink()
        except OSError:
            pass


atexit.register(release_downloads)


def _local_archive(archive: str) -> Path:
    if _is_url(archive):
        with _downloads_lock:
            local = _downloads.get(archive)
        if local is None:
            raise SourceError(f"{archive} is a remote archive that is not downloaded; "
                              "index the archive's URL again")
        return local
    return Path(archive)


def _iter_zip(path: Path) -> Iterator[Source]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = sorted(zf.infolist(), key=lambda i: i.filename)
    except (zipfile.BadZipFile, OSError) as e:
        raise SourceError(f"{path} is not a readable zip archive: {e}") from e
    for info in infos:
        if not info.is_dir() and _member_ok(info.filename):
            yield Source(ref=f"{path}!{info.filename}", kind="archive")


def _iter_tar(path: Path) -> Iterator[Source]:
    # Listing needs one pass over the data (a tar has no index), but nothing
    # is kept: members are read later, through _TarCursor.
    try:
        with tarfile.open(path, mode="r|*") as tf:
            for member in tf:
                if member.isfile() and _member_ok(member.name):
                    yield Source(ref=f"{path}!{member.name}", kind="archive")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise SourceError(f"{path} is not a readable tar archive: {e}") from e


def read_bytes(src: Source, *, max_bytes: int = Limits.max_bytes, timeout: float = 20.0,
               allow_private: bool = True) -> bytes:
    """Return a source's bytes: in-memory data, a file, a URL or an archive member.

    Raises :class:`~imgfind.errors.ImageTooLarge` over ``max_bytes`` and
    :class:`~imgfind.errors.SourceError` when it cannot be read.

    >>> read_bytes(Source("upload:x.png", "bytes", data=b"abc"))
    b'abc'
    """
    if src.data is not None:
        return src.data
    if src.kind == "file":
        return _read_file(Path(src.ref), max_bytes)
    if src.kind == "url":
        return fetch_url(src.ref, max_bytes=max_bytes, timeout=timeout,
                         allow_private=allow_private)
    if src.kind == "archive":
        return _read_member(src.ref, max_bytes)
    if src.kind == "remote":
        from . import remote

        return remote.read(src.ref, max_bytes)
    raise SourceError(f"{src.ref} has no data to read; pass the image bytes with it")


def _too_large(what: str, size: int, max_bytes: int) -> ImageTooLarge:
    return ImageTooLarge(
        f"{what} is {size:,} bytes, over the limit of {max_bytes:,} bytes; "
        "shrink it or raise the byte limit"
    )


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise _too_large(str(path), size, max_bytes)
            data = f.read(max_bytes + 1)  # the file may have grown since fstat
    except FileNotFoundError as e:
        raise SourceError(f"no such file: {path}") from e
    except IsADirectoryError as e:
        raise SourceError(f"{path} is a folder, not an image file") from e
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
    if len(data) > max_bytes:
        raise _too_large(str(path), len(data), max_bytes)
    return data


def split_archive_ref(ref: str) -> tuple[Path, str]:
    """Split ``"<archive>!<member>"`` into the archive's path and the member name.

    Archive and member names may contain "!" themselves; the archive part is
    the shortest prefix that ends in an archive suffix.

    >>> split_archive_ref("/data/a!b.zip!album/c!.jpg")
    (PosixPath('/data/a!b.zip'), 'album/c!.jpg')
    """
    match = _ARCHIVE_REF.match(ref)
    if match is None:
        raise SourceError(f"{ref} is not of the form <archive>!<member>")
    return Path(match["archive"]), match["member"]


def _read_member(ref: str, max_bytes: int) -> bytes:
    match = _ARCHIVE_REF.match(ref)
    if match is None:
        raise SourceError(f"{ref} is not of the form <archive>!<member>")
    archive, member = _local_archive(match["archive"]), match["member"]
    if not archive.is_file():
        raise SourceError(f"no such archive: {archive}")
    try:
        if _archive_kind(archive) == "zip":
            with zipfile.ZipFile(archive) as zf:
                info = zf.getinfo(member)
                if info.file_size > max_bytes:
                    raise _too_large(ref, info.file_size, max_bytes)
                with zf.open(info) as f:
                    data = f.read(max_bytes + 1)  # the header's size may lie
        else:
            data = _read_tar_member(archive, member, ref, max_bytes)
    except KeyError as e:
        raise SourceError(f"{archive} has no member {member!r}") from e
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as e:
        raise SourceError(f"cannot read {ref}: {e}") from e
    if len(data) > max_bytes:
        raise _too_large(ref, len(data), max_bytes)
    return data


class _TarCursor:
    """A forward-only reader over one tar archive.

    A compressed tar can only be read front to back, so opening it per member
    would cost O(n^2) decompression for n members. Members are normally read in
    archive order (the order :func:`iter_sources` lists them), so one cursor
    per thread that keeps going forward makes a whole archive one pass.
    """

    def __init__(self, key: tuple) -> None:
        self.key = key
        self.tar = tarfile.open(key[0], mode="r|*")  # noqa: SIM115 - closed by close()
        self.passed: set[str] = set()

    def read(self, member: str, ref: str, max_bytes: int) -> bytes:
        while (info := self.tar.next()) is not None:
            self.passed.add(info.name)
            if info.name != member:
                continue
            if info.size > max_bytes:
                raise _too_large(ref, info.size, max_bytes)
            fileobj = self.tar.extractfile(info) if info.isfile() else None
            if fileobj is None:
                break
            return fileobj.read(max_bytes + 1)
        raise KeyError(member)

    def close(self) -> None:
        self.tar.close()


_tar_cursors = threading.local()


def _read_tar_member(archive: Path, member: str, ref: str, max_bytes: int) -> bytes:
    st = archive.stat()
    # The pid is part of the key: a forked worker must not read through its
    # parent's file offset.
    key = (str(archive), st.st_mtime_ns, st.st_size, os.getpid())
    cursor: _TarCursor | None = getattr(_tar_cursors, "cursor", None)
    if cursor is None or cursor.key != key or member in cursor.passed:
        if cursor is not None and cursor.key[3] == key[3]:
            cursor.close()
        cursor = _tar_cursors.cursor = _TarCursor(key)
    try:
        return cursor.read(member, ref, max_bytes)
    except (tarfile.TarError, OSError, EOFError):
        cursor.close()
        _tar_cursors.cursor = None
        raise


def fetch_url(
    url: str,
    *,
    max_bytes: int = 32 * 2**20,
    timeout: float = 20.0,
    max_redirects: int = 5,
    allow_private: bool = True,
    sink: Callable[[bytes], object] | None = None,
) -> bytes:
    """Download a URL with hard bounds on size, total time and redirects.

    With ``allow_private=False`` (what the server uses for its callers) a URL
    whose host resolves to a loopback, private, link-local or otherwise
    non-public address is refused, also as a redirect target, so callers
    cannot make the server reach its own network.

    Only http and https are allowed, also as redirect targets. The size limit
    is enforced on the bytes actually received (a missing or lying
    Content-Length does not help a huge response through); ``timeout`` bounds
    the whole download, so a server trickling bytes cannot hold it forever.
    With ``sink``, each chunk goes to ``sink(chunk)`` instead of memory and
    ``b""`` is returned (large downloads to a file).

    Raises :class:`~imgfind.errors.SourceError` (refused scheme, HTTP error
    status, network failure, too slow, too many redirects) or
    :class:`~imgfind.errors.ImageTooLarge`.

    >>> fetch_url("file:///etc/passwd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    imgfind.errors.SourceError: refusing to fetch file:///etc/passwd: only http and https ...
    """

    _check_scheme(url)
    outcome: dict[str, Any] = {}
    cancelled = threading.Event()
    deadline = time.monotonic() + timeout

    def work() -> None:
        try:
            outcome["data"] = _fetch(url, max_bytes, timeout, deadline, max_redirects, cancelled,
                                     allow_private, sink)
        except Exception as e:  # noqa: BLE001 - re-raised in the caller's thread below
            outcome["error"] = e

    # The download runs in a helper thread so the caller gets control back at
    # the deadline even while the socket is blocked in a read; httpx's own
    # timeouts are per operation and cannot bound the total.
    worker = threading.Thread(target=work, name="imgfind-fetch", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        cancelled.set()
        raise SourceError(
            f"fetching {url} took longer than {timeout:g} s; try again or raise the timeout"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["data"]


def _check_scheme(url: str) -> None:
    if not _is_url(url):
        raise SourceError(f"refusing to fetch {url}: only http and https URLs are allowed")


def _fetch(
    url: str,
    max_bytes: int,
    timeout: float,
    deadline: float,
    max_redirects: int,
    cancelled: threading.Event,
    allow_private: bool = True,
    sink: Callable[[bytes], object] | None = None,
) -> bytes:
    import httpx  # only URL sources pay for it (keeps CLI start-up fast)

    headers = {"User-Agent": _USER_AGENT, "Accept": "image/*,*/*;q=0.5"}
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, headers=headers) as client:
            for _ in range(max_redirects + 1):
                target, pin = url, dict[str, Any]()
                if not allow_private:
                    # Connect to the very address that was checked: a second DNS lookup
                    # could answer a private one (DNS rebinding).
                    target, pin = _pinned(url, _check_public(url))
                with client.stream("GET", target, **pin) as response:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        url = str(httpx.URL(url).join(location))
                        _check_scheme(url)
                        continue
                    if response.status_code >= 400:
                        raise SourceError(
                            f"{url} answered HTTP {response.status_code} "
                            f"{response.reason_phrase}".rstrip()
                        )
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise _too_large(url, int(declared), max_bytes)
                    chunks: list[bytes] = []
                    received = 0
                    for chunk in response.iter_bytes():
                        received += len(chunk)
                        if received > max_bytes:
                            raise _too_large(f"{url} (still downloading)", received, max_bytes)
                        if cancelled.is_set() or time.monotonic() > deadline:
                            raise SourceError(f"fetching {url} took too long")
                        if sink is not None:
                            sink(chunk)
                        else:
                            chunks.append(chunk)
                    return b"".join(chunks)
    except httpx.TimeoutException as e:
        raise SourceError(f"fetching {url} timed out ({type(e).__name__})") from e
    except httpx.InvalidURL as e:
        raise SourceError(f"{url} is not a valid URL: {e}") from e
    except httpx.HTTPError as e:
        raise SourceError(f"cannot fetch {url}: {e}") from e
    raise SourceError(f"{url} redirected more than {max_redirects} times")


def _pinned(url: str, address: str) -> tuple[str, dict[str, Any]]:
    """``url`` with its host replaced by ``address``, and the request options that keep
    the original host for the ``Host`` header, TLS SNI and certificate check."""
    import httpx

    u = httpx.URL(url)
    host = u.host
    netloc = f"[{host}]" if ":" in host else host
    if u.port is not None:
        netloc += f":{u.port}"
    return str(u.copy_with(host=address)), {
        "headers": {"Host": netloc}, "extensions": {"sni_hostname": host}}


def _check_public(url: str) -> str:
    """Refuse a URL whose host is, or resolves to, a non-public address; -> the address
    to connect to (one of those checked)."""
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as e:
        raise SourceError(f"cannot resolve the host of {url}: {e}") from None
    if not infos:
        raise SourceError(f"cannot resolve the host of {url}")
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            raise SourceError(
                f"refusing to fetch {url}: {host} is a private or local address ({address}); "
                "only public URLs are fetched for API callers (imgfind serve "
                "--allow-private-urls lifts this)")
    return str(ipaddress.ip_address(str(infos[0][4][0]).split("%", 1)[0]))


def resolve_allowed(path: str | Path, roots: Sequence[str | Path]) -> Path:
    """Resolve a path a client sent and make sure it lies inside an allowed root.

    Symlinks and ``..`` are resolved first, so neither can escape a root; a
    root only covers its own subtree (``/data`` does not cover ``/data2``).
    Relative paths are taken relative to each root in turn. Raises
    :class:`~imgfind.errors.PathNotAllowed` otherwise.

    >>> resolve_allowed("/srv/photos/a.jpg", ["/srv/photos"])
    PosixPath('/srv/photos/a.jpg')
    >>> resolve_allowed("/srv/photos/../secret", ["/srv/photos"])
    Traceback (most recent call last):
    ...
    imgfind.errors.PathNotAllowed: /srv/photos/../secret is not inside a folder this server may read
    """
    if not roots:
        raise PathNotAllowed(
            f"{path} cannot be read: no folders are allowed; configure the allowed folders"
        )
    try:
        real_roots = [Path(os.path.realpath(Path(r).expanduser())) for r in roots]
        given = Path(path)
        candidates = (
            [Path(os.path.realpath(given))]
            if given.is_absolute()
            else [Path(os.path.realpath(root / given)) for root in real_roots]
        )
    except (ValueError, OSError) as e:  # NUL bytes, over-long names
        raise PathNotAllowed(f"{path!r} is not a usable path: {e}") from e
    allowed = [c for c in candidates if any(c.is_relative_to(r) for r in real_roots)]
    for candidate in allowed:
        if candidate.exists():
            return candidate
    if allowed:
        return allowed[0]
    raise PathNotAllowed(f"{path} is not inside a folder this server may read")
