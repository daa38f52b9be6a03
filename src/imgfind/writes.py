"""The write path of a collection: prepare, embed and store items in batches.

Per-item errors never fail a batch: each item gets its own ``Result``.

>>> write(col, [{"image": "cat.jpg", "metadata": {"pet": "cat"}}],
...       replace_only=False)                                      # doctest: +SKIP
[Result(id='3f9c0e1d2a4b5c6d', ...)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .errors import ImgfindError, InvalidArgument, InvalidInput, ModelMismatch, NotFound, from_code
from .interface import to_source
from .stores.base import CollectionStore, Record
from .types import Result

if TYPE_CHECKING:
    from .api import Collection


def update_batch(col: Collection, items: Iterable[dict[str, Any]]) -> list[Result]:
    """Update many items: dicts with ``id`` and ``image`` and/or ``metadata``."""
    entries = list(items)
    results: list[Result | None] = [None] * len(entries)
    with_image: list[int] = []
    for i, e in enumerate(entries):
        try:
            item_id = e.get("id")
            if not item_id:
                raise InvalidInput("update needs an id")
            if e.get("image") is not None:
                with_image.append(i)
                continue
            if e.get("metadata") is None:
                raise InvalidInput("update needs an image, metadata or both")
            col.store.set_metadata(item_id, check_meta(e["metadata"]),
                                   merge=bool(e.get("merge")))
            results[i] = Result(id=item_id)
        except ImgfindError as err:
            results[i] = failed(err, e.get("id"))
    if with_image:
        done = write(col, [entries[i] for i in with_image], replace_only=True)
        for i, r in zip(with_image, done):
            results[i] = r
    return results  # type: ignore[return-value]


def write(col: Collection, entries: list[dict[str, Any]], *, replace_only: bool,
          keep_duplicates: bool = True) -> list[Result]:
    """Prepare, embed and store entries; per-item errors never fail the batch."""
    from . import indexer

    emb = col.embedder
    job = indexer.PrepareJob(emb.preprocessor(), col.library.limits, indexer.draft_size(emb),
                             allow_private_urls=col.library.allow_private_urls)
    results: list[Result | None] = [None] * len(entries)
    ready: list[tuple[int, indexer.Prepared]] = []
    existing = col.store.get([e["id"] for e in entries if e.get("id")])
    known = {it.id: it for it in existing if it is not None}
    for i, e in enumerate(entries):
        item_id = e.get("id")
        try:
            if item_id is not None and (not isinstance(item_id, str) or not item_id
                                        or len(item_id) > 200):
                raise InvalidInput("id must be a non-empty string of at most 200 chars")
            if replace_only and item_id not in known:
                raise NotFound(f"no item {item_id!r} in collection {col.name!r}")
            src = to_source(e.get("image"))
            meta = e.get("metadata")
            if meta is None and replace_only:
                meta = known[str(item_id)].metadata
            elif replace_only and e.get("merge"):
                meta = {**known[str(item_id)].metadata, **check_meta(meta)}
            prepared = job(replace(src, metadata=check_meta(meta or {})))
            if isinstance(prepared, indexer.Failed):
                raise from_code(prepared.code, prepared.error)
            if e.get("name") is not None:
                prepared.file = {**prepared.file, "name": check_name(e["name"])}
            prepared.id = item_id or indexer.new_id()
            ready.append((i, prepared))
        except ImgfindError as err:
            results[i] = failed(err, item_id)
    if not keep_duplicates:
        ready = drop_duplicates(col.store, entries, ready, results)
    if ready:
        vectors = indexer.embed_prepared(emb, job.preprocessor, [p for _, p in ready])
        records: list[Record] = [p.to_record(v) for (_, p), v in zip(ready, vectors)]
        try:
            col.store.put(records)
        except ModelMismatch:
            if col.store.info.model == emb.name:
                raise
            # A re-embed switched the model while this batch was embedded: redo it.
            return write(col, entries, replace_only=replace_only)
        col._stage([r.id for r in records])
        for (i, p), r in zip(ready, records):
            results[i] = Result(id=r.id, source=p.source.ref)
    return results  # type: ignore[return-value]


def drop_duplicates(store: CollectionStore, entries: list[dict[str, Any]],
                    ready: list[tuple[int, Any]],
                    results: list[Result | None]) -> list[tuple[int, Any]]:
    """Answer items whose bytes are stored (or earlier in the batch) with that id."""
    seen = store.by_sha256({p.sha256 for _, p in ready})
    kept = []
    for i, p in ready:
        first = seen.get(p.sha256)
        if first is not None and entries[i].get("id") in (None, first):
            results[i] = Result(id=first, source=p.source.ref, duplicate=True)
            continue
        seen.setdefault(p.sha256, p.id)
        kept.append((i, p))
    return kept


def check_name(name: Any) -> str:
    """A file name to record: a non-empty string without a folder part."""
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise InvalidInput("name must be a file name of 1 to 255 characters")
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if not base.strip():
        raise InvalidInput(f"name {name!r} has no file name after its folder part")
    return base


def check_ids(ids: Any) -> list[str]:
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence) \
            or not all(isinstance(i, str) for i in ids):
        raise InvalidArgument(f"ids must be a list of id strings, got {ids!r:.80}")
    return list(ids)


def check_meta(meta: Any) -> dict[str, Any]:
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise InvalidInput("metadata must be a JSON object (a dict)")
    return meta


def failed(err: ImgfindError, item_id: str | None) -> Result:
    return Result(id=item_id, error=err.message, code=err.code)
