"""Archives as sources: .zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz, local or by URL.

Members are listed as refs ``"<archive>!<member>"`` and read one at a time,
within the byte limit; nothing is ever extracted to disk. A remote archive is
downloaded once (bounded by :data:`MAX_ARCHIVE_BYTES`) to a temporary file
that lives until :func:`release_downloads`.

>>> split_archive_ref("/data/photos.zip!album/c.jpg")
(PosixPath('/data/photos.zip'), 'album/c.jpg')
"""

from __future__ import annotations

import atexit
import os
import re
import tarfile
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

from imgfind.errors import SourceError
from imgfind.fetch import fetch_url, is_url, too_large
from imgfind.imageio import has_image_name

__all__ = ["ARCHIVE_REF", "MAX_ARCHIVE_BYTES", "archive_kind", "iter_remote", "iter_tar",
           "iter_zip", "read_member", "release_downloads", "split_archive_ref"]


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


# "<archive path>!<member>": the shortest prefix ending in an archive suffix wins,
# so member names may themselves contain "!".
ARCHIVE_REF = re.compile(
    r"^(?P<archive>.+?(?:"
    + "|".join(re.escape(s) for s in ARCHIVE_SUFFIXES)
    + r"))!(?P<member>.+)$",
    re.IGNORECASE,
)


#: Largest remote archive ``iter_sources`` downloads (to a temporary file, not to memory).
MAX_ARCHIVE_BYTES = 8 * 2**30


def archive_kind(path: Path | str) -> str | None:
    name = (path.name if isinstance(path, Path) else path.rsplit("/", 1)[-1]).lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(ARCHIVE_SUFFIXES):
        return "tar"
    return None


def _member_ok(name: str) -> bool:
    parts = name.split("/")
    return (
        has_image_name(name)
        and not any(p.startswith(".") for p in parts)
        and "__MACOSX" not in parts  # macOS resource forks, not images
    )


_downloads: dict[str, Path] = {}


_downloads_lock = threading.Lock()


def iter_remote(url: str, allow_private: bool) -> Iterator[str]:
    """List a downloaded archive's members under the URL, so refs say where they came from."""
    local = _download_archive(url, allow_private)
    inner = iter_zip(local) if archive_kind(local) == "zip" else iter_tar(local)
    for src in inner:
        yield f"{url}!{src.split('!', 1)[1]}"


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
    if is_url(archive):
        with _downloads_lock:
            local = _downloads.get(archive)
        if local is None:
            raise SourceError(f"{archive} is a remote archive that is not downloaded; "
                              "index the archive's URL again")
        return local
    return Path(archive)


def iter_zip(path: Path) -> Iterator[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = sorted(zf.infolist(), key=lambda i: i.filename)
    except (zipfile.BadZipFile, OSError) as e:
        raise SourceError(f"{path} is not a readable zip archive: {e}") from e
    for info in infos:
        if not info.is_dir() and _member_ok(info.filename):
            yield f"{path}!{info.filename}"


def iter_tar(path: Path) -> Iterator[str]:
    # Listing needs one pass over the data (a tar has no index), but nothing
    # is kept: members are read later, through _TarCursor.
    try:
        with tarfile.open(path, mode="r|*") as tf:
            for member in tf:
                if member.isfile() and _member_ok(member.name):
                    yield f"{path}!{member.name}"
    except (tarfile.TarError, OSError, EOFError) as e:
        raise SourceError(f"{path} is not a readable tar archive: {e}") from e


def split_archive_ref(ref: str) -> tuple[Path, str]:
    """Split ``"<archive>!<member>"`` into the archive's path and the member name.

    Archive and member names may contain "!" themselves; the archive part is
    the shortest prefix that ends in an archive suffix.

    >>> split_archive_ref("/data/a!b.zip!album/c!.jpg")
    (PosixPath('/data/a!b.zip'), 'album/c!.jpg')
    """
    match = ARCHIVE_REF.match(ref)
    if match is None:
        raise SourceError(f"{ref} is not of the form <archive>!<member>")
    return Path(match["archive"]), match["member"]


def read_member(ref: str, max_bytes: int) -> bytes:
    match = ARCHIVE_REF.match(ref)
    if match is None:
        raise SourceError(f"{ref} is not of the form <archive>!<member>")
    archive, member = _local_archive(match["archive"]), match["member"]
    if not archive.is_file():
        raise SourceError(f"no such archive: {archive}")
    try:
        if archive_kind(archive) == "zip":
            with zipfile.ZipFile(archive) as zf:
                info = zf.getinfo(member)
                if info.file_size > max_bytes:
                    raise too_large(ref, info.file_size, max_bytes)
                with zf.open(info) as f:
                    data = f.read(max_bytes + 1)  # the header's size may lie
        else:
            data = _read_tar_member(archive, member, ref, max_bytes)
    except KeyError as e:
        raise SourceError(f"{archive} has no member {member!r}") from e
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as e:
        raise SourceError(f"cannot read {ref}: {e}") from e
    if len(data) > max_bytes:
        raise too_large(ref, len(data), max_bytes)
    return data


_tar_cursors = threading.local()


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
                raise too_large(ref, info.size, max_bytes)
            fileobj = self.tar.extractfile(info) if info.isfile() else None
            if fileobj is None:
                break
            return fileobj.read(max_bytes + 1)
        raise KeyError(member)

    def close(self) -> None:
        self.tar.close()


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
