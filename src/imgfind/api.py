"""The public library API: open a Library, get a Collection, index and search.

>>> import imgfind
>>> lib = imgfind.open("~/.imgfind")                               # doctest: +SKIP
>>> photos = lib.create_collection("photos", model_path="models/clip")  # doctest: +SKIP
>>> photos.add("~/Pictures")                                       # doctest: +SKIP
IndexReport(indexed=1532, updated=0, skipped=0, removed=0, errors=[])
>>> for hit in photos.search("a dog running on a beach", k=3):   # doctest: +SKIP
...     print(f"{hit.score:.3f} {hit.source}")
"""

from __future__ import annotations

import builtins
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from . import imageio, writes
from .embedders.base import Embedder, l2_normalize
from .errors import (
    ImgfindError,
    InvalidArgument,
    InvalidInput,
    ModelMismatch,
    NotFound,
    NotSupported,
    SourceError,
)
from .interface import ImageLike, QueryLike, SingleItemCalls
from .interface import typed_calls as _typed_calls
from .library import DEFAULT_HOME, Library, default_home, open
from .query import ListSort, Mode, Query, Sort, check_sort, text_example
from .search import run_queries
from .stores.base import CollectionInfo, CollectionStore
from .types import DuplicateGroup, Hit, IndexReport, Item, ReembedReport, Result
from .writes import check_ids, check_meta

__all__ = ["DEFAULT_HOME", "Collection", "Library", "default_home", "open"]

if TYPE_CHECKING:  # the pipeline is imported on first write: searches start faster
    from . import indexer
    from .ray_pipeline import RayOptions
    from .review import ResolveReport

