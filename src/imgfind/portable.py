"""Export a collection to one portable file, and import it elsewhere.

The file is a tar stream (``.tar``, or gzip-compressed when its name ends in
``.gz``/``.tgz``) laid out as docs/export-format.md describes: a manifest
with the collection's model, then chunks of at most :data:`CHUNK_ITEMS` items
(a JSON-lines file of item facts, an ``.npy`` of their vectors, their
thumbnails and stored originals), then a trailer with the item count. Both
directions stream chunk by chunk, so memory stays bounded whatever the size
of the collection (``python -m bench portable`` measures it).

Importing with the exported model restores ids, metadata, EXIF, file facts,
vectors, thumbnails and stored originals as they were. Importing into another
model embeds every image again with it, from the stored originals in the file
and from the files in place; if any of those cannot be read, the import is
refused before anything is written.

>>> import imgfind                                                   # doctest: +SKIP
>>> lib = imgfind.open()                                             # doctest: +SKIP
>>> export_collection(lib.collection("photos"), "photos.tar")        # doctest: +SKIP
{'items': 1532, 'chunks': 2, ...}
>>> import_collection(lib2, "photos.tar", name="photos-copy")        # doctest: +SKIP
{'items': 1532, 'collection': 'photos-copy', 'model': ..., 'reembedded': False}
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .errors import AlreadyExists, InvalidInput, SourceError
from .stores.base import CollectionInfo, Record

if TYPE_CHECKING:
    from .api import Collection, Library
    from .embedders.base import Embedder

__all__ = ["CHUNK_BYTES", "CHUNK_ITEMS", "FORMAT", "VERSION", "export_collection",
           "import_collection", "read_manifest"]

FORMAT = "imgfind-export"
VERSION = 1
MANIFEST = "imgfind-export.json"
TRAILER = "end.json"
#: A chunk closes at this many items, or once its thumbnails and originals pass CHUNK_BYTES.
CHUNK_ITEMS = 1000
CHUNK_BYTES = 64 << 20
#: Item fields written per item (and restored on import).
FIELDS = ("id", "source", "metadata", "exif", "file", "width", "height", "format", "sha256",
          "taken", "stored", "added", "updated")

ProgressCallback = Callable[[int, int | None], None]


def _writer(tmp: Path, name: str) -> tarfile.TarFile:
    """A streaming tar writer; gzip-compressed when ``name`` says so."""
    if name.endswith((".gz", ".tgz")):
        return tarfile.open(str(tmp), "w|gz")   # (3.11 stream mode needs a str name)
    return tarfile.open(str(tmp), "w|")


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
    # TarFile remembers every member it wrote (for getmembers): forget them, or memory
    # grows with the collection (measured: +40 MB per 100k items).
    tar.members.clear()  # type: ignore[attr-defined]  # not in typeshed


def export_collection(collection: Collection, path: str | Path, *,
                      progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Write every item of ``collection`` to the portable file ``path`` (replaced atomically).

    Returns ``{"items", "chunks", "bytes", "seconds"}``.
    """
    store = collection.store
    info = collection.info
    out = Path(path).expanduser()
    if out.is_dir():
        raise InvalidInput(f"{out} is a folder; give a file name such as photos.tar")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    t0 = time.time()
    total = store.count()
    n = chunks = 0
    try:
        with _writer(tmp, out.name) as tar:
            manifest = {"format": FORMAT, "version": VERSION, "imgfind": __version__,
                        "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
                        "collection": {"name": info.name, "model": info.model,
                                       "dim": info.dim, "model_path": info.model_path,
                                       "created": info.created},
                        "items": total, "chunk_items": CHUNK_ITEMS}
            _add(tar, MANIFEST, json.dumps(manifest, indent=2).encode(), t0)
            chunk = _ChunkWriter(tar, t0)
            for ids, vectors in store.all_vectors(batch=CHUNK_ITEMS):
                for item, vector in zip(store.get(ids), vectors):
                    if item is None:           # deleted while exporting
                        continue
                    chunk.add(item, vector, store.thumbnail(item.id), store.original(item.id))
                    n += 1
                    if chunk.full():
                        chunk.flush()
                chunk.flush()
                if progress:
                    progress(n, total)
            chunks = chunk.count
            _add(tar, TRAILER, json.dumps({"items": n, "chunks": chunks}).encode(), t0)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"items": n, "chunks": chunks, "bytes": out.stat().st_size,
            "seconds": round(time.time() - t0, 3)}


