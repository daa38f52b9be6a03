"""The indexing pipeline: sources -> decode (threads) -> embed (batches) -> store.

Decoding and preprocessing run in a pool of threads while the model embeds
the previous batch, so the model does not wait on JPEG decoding. Threads, not
processes: Pillow and ONNX Runtime release the GIL for decoding, resizing,
encoding and inference, and threads cost no process start, no pickling of
pixels and no ``if __name__ == "__main__"`` guard in the caller's script. With
uint8 pixels and cheap thumbnails, that took indexing on 2 cores from 0.78 to
0.90 of the model's own throughput (``python -m bench pipeline``).

Decoding shares the cores with the model, so what counts is the CPU spent per
image outside it (the bench's phase table): for a 500x375 JPEG about 1 ms of
decoding and 2.1 ms for the model's bicubic resize, which must stay exactly the
reference's, then 0.9 ms for the thumbnail (made from that resize, not from the
photo: half the cost) and ~0.6 ms for everything else. 0.95 of a model that takes
~52 ms of CPU per image on 2 cores would leave 2.7 ms for all of it.

Each batch is committed in one store transaction: a crash loses at
most the batch in flight, and running ``add`` again picks up where it stopped
(unchanged files are skipped by size and mtime; a file whose mtime changed but
whose bytes did not keeps its vector and is not embedded again).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import sys
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import archives, imageio, metadata, remote, sources
from .embedders.base import Embedder, Preprocessor
from .errors import AlreadyExists, ImgfindError, InvalidInput
from .sources import Source
from .stores.base import CollectionStore, Record
from .types import IndexReport

ProgressCallback = Callable[[int, int | None], None]

def new_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class Prepared:
    """One decoded source, ready to embed: everything but the vector."""

    source: Source
    #: the preprocessor's compact ``pixels``; ``finish`` makes them model input
    pixels: np.ndarray
    sha256: str
    width: int
    height: int
    format: str
    exif: dict[str, Any]
    file: dict[str, Any]
    thumbnail: bytes
    original: bytes | None
    id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_record(self, vector: np.ndarray) -> Record:
        return Record(
            id=self.id or new_id(), source=self.source.ref, vector=vector,
            metadata=self.metadata, exif=self.exif, file=self.file, width=self.width,
            height=self.height, format=self.format, sha256=self.sha256,
            taken=self.exif.get("taken"), thumbnail=self.thumbnail, original=self.original,
        )


@dataclass(frozen=True)
class Failed:
    """A source that could not be prepared, and why."""

    source: str
    error: str
    code: str = "error"


@dataclass(frozen=True)
class PrepareJob:
    """Work for a decode thread: one source -> :class:`Prepared` or :class:`Failed`."""

    preprocessor: Preprocessor
    limits: imageio.Limits
    min_size: int | None
    fetch_timeout: float = 20.0
    allow_private_urls: bool = True

    def __call__(self, src: Source) -> Prepared | Failed:
        try:
            return prepare(src, self.preprocessor, limits=self.limits,
                           min_size=self.min_size, fetch_timeout=self.fetch_timeout,
                           allow_private_urls=self.allow_private_urls)
        except ImgfindError as e:
            return Failed(src.ref, e.message, e.code)
        except Exception as e:  # a decoder bug must fail one item, never the run
            return Failed(src.ref, f"{type(e).__name__}: {e}")


def prepare(src: Source, preprocessor: Preprocessor, *, limits: imageio.Limits = imageio.Limits(),
            min_size: int | None = None, fetch_timeout: float = 20.0,
            allow_private_urls: bool = True) -> Prepared:
    """Read, hash, decode and preprocess one source. Raises typed errors for bad input."""
    data = sources.read_bytes(src, max_bytes=limits.max_bytes, timeout=fetch_timeout,
                              allow_private=allow_private_urls)
    decoded = imageio.decode(data, limits=limits, min_size=min_size)
    facts = metadata.file_facts(src.ref) if src.kind == "file" else dict(src.facts or {})
    # the thumbnail comes from the model's resized picture when that is big enough
    pixels, preview = preprocessor.pixels_and_preview(decoded.image, imageio.THUMBNAIL_SIDE)
    return Prepared(
        source=src, pixels=pixels,
        sha256=hashlib.sha256(data).hexdigest(), width=decoded.width, height=decoded.height,
        format=decoded.format, exif=decoded.exif, file=facts,
        thumbnail=imageio.thumbnail(preview),
        original=None if src.kind == "file" else data, metadata=dict(src.metadata), id=src.id,
    )


def embed_prepared(embedder: Embedder, preprocessor: Preprocessor,
                   items: list[Prepared]) -> np.ndarray:
    """(N, dim) vectors for prepared items, in one batch."""
    return embedder.embed_pixels(preprocessor.finish(np.stack([p.pixels for p in items])))


def draft_size(embedder: Embedder) -> int | None:
    """Smallest side the model and the thumbnail need, so JPEG draft decoding can skip the
    rest. The thumbnail's side counts too: it is what galleries show and what duplicate
    finding proves edits on (a 32 px pHash model alone left 47 px thumbnails)."""
    size = getattr(embedder, "image_size", None)
    return max(int(size), imageio.THUMBNAIL_SIDE) if size else None


def default_workers() -> int:
    # Decoding takes ~4 ms of CPU per photo against ~50 ms for a ViT-B/32 on a
    # CPU, so a few threads keep any CPU fed; a GPU needs more of them.
    return max(2, min(8, os.cpu_count() or 2))


class Pipeline:
    """Runs sources through decode -> embed -> store, in order, with bounded memory.

    >>> report = Pipeline(store, embedder).run(sources.iter_sources("photos/"))  # doctest: +SKIP
    """

    def __init__(self, store: CollectionStore, embedder: Embedder, *,
                 limits: imageio.Limits = imageio.Limits(), batch_size: int = 32,
                 workers: int | None = None, allow_private_urls: bool = True):
        self.store = store
        self.embedder = embedder
        self.limits = limits
        self.batch_size = batch_size
        self.workers = default_workers() if workers is None else workers
        self.job = PrepareJob(embedder.preprocessor(), limits, draft_size(embedder),
                              allow_private_urls=allow_private_urls)

    def prepared(self, srcs: Iterable[Source], n: int | None) -> Iterator[Prepared | Failed]:
        """Yields prepare results in source order; a window keeps memory bounded."""
        if self.workers == 0 or n == 1:
            yield from map(self.job, srcs)
            return
        # one batch embedding while the next one (and a bit) is decoded
        window = 2 * self.batch_size + self.workers
        pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="imgfind-decode")
        try:
            pending: deque[cf.Future] = deque()
            for src in srcs:
                pending.append(pool.submit(self.job, src))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            # also on cancel or error: decode nothing more that nobody will use
            pool.shutdown(wait=True, cancel_futures=True)

    def run(self, srcs: Iterable[Source], *, total: int | None = None,
            ids: dict[str, str] | None = None, skip_duplicates: bool = False,
            progress: ProgressCallback | None = None,
            cancel: threading.Event | None = None) -> IndexReport:
        """Index ``srcs``; ``ids`` maps a source ref to the id it must keep (re-indexed files)."""
        writer = Writer(self.store, ids=ids, skip_duplicates=skip_duplicates)
        batch: list[Prepared] = []

        def flush() -> None:
            if batch:
                writer.put(batch, embed_prepared(self.embedder, self.job.preprocessor, batch))
                batch.clear()

        for done, result in enumerate(self.prepared(srcs, total), 1):
            if isinstance(result, Failed):
                writer.fail(result)
            elif writer.admit(result):  # duplicates are dropped before the model sees them
                batch.append(result)
                if len(batch) >= self.batch_size:
                    flush()
            if progress:
                progress(done, total)
            if cancel is not None and cancel.is_set():
                break
        flush()
        return writer.report


class Writer:
    """The store side of indexing, shared by every executor (threads here, Ray actors).

    ``admit`` gives a prepared item its id, drops exact duplicates and re-stores a re-read
    file whose bytes did not change with its old vector (no embedding); ``put``
    commits one batch in one store transaction; ``fail`` records a failed source.
    Whoever embeds, the report and the stored rows come out the same.
    """

    def __init__(self, store: CollectionStore, *, ids: dict[str, str] | None = None,
                 skip_duplicates: bool = False):
        self.store = store
        self.ids = ids or {}
        self.skip_duplicates = skip_duplicates
        self.report = IndexReport()
        self._seen_sha: set[str] = set()

    def admit(self, p: Prepared) -> bool:
        """Whether ``p`` needs embedding (and then :meth:`put`)."""
        if p.source.ref in self.ids:
            p.id = self.ids[p.source.ref]
            stored = self.store.get([p.id])[0]
            if stored is not None:
                # user metadata set since the last run survives a re-read of the file
                p.metadata = {**stored.metadata, **p.metadata}
                if stored.sha256 == p.sha256:  # touched, not changed: keep the vector
                    self.store.put([p.to_record(self.store.vectors([p.id])[0])])
                    self.report.skipped += 1
                    return False
            return True
        if self.skip_duplicates and (
                p.sha256 in self._seen_sha or self.store.by_sha256([p.sha256])):
            self.report.duplicates += 1
            return False
        self._seen_sha.add(p.sha256)
        return True

    def fail(self, f: Failed) -> None:
        self.report.errors.append({"source": f.source, "error": f.error, "code": f.code})

    def put(self, items: list[Prepared], vectors: np.ndarray) -> None:
        records = [p.to_record(v) for p, v in zip(items, vectors)]
        self.store.put(records)
        for p, r in zip(items, records):
            self.report.ids.append(r.id)
            if p.source.ref in self.ids:
                self.report.updated += 1
            else:
                self.report.indexed += 1


class Executor(Protocol):
    """Runs planned sources through decode + embed and writes them with a :class:`Writer`.

    Every executor gives the same rows and the same report for the same sources.
    """

    def run(self, pipeline: Pipeline, srcs: list[Source], *, ids: dict[str, str],
            skip_duplicates: bool, progress: ProgressCallback | None,
            cancel: threading.Event | None) -> IndexReport: ...


class LocalExecutor:
    """Decode in this process's threads, embed in batches here (the default)."""

    def run(self, pipeline: Pipeline, srcs: list[Source], *, ids: dict[str, str],
            skip_duplicates: bool, progress: ProgressCallback | None,
            cancel: threading.Event | None) -> IndexReport:
        return pipeline.run(srcs, total=len(srcs), ids=ids, skip_duplicates=skip_duplicates,
                            progress=progress, cancel=cancel)


