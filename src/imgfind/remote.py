"""Images on any fsspec filesystem: ``s3://bucket/photos/``, ``gs://...``, ``az://...``.

fsspec is the filesystem layer the Python data stack shares (pandas, Ray Data,
Dask): one URL form for object stores, HDFS, SFTP and the rest, each backend an
installable package (``s3fs``, ``gcsfs``, ``adlfs``). imgfind lists a prefix
with ``find`` and reads each object whole, bounded by the byte limit. An
object's size and modification time (from the listing) become its file facts,
so a re-run skips unchanged objects just as it skips unchanged local files.
http(s) URLs do not come here: they go through the bounded, SSRF-checked fetcher.

>>> is_remote("s3://bucket/photos/"), is_remote("https://example.com/a.jpg")
(True, False)
>>> list(iter_remote("s3://bucket/photos/"))[0].ref          # doctest: +SKIP
's3://bucket/photos/2019/beach.jpg'
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from .errors import ImageTooLarge, NotSupported, SourceError
from .imageio import has_image_name
from .sources import Source

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_NOT_FSSPEC = {"http", "https"}


def is_remote(target: object) -> bool:
    """True for a URL whose scheme is a filesystem (s3, gs, memory...), not http(s)."""
    m = _SCHEME.match(target) if isinstance(target, str) else None
    return m is not None and m.group(1).lower() not in _NOT_FSSPEC


def _fs(url: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError as e:  # pragma: no cover - fsspec comes with the base install
        raise NotSupported(f"reading {url} needs fsspec: pip install fsspec") from e
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as e:
        scheme = url.split("://", 1)[0]
        raise NotSupported(
            f"no filesystem for {scheme}:// URLs here ({e}); install its fsspec package "
            "(s3fs for s3://, gcsfs for gs://, adlfs for az://)") from e


def iter_remote(url: str, *, recursive: bool = True) -> Iterator[Source]:
    """Image objects under a prefix (by name, in path order), or the one object named."""
    fs, path = _fs(url)
    try:
        if not fs.isdir(path):
            info = fs.info(path)
            yield Source(ref=url, kind="remote", facts=_facts(fs, info))
            return
        found = fs.find(path, maxdepth=None if recursive else 1, detail=True)
    except FileNotFoundError as e:
        raise SourceError(f"{url} does not exist") from e
    except OSError as e:
        raise SourceError(f"cannot list {url}: {e}") from e
    for name in sorted(found):
        info = found[name]
        base = name.rsplit("/", 1)[-1]
        if info.get("type") == "directory" or base.startswith(".") or not has_image_name(base):
            continue
        yield Source(ref=fs.unstrip_protocol(name), kind="remote", facts=_facts(fs, info))


def folder_prefix(url: str) -> str | None:
    """The ref prefix every object under a remote folder shares; None if not a folder."""
    fs, path = _fs(url)
    try:
        return fs.unstrip_protocol(path).rstrip("/") + "/" if fs.isdir(path) else None
    except OSError:
        return None


def read(url: str, max_bytes: int) -> bytes:
    """The whole object, refused past ``max_bytes`` without reading on."""
    fs, path = _fs(url)
    try:
        with fs.open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError as e:
        raise SourceError(f"{url} does not exist (any more)") from e
    except OSError as e:
        raise SourceError(f"cannot read {url}: {e}") from e
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{url} is over the limit of {max_bytes:,} bytes; "
                            "shrink it or raise the byte limit")
    return data


def _facts(fs: Any, info: dict[str, Any]) -> dict[str, Any]:
    name = fs.unstrip_protocol(info["name"])
    base = name.rsplit("/", 1)[-1]
    facts: dict[str, Any] = {"path": name, "name": base, "dir": name[:-len(base) - 1],
                             "ext": base.rsplit(".", 1)[-1].lower() if "." in base else "",
                             "size": info.get("size")}
    mtime = _mtime(info)
    if mtime is not None:
        facts["mtime"] = mtime.isoformat(timespec="seconds").replace("+00:00", "Z")
        facts["mtime_ns"] = int(mtime.timestamp() * 1e9)
    return facts


def _mtime(info: dict[str, Any]) -> datetime | None:
    # each backend names it its own way: LastModified (s3), updated (gcs), mtime/created
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, tz=UTC)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
    return None


def unchanged(src: Source, mtime_ns: int | None, size: int | None) -> bool:
    """Whether a listed object still has the size and time stored for it."""
    facts = src.facts or {}
    return facts.get("mtime_ns") is not None and facts.get("mtime_ns") == mtime_ns \
        and facts.get("size") == size