class _ChunkWriter:
    """Collects up to CHUNK_ITEMS items (or CHUNK_BYTES of blobs), then writes them."""

    def __init__(self, tar: tarfile.TarFile, mtime: float):
        self.tar, self.mtime = tar, mtime
        self.count = 0
        self._reset()

    def _reset(self) -> None:
        self.lines: list[bytes] = []
        self.vectors: list[np.ndarray] = []
        self.blobs: list[tuple[str, bytes]] = []
        self.size = 0

    def add(self, item: Any, vector: np.ndarray, thumb: bytes | None,
            orig: bytes | None) -> None:
        d = {k: getattr(item, k) for k in FIELDS}
        i = len(self.lines)
        d["thumbnail"] = f"thumbs/{i}.jpg" if thumb is not None else None
        d["original"] = f"originals/{i}" if orig is not None else None
        for name, data in ((d["thumbnail"], thumb), (d["original"], orig)):
            if name is not None and data is not None:
                self.blobs.append((name, data))
                self.size += len(data)
        self.lines.append(json.dumps(d, ensure_ascii=False).encode() + b"\n")
        self.vectors.append(vector)

    def full(self) -> bool:
        return len(self.lines) >= CHUNK_ITEMS or self.size >= CHUNK_BYTES

    def flush(self) -> None:
        if not self.lines:
            return
        prefix = f"chunks/{self.count:06d}"
        _add(self.tar, f"{prefix}/items.jsonl", b"".join(self.lines), self.mtime)
        buf = io.BytesIO()
        np.save(buf, np.stack(self.vectors).astype(np.float32, copy=False))
        _add(self.tar, f"{prefix}/vectors.npy", buf.getvalue(), self.mtime)
        for name, data in self.blobs:
            _add(self.tar, f"{prefix}/{name}", data, self.mtime)
        self.count += 1
        self._reset()


# -- reading ------------------------------------------------------------------

@dataclass
class _Chunk:
    items: list[dict[str, Any]]
    vectors: np.ndarray | None = None
    blobs: dict[str, bytes] = field(default_factory=dict)


def _chunks(path: Path) -> Iterator[tuple[dict[str, Any], _Chunk | None, dict[str, Any] | None]]:
    """Yield (manifest, chunk, None) per chunk, then (manifest, None, trailer)."""
    try:
        tar = tarfile.open(str(path), "r|*")
    except FileNotFoundError:
        raise SourceError(f"no such file: {path}") from None
    except (tarfile.TarError, OSError) as e:
        raise InvalidInput(f"{path} is not an imgfind export (not a tar file: {e})") from None
    with tar:
        manifest: dict[str, Any] | None = None
        current: _Chunk | None = None
        prefix = ""
        try:
            while (member := tar.next()) is not None:
                tar.members.clear()  # type: ignore[attr-defined]  # as in _add
                if not member.isfile():
                    continue
                f = tar.extractfile(member)
                data = f.read() if f is not None else b""
                name = member.name
                if manifest is None:
                    manifest = _manifest(name, data, path)
                    continue
                if name == TRAILER:
                    if current is not None:
                        yield manifest, current, None
                    yield manifest, None, json.loads(data)
                    return
                if name.endswith("/items.jsonl"):
                    if current is not None:
                        yield manifest, current, None
                    prefix = name[:-len("items.jsonl")]
                    current = _Chunk(items=[json.loads(line) for line in data.splitlines()
                                            if line.strip()])
                elif current is not None and name == prefix + "vectors.npy":
                    current.vectors = np.load(io.BytesIO(data), allow_pickle=False)
                elif current is not None and name.startswith(prefix):
                    current.blobs[name[len(prefix):]] = data
                else:
                    raise InvalidInput(f"{path}: unexpected member {name!r}")
        except (tarfile.TarError, EOFError, ValueError, OSError) as e:
            raise InvalidInput(f"{path} is damaged or truncated ({e}); export it again") \
                from None
        if manifest is None:
            raise InvalidInput(f"{path} is empty, not an imgfind export")
        raise InvalidInput(f"{path} is truncated (no {TRAILER}); export it again")


