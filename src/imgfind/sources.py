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

import csv
import itertools
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from imgfind import archives
from imgfind.errors import PathNotAllowed, SourceError
from imgfind.fetch import fetch_url, is_url, too_large
from imgfind.imageio import Limits, has_image_name

__all__ = [
    "NOT_AN_IMAGE",
    "Source",
    "iter_sources",
    "read_bytes",
    "resolve_allowed",
]

log = logging.getLogger(__name__)

_REF_COLUMNS = ("path", "url", "source", "file", "filename", "image")
_INT = re.compile(r"[+-]?(?:0|[1-9]\d*)")
_FLOAT = re.compile(r"[+-]?(?:(?:0|[1-9]\d*)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_GLOB_CHARS = re.compile(r"[*?\[]")
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


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


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
      archive suffix is downloaded (at most :data:`~imgfind.archives.MAX_ARCHIVE_BYTES`, to a
      temporary file kept until :func:`~imgfind.archives.release_downloads`) and listed like a
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
    if isinstance(target, str) and is_url(target):
        if archives.archive_kind(target.split("?", 1)[0].split("#", 1)[0]):
            yield from _members(archives.iter_remote(target, allow_private))
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
    elif (kind := archives.archive_kind(path)) == "zip":
        yield from _members(archives.iter_zip(path))
    elif kind == "tar":
        yield from _members(archives.iter_tar(path))
    elif path.is_file():
        if has_image_name(path.name) or _sniff_image(str(path)):
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
                    if not found and has_image_name(entry.name):
                        ignore(entry.path, "a folder (named like an image) with no images in it")
                elif has_image_name(entry.name):
                    ignore(entry.path, "a folder, not an image file")
            elif broken:
                ignore(entry.path, "broken symbolic link")
            elif not is_file:
                ignore(entry.path, "not a regular file")
            elif has_image_name(entry.name) or _sniff_image(entry.path):
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
    if ref_col is None and header and (is_url(header[0]) or has_image_name(header[0])):
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
        if is_url(ref):
            yield Source(ref=ref, kind="url", metadata=meta, id=item_id)
        elif match := archives.ARCHIVE_REF.match(ref):
            archive = _absolute(match["archive"], base)
            yield Source(ref=f"{archive}!{match['member']}", kind="archive", metadata=meta,
                         id=item_id)
        else:
            yield Source(ref=_absolute(ref, base), kind="file", metadata=meta, id=item_id)


def _absolute(ref: str, base: Path) -> str:
    full = Path(ref).expanduser()
    return os.path.abspath(full if full.is_absolute() else base / full)


def _members(refs: Iterator[str]) -> Iterator[Source]:
    for ref in refs:
        yield Source(ref=ref, kind="archive")


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
        return archives.read_member(src.ref, max_bytes)
    if src.kind == "remote":
        from . import remote

        return remote.read(src.ref, max_bytes)
    raise SourceError(f"{src.ref} has no data to read; pass the image bytes with it")


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise too_large(str(path), size, max_bytes)
            data = f.read(max_bytes + 1)  # the file may have grown since fstat
    except FileNotFoundError as e:
        raise SourceError(f"no such file: {path}") from e
    except IsADirectoryError as e:
        raise SourceError(f"{path} is a folder, not an image file") from e
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
    if len(data) > max_bytes:
        raise too_large(str(path), len(data), max_bytes)
    return data




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
