"""Change a collection's model without downtime.

:func:`reembed` builds the new model's vectors beside the old ones (any
dimension), from the files in place and from stored originals, in committed
batches; searches keep using the old vectors the whole time. Once every item
has a current new vector, the store switches in one transaction
(:meth:`~imgfind.stores.base.StagingStore.commit_staging`): the old vectors go,
ids, metadata, thumbnails and stored originals stay.

Kill it at any moment and run it again: it resumes with the items not yet
staged. Items added or changed while it runs are embedded with both models by
their writer (``insert``/``update``, ``index``, ``watch`` and the server's
writes: :func:`stage_written`, :class:`StagingWrites`), and the store marks a
staged vector stale when its item is written again; whatever a writer did not
stage (a re-embed started during its run, an image it could not read twice)
the re-embed's next pass embeds. The switch only happens in a transaction that
finds no item without a current staged vector, so nothing is missing after it.

>>> import imgfind                                                   # doctest: +SKIP
>>> col = imgfind.open().collection("photos")                        # doctest: +SKIP
>>> col.reembed(model="MobileCLIP-B__datacompdr")                    # doctest: +SKIP
ReembedReport(model='MobileCLIP-B__datacompdr', dim=512, switched=True, ...)
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from . import archives, imageio, sources
from .embedders.base import Embedder, Preprocessor
from .errors import ImgfindError, InvalidInput, NotSupported, StoreError
from .stores.base import CollectionInfo, CollectionStore, StagingStore, StagingTask
from .types import ReembedReport

__all__ = ["ReembedReport", "StagingWrites", "image_pixels", "reembed", "stage_written",
           "staging_store"]

ProgressCallback = Callable[[int, int | None], None]
#: Passes over items written during the re-embed before giving up on a switch.
MAX_PASSES = 50


def staging_store(store: CollectionStore) -> StagingStore:
    """The store as a :class:`StagingStore`, or ``NotSupported`` naming its backend."""
    if not isinstance(store, StagingStore):
        raise NotSupported(f"the {type(store).__name__} backend cannot re-embed a collection "
                           "in place; export it and import it into a new collection with the "
                           "other model instead")
    return store


def reembed(store: CollectionStore, embedder: Embedder, *, model_path: str | None = None,
            limits: imageio.Limits = imageio.Limits(), batch_size: int = 32,
            workers: int | None = None, progress: ProgressCallback | None = None,
            cancel: threading.Event | None = None, delete_unreadable: bool = False,
            allow_private_urls: bool = True) -> ReembedReport:
    """Embed every item of ``store`` with ``embedder`` beside the live vectors, then switch.

    Items whose image cannot be read (file gone, unreachable) are reported in
    ``errors`` and block the switch, unless ``delete_unreadable`` deletes them
    at the switch. ``cancel`` stops after the batch in flight (the work is kept).
    """
    st = staging_store(store)
    info = store.info
    report = ReembedReport(model=embedder.name, dim=embedder.dim, previous_model=info.model)
    current = st.staging()
    if current is None and (info.model, info.dim) == (embedder.name, embedder.dim):
        raise InvalidInput(f"collection {info.name!r} already uses model {info.model!r}")
    st.begin_staging(CollectionInfo(name=info.name, model=embedder.name, dim=embedder.dim,
                                    model_path=model_path))
    from .indexer import default_workers

    pre = embedder.preprocessor()
    n_workers = default_workers() if workers is None else max(1, workers)

    def pixels(task: StagingTask) -> np.ndarray | ImgfindError:
        try:
            return image_pixels(_read(store, task, limits, allow_private_urls), embedder, pre,
                                limits)
        except ImgfindError as e:
            return e
        except Exception as e:  # a decoder bug fails one item, never the run
            return ImgfindError(f"{type(e).__name__}: {e}")

    with cf.ThreadPoolExecutor(n_workers, thread_name_prefix="imgfind-reembed") as pool:
        for _ in range(MAX_PASSES):
            state = st.staging()
            assert state is not None
            report.total = state.total
            done = state.staged
            if progress:
                progress(done, report.total)
            failed: dict[str, StagingTask] = {}
            after = 0
            while True:
                tasks = st.staging_todo(batch_size, after)
                if not tasks:
                    break
                after = tasks[-1].pos
                ok: list[StagingTask] = []
                arrays: list[np.ndarray] = []
                for task, px in zip(tasks, pool.map(pixels, tasks)):
                    if isinstance(px, ImgfindError):
                        failed[task.id] = task
                        report.errors.append({"id": task.id, "source": task.source,
                                              "error": px.message, "code": px.code})
                    else:
                        ok.append(task)
                        arrays.append(px)
                if ok:
                    vectors = embedder.embed_pixels(pre.finish(np.stack(arrays)))
                    report.embedded += st.put_staged(ok, vectors)
                done += len(tasks)
                if progress:
                    progress(min(done, report.total), report.total)
                if cancel is not None and cancel.is_set():
                    report.cancelled = True
                    return report
            if failed:
                if not delete_unreadable:
                    return report
                report.deleted += sum(store.delete(list(failed)))
                report.errors.clear()
            if st.commit_staging():
                report.switched = True
                state_total = store.count()
                report.total = state_total
                if progress:
                    progress(state_total, state_total)
                return report
    raise StoreError(f"collection {info.name!r} kept changing through {MAX_PASSES} passes; "
                     "run reembed again when writes calm down (the work so far is kept)")


def stage_written(store: CollectionStore, load: Callable[[str | None, str | None], Embedder],
                  ids: Sequence[str], *, limits: imageio.Limits = imageio.Limits(),
                  allow_private_urls: bool = True) -> int:
    """The writer's half of a re-embed: embed items just written with the staged model too.

    Called after a write while a re-embed runs, so the items it adds or changes
    get their new-model vectors at once instead of in the re-embed's next pass.
    ``load(model, model_path)`` returns an embedder. Best effort: an item that
    fails here is left to the re-embed, which reports it. Returns how many were staged.
    """
    if not ids or not isinstance(store, StagingStore):
        return 0
    state = store.staging(counts=False)
    if state is None:
        return 0
    path = state.model_path if state.model_path and os.path.isdir(state.model_path) else None
    embedder = load(None if path else state.model, path)
    if (embedder.name, embedder.dim) != (state.model, state.dim):
        return 0
    pre = embedder.preprocessor()
    staged = 0
    for i in range(0, len(ids), 256):
        ok: list[StagingTask] = []
        arrays: list[np.ndarray] = []
        for task in store.staging_todo(256, ids=ids[i:i + 256]):
            try:
                arrays.append(image_pixels(_read(store, task, limits, allow_private_urls),
                                           embedder, pre, limits))
                ok.append(task)
            except ImgfindError:
                continue
        if ok:
            staged += store.put_staged(ok, embedder.embed_pixels(pre.finish(np.stack(arrays))))
    return staged


class StagingWrites:
    """A store whose ``put`` also calls ``after(ids)``: the indexing pipeline writes through
    it while a re-embed runs, so new items get the staged model's vectors at once."""

    def __init__(self, store: CollectionStore, after: Callable[[list[str]], None]):
        self._store = store
        self._after = after

    @classmethod
    def wrap(cls, store: CollectionStore,
             after: Callable[[list[str]], None]) -> CollectionStore:
        """``store`` itself unless a re-embed is in progress on it."""
        if isinstance(store, StagingStore) and store.staging(counts=False) is not None:
            return cast(CollectionStore, cls(store, after))
        return store

    def put(self, records: Sequence[Any]) -> list[str]:
        ids = self._store.put(records)
        self._after(list(ids))
        return ids

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def image_pixels(data: bytes, embedder: Embedder, pre: Preprocessor,
                 limits: imageio.Limits) -> np.ndarray:
    """Image bytes -> ``pre.pixels`` for ``embedder`` (decoded at the size it needs)."""
    from .indexer import draft_size

    decoded = imageio.decode(data, limits=limits, min_size=draft_size(embedder))
    return pre.pixels(decoded.image)


def _read(store: CollectionStore, task: StagingTask, limits: imageio.Limits,
          allow_private_urls: bool) -> bytes:
    """The image bytes of an item: its stored original, else its source, read again."""
    if task.stored:
        data = store.original(task.id)
        if data is not None:
            return data
    ref = task.source
    if ref[:8].lower().startswith(("http://", "https://")):
        src = sources.Source(ref=ref, kind="url")
    elif ref.startswith("upload:"):
        raise InvalidInput(f"item {task.id!r} was uploaded but its original is not stored")
    else:
        try:
            archives.split_archive_ref(ref)
            src = sources.Source(ref=ref, kind="archive")
        except ImgfindError:
            src = sources.Source(ref=ref, kind="file")
    return sources.read_bytes(src, max_bytes=limits.max_bytes, allow_private=allow_private_urls)