def _manifest(name: str, data: bytes, path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(data) if name == MANIFEST else None
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(f"{path} is not an imgfind export (no {MANIFEST} first)")
    if manifest.get("version") != VERSION:
        raise InvalidInput(f"{path} has export format version {manifest.get('version')!r}; "
                           f"this imgfind reads version {VERSION}: upgrade imgfind")
    return manifest


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of an export file (its collection, model and item count)."""
    for manifest, _, _ in _chunks(Path(path).expanduser()):
        return manifest
    raise InvalidInput(f"{path} is not an imgfind export")


def import_collection(library: Library, path: str | Path, *, name: str | None = None,
                      model: str | None = None, model_path: str | Path | None = None,
                      progress: ProgressCallback | None = None,
                      batch_size: int = 32) -> dict[str, Any]:
    """Create collection ``name`` (default: the exported name) from an export file.

    Without ``model``/``model_path``, or with the exported model, vectors come from
    the file. With another model, every image is embedded again (stored originals from
    the file, other images from their paths); if any cannot be read, ``SourceError``
    is raised before the collection is created. A failure part-way drops the new
    collection, so an import either completes or leaves nothing behind.
    """
    src = Path(path).expanduser()
    manifest = read_manifest(src)
    exported = manifest["collection"]
    name = name or exported["name"]
    if name in {c.name for c in library.collections()}:
        raise AlreadyExists(f"collection {name!r} already exists; import with --as NEW_NAME "
                            "or drop it first")
    from .library import _now

    embedder: Embedder | None = None
    info = CollectionInfo(name=name, model=exported["model"], dim=int(exported["dim"]),
                          model_path=exported.get("model_path"), created=_now())
    if model is not None or model_path is not None:
        folder = str(Path(model_path).expanduser().resolve()) if model_path else None
        emb = library.embedder(model if folder is None else None, folder)
        if (emb.name, emb.dim) != (info.model, info.dim):   # else the file's vectors are right
            _check_readable(src)
            embedder = emb
            info = CollectionInfo(name=name, model=emb.name, dim=emb.dim, model_path=folder,
                                  created=info.created)
    store = library.backend.create(info)
    total = int(manifest.get("items") or 0)
    n = 0
    try:
        for _, chunk, trailer in _chunks(src):
            if chunk is None:
                if trailer is None or trailer.get("items") != n:
                    raise InvalidInput(f"{src} holds {n} items but its trailer says "
                                       f"{(trailer or {}).get('items')}; export it again")
                break
            records = _records(chunk, src)
            if embedder is not None:
                _embed_again(embedder, records, library, batch_size)
            store.put(records)
            n += len(records)
            if progress:
                progress(n, total)
    except BaseException:
        library.drop_collection(name)
        raise
    return {"collection": name, "items": n, "model": info.model, "dim": info.dim,
            "reembedded": embedder is not None}


def _records(chunk: _Chunk, src: Path) -> list[Record]:
    if chunk.vectors is None or len(chunk.vectors) != len(chunk.items):
        raise InvalidInput(f"{src}: a chunk's vectors do not match its items; export it again")
    out = []
    for d, v in zip(chunk.items, chunk.vectors):
        thumb = chunk.blobs.get(d["thumbnail"]) if d.get("thumbnail") else None
        orig = chunk.blobs.get(d["original"]) if d.get("original") else None
        if d.get("original") and orig is None:
            raise InvalidInput(f"{src}: the original of item {d['id']!r} is missing")
        out.append(Record(id=d["id"], source=d["source"], vector=v,
                          metadata=d.get("metadata") or {}, exif=d.get("exif") or {},
                          file=d.get("file") or {}, width=d.get("width"),
                          height=d.get("height"), format=d.get("format"),
                          sha256=d.get("sha256"), taken=d.get("taken"), thumbnail=thumb,
                          original=orig))
    return out


def _check_readable(src: Path) -> None:
    """Refuse a re-embedding import up front when an image without a stored original is
    not readable here."""
    missing: list[str] = []
    count = 0
    for _, chunk, _ in _chunks(src):
        if chunk is None:
            break
        for d in chunk.items:
            if d.get("original"):
                continue
            ref = d["source"]
            readable = False
            if "!" in ref:
                readable = os.path.isfile(ref.split("!", 1)[0])
            elif not ref.startswith(("upload:", "http://", "https://")):
                readable = os.access(ref, os.R_OK) and os.path.isfile(ref)
            if not readable:
                count += 1
                if len(missing) < 5:
                    missing.append(ref)
    if count:
        raise SourceError(
            f"{count} images of this export are not stored in it and cannot be read here "
            f"(e.g. {', '.join(missing)}), so they cannot be embedded with another model; "
            "import with the exported model, or make those files reachable at the same paths")


def _embed_again(embedder: Embedder, records: list[Record], library: Library,
                 batch_size: int) -> None:
    from .reembed import image_pixels
    from .sources import Source, read_bytes

    pre = embedder.preprocessor()
    for i in range(0, len(records), batch_size):
        part = records[i:i + batch_size]
        arrays = []
        for r in part:
            def data(r: Record = r) -> bytes:
                if r.original is not None:
                    return r.original
                src = Source(ref=r.source, kind="archive") if "!" in r.source \
                    else Source(ref=r.source, kind="file")
                return read_bytes(src, max_bytes=library.limits.max_bytes)
            arrays.append(image_pixels(data(), embedder, pre, library.limits))
        vectors = embedder.embed_pixels(pre.finish(np.stack(arrays)))
        for r, v in zip(part, vectors):
            r.vector = v