def index(store: CollectionStore, embedder: Embedder, targets: Iterable[str | Path], *,
          recursive: bool = True, skip_duplicates: bool = True, remove_missing: bool = True,
          limits: imageio.Limits = imageio.Limits(), workers: int | None = None,
          batch_size: int = 32, progress: ProgressCallback | None = None,
          cancel: threading.Event | None = None, show_progress: bool | None = None,
          allow_private_urls: bool = True, executor: Executor | None = None) -> IndexReport:
    """Index folders, files, globs, URLs, CSVs or archives; only new or changed files are work.

    The plan (what is new, changed or gone) is made here against the store;
    ``executor`` runs the decode + embed work (default: this process's threads,
    see :mod:`imgfind.ray_pipeline` for a Ray cluster).

    >>> index(store, embedder, ["~/Pictures"])  # doctest: +SKIP
    IndexReport(indexed=1532, updated=0, skipped=0, removed=0, errors=[])
    """
    pipeline = Pipeline(store, embedder, limits=limits, batch_size=batch_size, workers=workers,
                        allow_private_urls=allow_private_urls)
    todo: list[Source] = []
    keep_ids: dict[str, str] = {}
    report = IndexReport()
    claimed: dict[str, str] = {}  # item id asked for by a source (CSV id column) -> its ref

    def ignored(ref: str, reason: str) -> None:
        report.ignored.append({"source": ref, "reason": reason})

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    try:
        for target in targets:
            target = os.path.expanduser(str(target))
            prefix = remote.folder_prefix(target) if remote.is_remote(target) else \
                _folder_prefix(target) if os.path.isdir(target) else None
            is_folder = prefix is not None
            known = store.source_states(prefix) if prefix is not None else {}
            walked: set[str] = set()
            for src in sources.iter_sources(target, recursive=recursive, on_ignored=ignored,
                                            allow_private=allow_private_urls):
                if cancelled():
                    break
                walked.add(src.ref)
                state = known.get(src.ref) or (
                    None if is_folder else store.source_states(src.ref).get(src.ref))
                if src.id is not None and (problem := _id_conflict(store, src, state, claimed)):
                    report.errors.append({"source": src.ref, "error": problem.message,
                                          "code": problem.code})
                    continue
                if state is None:
                    todo.append(src)
                    continue
                if src.kind == "file" and _unchanged(src.ref, state.mtime_ns, state.size) or \
                        src.kind == "remote" and remote.unchanged(src, state.mtime_ns,
                                                                  state.size):
                    report.skipped += 1
                    continue
                if src.kind in ("url", "archive") and not src.metadata:
                    report.skipped += 1  # already fetched once; re-add explicitly to refresh
                    continue
                keep_ids[src.ref] = state.id
                todo.append(src)
            if cancelled():
                return report  # a partial walk must not remove anything
            if is_folder and remove_missing:
                # only what is gone: a local file indexed on its own, hidden, or under a
                # folder --no-recursive did not walk is still on disk and keeps its item
                gone = [s.id for ref, s in known.items()
                        if ref not in walked and not _still_there(ref)]
                if gone:
                    report.removed += sum(store.delete(gone))
        if show_progress is None:
            show_progress = sys.stderr.isatty()
        work: Executor = executor or LocalExecutor()

        def run_all(tick: ProgressCallback | None) -> IndexReport:
            return work.run(pipeline, todo, ids=keep_ids, skip_duplicates=skip_duplicates,
                            progress=tick, cancel=cancel)

        run = _with_bar(run_all, len(todo), progress) if show_progress else run_all(progress)
    finally:
        archives.release_downloads()
    run.skipped += report.skipped
    run.removed += report.removed
    run.errors[:0] = report.errors
    run.ignored = report.ignored
    return run