@_typed_calls
class Collection(SingleItemCalls):
    """Images embedded with one model, with their metadata; search them any way.

    >>> col = imgfind.open().collection("default")                # doctest: +SKIP
    >>> item_id = col.insert("cat.jpg", metadata={"pet": "cat"})    # doctest: +SKIP
    >>> col.search("a sleeping cat", k=5, where={"pet": "cat"})    # doctest: +SKIP
    """

    def __init__(self, library: Library, store: CollectionStore,
                 embedder: Embedder | None = None):
        self.library = library
        self.store = store
        self._embedder = embedder

    # -- identity ---------------------------------------------------------
    @property
    def info(self) -> CollectionInfo:
        return self.store.info

    @property
    def name(self) -> str:
        return self.store.info.name

    @property
    def model(self) -> str:
        return self.store.info.model

    @property
    def dim(self) -> int:
        return self.store.info.dim

    @property
    def ocr(self) -> bool:
        """Whether this collection reads the text inside its images."""
        return self.store.info.ocr

    def run_ocr(self, *, limit: int | None = None, workers: int | None = None,
                progress: Any = None, stop: Any = None) -> Any:
        """Read the text in every item OCR has not read yet (resumable; see
        :func:`imgfind.ocr.run_pass`); returns an :class:`imgfind.ocr.OcrReport`.

        >>> col.run_ocr().read                                       # doctest: +SKIP
        12
        """
        from . import ocr as ocr_mod
        self._need_ocr()
        return ocr_mod.run_pass(self, limit=limit, workers=workers, progress=progress,
                                stop=stop)

    def ocr_status(self) -> dict[str, Any]:
        """``{"enabled": bool, "done": n, "pending": n, "with_text": n}``."""
        if not self.ocr:
            return {"enabled": False, "done": 0, "pending": 0, "with_text": 0}
        self._need_ocr()
        return {"enabled": True, **self.store.ocr_progress()}  # type: ignore[attr-defined]

    def _need_ocr(self) -> None:
        if not self.ocr:
            raise InvalidInput(f"collection {self.name!r} was created without OCR; create "
                               "one with ocr=True (imgfind create NAME --ocr)")
        if not hasattr(self.store, "set_ocr"):
            raise NotSupported(f"the store of collection {self.name!r} keeps no OCR text")

    @property
    def embedder(self) -> Embedder:
        """The collection's model, loaded on first use (reads need none)."""
        if self._embedder is None or self._embedder.name != self.info.model:
            info = self.info      # (a re-embed may have switched the model since)
            model, path = self._model_source()
            emb = self.library.embedder(model, path, dim=info.dim)
            if emb.name != info.model or emb.dim != info.dim:
                raise ModelMismatch(
                    f"collection {info.name!r} was built with model {info.model!r} "
                    f"({info.dim}-d), but {emb.name!r} ({emb.dim}-d) was loaded; pass the "
                    f"folder of {info.model!r} with --model-path / IMGFIND_MODEL_PATH")
            self._embedder = emb
        return self._embedder

    def _model_source(self) -> tuple[str | None, str | None]:
        """(model name, model folder) to load this collection's model from."""
        info = self.info
        path = info.model_path if info.model_path and os.path.isdir(info.model_path) else None
        if path is None and self.library.model_path and info.model != "phash":
            path = self.library.model_path
        return (None if path else info.model), path

    def __repr__(self) -> str:
        return f"<Collection {self.name!r} model={self.model!r} dim={self.dim}>"

    def __len__(self) -> int:
        return self.count()

    # -- writes -----------------------------------------------------------
    def insert_batch(self, items: Iterable[ImageLike | dict[str, Any]], *,
                     keep_duplicates: bool = False) -> list[Result]:
        """Insert many images; one ``Result(id, error)`` per item, in order.

        An item is an image, or a dict ``{"image": ..., "metadata": {...}, "id": "...",
        "name": "cat.jpg"}``. A bad item fails alone; the others are stored. An
        item whose bytes are already stored (or earlier in the batch) is not
        stored again: its result carries the existing id and ``duplicate=True``,
        unless ``keep_duplicates`` or the item names an id of its own.
        """
        entries = [it if isinstance(it, dict) else {"image": it} for it in items]
        return self._write(entries, replace_only=False, keep_duplicates=keep_duplicates)

    def update_batch(self, items: Iterable[dict[str, Any]]) -> list[Result]:
        """Update many items: dicts with ``id`` and ``image`` and/or ``metadata``."""
        return writes.update_batch(self, items)

    def set_metadata(self, id: str, metadata: dict[str, Any], *, merge: bool = False) -> Item:
        """Replace (or merge into) the user metadata of one item."""
        self.store.set_metadata(id, check_meta(metadata), merge=merge)
        return self.get(id)

    def delete(self, id: str) -> None:
        """Delete one item; ``NotFound`` if it does not exist."""
        if not self.store.delete([id])[0]:
            raise NotFound(f"no item {id!r} in collection {self.name!r}")

    def delete_batch(self, ids: Sequence[str]) -> list[Result]:
        """Delete many items; one Result per id (``error`` for ids that did not exist)."""
        ids = check_ids(ids)
        found = self.store.delete(ids)
        return [Result(id=i) if ok else Result(id=i, error=f"no item {i!r}")
                for i, ok in zip(ids, found)]

    def clear(self) -> int:
        """Delete every item; returns how many were deleted."""
        return self.store.clear()

    def add(self, *targets: str | Path, recursive: bool = True, skip_duplicates: bool = True,
            remove_missing: bool = True, workers: int | None = None, batch_size: int = 32,
            progress: indexer.ProgressCallback | None = None,
            cancel: threading.Event | None = None,
            show_progress: bool | None = None,
            executor: str | RayOptions | None = None) -> IndexReport:
        """Index folders, files, globs, http(s) URLs, CSVs or archives.

        Re-running only touches new or changed files and removes files gone
        from an indexed folder. Exact duplicates (same bytes) are skipped
        unless ``skip_duplicates=False``. A progress bar shows on a terminal.
        ``executor="ray"`` (or a :class:`~imgfind.ray_pipeline.RayOptions`)
        decodes and embeds on a Ray cluster instead of this process's threads;
        the result is the same.

        >>> col.add("~/Pictures", "extra.csv")                   # doctest: +SKIP
        IndexReport(indexed=1532, updated=3, skipped=20, removed=1, errors=[])
        >>> col.add("~/Pictures", executor="ray")                # doctest: +SKIP
        """
        if not targets:
            raise InvalidInput("add() needs at least one folder, file, glob, URL or CSV")
        for t in targets:
            if not isinstance(t, (str, Path)):
                raise InvalidArgument(f"add() takes folders, files, globs, URLs or CSVs as str "
                                      f"or Path, not {type(t).__name__}")
        from . import indexer

        run_on = self._executor(executor, batch_size)

        from .reembed import StagingWrites

        # While a re-embed runs, what this run writes is embedded with its model too.
        store = StagingWrites.wrap(self.store, self._stage)
        return indexer.index(store, self.embedder, targets, recursive=recursive,
                             skip_duplicates=skip_duplicates, remove_missing=remove_missing,
                             limits=self.library.limits, workers=workers,
                             batch_size=batch_size, progress=progress, cancel=cancel,
                             show_progress=show_progress,
                             allow_private_urls=self.library.allow_private_urls,
                             executor=run_on)

    def _executor(self, executor: str | RayOptions | None,
                  batch_size: int) -> indexer.Executor | None:
        if executor is None or executor == "local":
            return None
        if executor != "ray" and type(executor).__name__ != "RayOptions":
            raise InvalidInput(f"executor must be 'local', 'ray' or RayOptions, not {executor!r}")
        from .ray_pipeline import EmbedderSpec, RayExecutor, RayOptions

        options = executor if isinstance(executor, RayOptions) else RayOptions(
            batch_size=batch_size)
        model, path = self._model_source()
        return RayExecutor(options, EmbedderSpec(
            model=model, model_path=path, dim=self.dim, limits=self.library.limits,
            allow_private_urls=self.library.allow_private_urls))

    # -- reads ------------------------------------------------------------
    def get(self, id: str) -> Item:
        """Everything known about one item; ``NotFound`` if absent."""
        item = self.store.get([id])[0]
        if item is None:
            raise NotFound(f"no item {id!r} in collection {self.name!r}")
        return item

    def get_many(self, ids: Sequence[str]) -> list[Item | None]:
        return self.store.get(check_ids(ids))

    def items(self, where: dict | None = None, limit: int = 100, offset: int = 0, *,
              sort: ListSort | None = None) -> list[Item]:
        """Items in insertion order, or by date with ``sort`` (``"-taken"``: newest first
        by date taken, falling back to date added, as a gallery shows them; also
        ``taken``, ``added``, ``-added``), optionally filtered, for listing and paging.

        >>> col.items(limit=50, sort="-taken")                   # doctest: +SKIP
        """
        for name, value in (("limit", limit), ("offset", offset)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidArgument(f"{name} must be a non-negative integer, got {value!r}")
        if sort is None:
            ids = self.store.ids(where, limit=limit, offset=offset)
        else:
            ids = self.store.ids(where, limit=limit, offset=offset,
                                 sort=check_sort(sort, listing=True))
        return [it for it in self.store.get(ids) if it is not None]

    def image(self, id: str) -> bytes:
        """The original image bytes (stored copy, or the file read from disk)."""
        data = self.store.original(id)
        if data is not None:
            return data
        item = self.get(id)
        try:
            with builtins.open(item.source, "rb") as f:
                return f.read()
        except OSError as e:
            raise SourceError(f"the file of item {id!r} cannot be read ({item.source}): "
                              f"{e.strerror}; re-index its folder to refresh") from None

    def thumbnail(self, id: str) -> bytes:
        """A small JPEG preview of the item (longest side 256 px)."""
        data = self.store.thumbnail(id)
        if data is None:
            raise NotFound(f"no item {id!r} in collection {self.name!r}")
        return data

    def vector(self, id: str) -> np.ndarray:
        """The stored unit vector of one item."""
        return self.store.vectors([id])[0]

    def count(self, where: dict | None = None) -> int:
        return self.store.count(where)

    # -- search -----------------------------------------------------------
    def search(self, query: QueryLike | Query | dict[str, Any] | None = None, k: int = 10,
               where: dict | None = None, *, like: str | Sequence[str] | None = None,
               positive: Sequence[Any] | None = None, negative: Sequence[Any] | None = None,
               weights: Sequence[float] | None = None, min_score: float | None = None,
               sort: Sort = "score", mode: Mode | None = None) -> list[Hit]:
        """Top-``k`` items nearest to a text, an image (path, URL, bytes, PIL), a vector,
        or existing items (``like=id`` or a list of ids), optionally restricted by ``where``.

        ``positive`` / ``negative`` add examples (each text, image, vector or
        ``{"like": id}``) combined as ``normalise(sum w*pos - sum w*neg)`` with ``weights``
        (default 1 per positive, 0.5 per negative). ``min_score`` drops hits below that
        cosine similarity; ``sort`` orders the hits by ``score`` or by date (``taken``,
        ``-taken``, ``added``, ``-added``); ``mode`` ranks a text by ``vector``, full
        ``text`` or ``hybrid`` (reciprocal-rank fusion; the default for text). A
        :class:`~imgfind.query.Query` may be passed instead of all of these.
        See docs/search.md.

        >>> col.search("a dog on a beach", k=5, min_score=0.2)          # doctest: +SKIP
        >>> col.search(Path("query.jpg"), where={"taken": {"$gte": "2020-01-01"}})  # doctest: +SKIP
        >>> col.search("beach", positive=["sunset"], negative=["people"],
        ...            sort="-taken")                               # doctest: +SKIP
        >>> col.search(like="3f9c0e1d2a4b5c6d")                  # doctest: +SKIP
        """
        if isinstance(query, Query):
            if (k, where, like, positive, negative, weights, min_score, sort, mode) != (
                    10, None, None, None, None, None, None, "score", None):
                raise InvalidInput("pass a Query on its own, without other search arguments")
            return self.run([query])[0]
        return self.run([Query.build(query, like=like, positive=positive, negative=negative,
                                     weights=weights, k=k, where=where, min_score=min_score,
                                     sort=sort, mode=mode)])[0]

    def search_batch(self, queries: Sequence[QueryLike | Query | dict[str, Any]], k: int = 10,
                     where: dict | None = None, *, min_score: float | None = None,
                     sort: Sort = "score", mode: Mode | None = None) -> list[list[Hit]]:
        """Run many queries at once (texts and images are embedded in batches); the other
        arguments apply to each query, as in :meth:`search`."""
        if isinstance(queries, (str, bytes)) or not isinstance(queries, Sequence):
            raise InvalidArgument("search_batch() takes a list of queries; for one query "
                                  "use search()")
        return self.run([q if isinstance(q, Query) else
                         Query.build(q, k=k, where=where, min_score=min_score, sort=sort,
                                     mode=mode) for q in queries])

    def text_search(self, q: str, k: int = 10, where: dict | None = None, *,
                    sort: Sort = "score") -> list[Hit]:
        """Full-text search over path, user metadata and EXIF (not the pixels); scores are
        full-text relevance (higher is better), not cosine.

        >>> col.text_search("canon 2019")                       # doctest: +SKIP
        """
        return self.run([Query.of([text_example(q)], k=k, where=where, sort=sort,
                                  mode="text")])[0]

    def run(self, queries: Sequence[Query]) -> list[list[Hit]]:
        """Answer validated queries (see :mod:`imgfind.query`); one list of hits each."""
        model = self.model
        try:
            return run_queries(self, list(queries))
        except ModelMismatch:
            if self.model == model:
                raise
            # A re-embed switched the model while the queries were embedded: once more.
            return run_queries(self, list(queries))

    def duplicates(self, threshold: float = 0.95) -> list[DuplicateGroup]:
        """Groups of exact copies (same bytes) and of near-duplicates (cosine >= threshold).

        >>> for g in col.duplicates(0.97): print(g.exact, g.ids)  # doctest: +SKIP
        """
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) \
                or not 0 < threshold <= 1:
            raise InvalidInput(f"threshold must be a number in (0, 1], got {threshold!r}")
        from .duplicates import find_groups
        return find_groups(self.store, threshold)

    def resolve_duplicates(self, groups: Sequence[Any] | None = None, *,
                           threshold: float = 0.95, tiers: Sequence[str] | None = None,
                           dry_run: bool = True, expect: int | None = None) -> ResolveReport:
        """Keep one image per duplicate group, delete the others; a dry run by default.

        ``groups``: ``[{"keep": id, "ids": [...]}, ...]`` (or ``DuplicateGroup``s, keeping
        each first member); ``None`` resolves every group of ``tiers`` (default exact and
        near) at ``threshold``, keeping each group's likely original. ``expect`` (the dry
        run's count) refuses a real run whose count changed. See :mod:`imgfind.review`.

        >>> col.resolve_duplicates().count                       # doctest: +SKIP
        12
        """
        from .review import resolve
        return resolve(self, groups, threshold=threshold, tiers=tiers, dry_run=dry_run,
                       expect=expect)

    def check(self) -> dict[str, Any]:
        """Health of the store and its vector index: ``{"ok": bool, ...}``."""
        return self.store.check()

    def index_info(self) -> dict[str, Any]:
        """The vector index in brief (kind, size, settings); cheap, unlike ``check()``."""
        return self.store.index_info()

    def rebuild(self) -> dict[str, Any]:
        """Rebuild the derived indexes (vectors, full text) from the stored rows."""
        return self.store.rebuild()

    def reembed(self, model: str | None = None, *, model_path: str | Path | None = None,
                batch_size: int = 32, workers: int | None = None,
                progress: indexer.ProgressCallback | None = None,
                cancel: threading.Event | None = None,
                delete_unreadable: bool = False) -> ReembedReport:
        """Switch the collection to another model without downtime (see :mod:`imgfind.reembed`).

        New vectors are built beside the old ones while searches keep using the
        old model, then one transaction switches. Resumes after an interruption.

        >>> col.reembed(model_path="models/bigger-clip")                # doctest: +SKIP
        ReembedReport(model='bigger-clip', dim=768, switched=True, ...)
        """
        from .reembed import reembed

        path = str(Path(model_path).expanduser().resolve()) if model_path else None
        if model is None and path is None:
            raise InvalidInput("reembed needs a model name or a model folder (model_path)")
        emb = self.library.embedder(model if path is None else None, path)
        report = reembed(self.store, emb, model_path=path, limits=self.library.limits,
                         batch_size=batch_size, workers=workers, progress=progress,
                         cancel=cancel, delete_unreadable=delete_unreadable,
                         allow_private_urls=self.library.allow_private_urls)
        if report.switched:
            self._embedder = emb
        return report

    def _stage(self, ids: list[str]) -> None:
        """While a re-embed runs, embed what was just written with its model too."""
        from .reembed import stage_written

        try:
            stage_written(self.store, self.library.embedder, ids, limits=self.library.limits,
                          allow_private_urls=self.library.allow_private_urls)
        except ImgfindError:   # best effort: the re-embed's next pass embeds them
            pass

    def reembed_status(self) -> dict[str, Any] | None:
        """The re-embed in progress (model, dim, staged, total), or None."""
        from .reembed import staging_store

        state = staging_store(self.store).staging()
        return None if state is None else asdict(state)

    def abort_reembed(self) -> bool:
        """Drop the vectors of an unfinished re-embed; False if none was in progress."""
        from .reembed import staging_store

        return staging_store(self.store).abort_staging()

    # -- internals --------------------------------------------------------
    def _hits(self, pairs: list[tuple[str, float]]) -> list[Hit]:
        items = self.store.get([i for i, _ in pairs])
        return [Hit(id=i, score=float(s), item=it)
                for (i, s), it in zip(pairs, items) if it is not None]

    def _load_query_image(self, value: Any) -> Image.Image:
        if isinstance(value, str) and value[:8].lower().startswith(("http://", "https://")):
            from . import fetch  # (socket and the URL checks load only for a URL)

            value = fetch.fetch_url(value, max_bytes=self.library.limits.max_bytes,
                                      allow_private=self.library.allow_private_urls)
        return imageio.load_image(value, limits=self.library.limits)

    def _check_vector(self, v: Any) -> np.ndarray:
        arr = np.asarray(v, dtype=np.float32).reshape(-1)
        if arr.shape[0] != self.dim:
            raise ModelMismatch(f"vector has {arr.shape[0]} dimensions; collection "
                                f"{self.name!r} ({self.model}) uses {self.dim}")
        if not np.all(np.isfinite(arr)) or not np.any(arr):
            raise InvalidInput("vector must be finite and non-zero")
        return l2_normalize(arr)

    def _write(self, entries: list[dict[str, Any]], *, replace_only: bool,
               keep_duplicates: bool = True) -> list[Result]:
        """Prepare, embed and store entries; per-item errors never fail the batch."""
        return writes.write(self, entries, replace_only=replace_only,
                            keep_duplicates=keep_duplicates)