def _id_conflict(store: CollectionStore, src: Source, state: Any,
                 claimed: dict[str, str]) -> ImgfindError | None:
    """Why a source's own id (a CSV ``id`` column) cannot be used, or None."""
    item_id = src.id
    if not isinstance(item_id, str) or not item_id or len(item_id) > 200:
        return InvalidInput(f"id must be a non-empty string of at most 200 characters, "
                            f"got {item_id!r}")
    if state is not None and state.id != item_id:
        return AlreadyExists(f"{src.ref} is already indexed as id {state.id!r}, "
                             f"not {item_id!r}")
    if claimed.setdefault(item_id, src.ref) != src.ref:
        return AlreadyExists(f"id {item_id!r} is given twice (also to {claimed[item_id]})")
    if state is None:
        other = store.get([item_id])[0]
        if other is not None and other.source != src.ref:
            return AlreadyExists(f"id {item_id!r} already belongs to the item of "
                                 f"{other.source}")
    return None


def _still_there(ref: str) -> bool:
    """Whether an indexed local file (or the archive holding a member) is still on disk;
    remote objects are judged by their listing alone."""
    if remote.is_remote(ref):
        return False
    try:
        path = archives.split_archive_ref(ref)[0] if "!" in ref else Path(ref)
    except ImgfindError:
        path = Path(ref)
    return path.exists()


def _with_bar(run_all: Callable[[ProgressCallback], IndexReport], total: int,
              progress: ProgressCallback | None) -> IndexReport:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("indexing"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                  transient=False) as bar:
        task = bar.add_task("index", total=total, rate="")

        def tick(done: int, total: int | None) -> None:
            elapsed = bar.tasks[0].elapsed or 0
            bar.update(task, completed=done,
                       rate=f"{done / elapsed:.1f} img/s" if elapsed > 0 else "")
            if progress:
                progress(done, total)

        return run_all(tick)


def _folder_prefix(folder: str) -> str:
    return os.path.join(os.path.abspath(folder), "")


def _unchanged(path: str, mtime_ns: int | None, size: int | None) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_mtime_ns == mtime_ns and st.st_size == size
