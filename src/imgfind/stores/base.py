"""The store protocol: the only thing that owns files in the data directory.

A *backend* holds named collections; a *collection store* holds items of one
collection: rows (metadata, EXIF, file facts, thumbnails, stored originals)
and their vectors, plus whatever vector index it derives from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..types import CollectionInfo, Item


@dataclass
class Record:
    """Everything stored for one item. ``vector`` is unit-length float32 of the collection's dim."""

    id: str
    source: str
    vector: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    exif: dict[str, Any] = field(default_factory=dict)
    file: dict[str, Any] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    format: str | None = None
    sha256: str | None = None
    taken: str | None = None        # ISO date-time the photo was taken (from EXIF), if known
    thumbnail: bytes | None = None  # small JPEG for galleries
    original: bytes | None = None   # kept only for URL / uploaded sources


@dataclass(frozen=True)
class SourceState:
    """What the store knows about a file source, for incremental re-indexing."""

    id: str
    mtime_ns: int | None
    size: int | None
    sha256: str | None


class CollectionStore(Protocol):
    info: CollectionInfo

    def put(self, records: Sequence[Record]) -> list[str]:
        """Insert or replace (by id) in one transaction; returns the ids. All or nothing."""
        ...

    def set_metadata(self, id: str, metadata: dict[str, Any], merge: bool = False) -> None:
        """Replace (or merge into) the user metadata of one item. NotFound if absent."""
        ...

    def delete(self, ids: Sequence[str]) -> list[bool]:
        """Delete items; one bool per id, False where the id did not exist."""
        ...

    def clear(self) -> int:
        """Delete every item; returns how many there were."""
        ...

    def get(self, ids: Sequence[str]) -> list[Item | None]: ...

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """(len(ids), dim) float32; NotFound if any id is absent."""
        ...

    def original(self, id: str) -> bytes | None:
        """Stored original bytes (URL / upload sources), None for in-place files."""
        ...

    def thumbnail(self, id: str) -> bytes | None: ...

    def search(self, queries: np.ndarray, k: int, where: dict | None = None,
               exclude: Sequence[str] = ()) -> list[list[tuple[str, float]]]:
        """Nearest items by cosine for each query row, best first.

        With ``where``, only matching items are considered and k hits come back
        whenever at least k items match.
        """
        ...

    def text_search(self, query: str, k: int = 10,
                    where: dict | None = None) -> list[tuple[str, float]]:
        """Full-text search over source path, user metadata and EXIF (FTS5 ranking)."""
        ...

    def count(self, where: dict | None = None) -> int: ...

    def ids(self, where: dict | None = None, limit: int | None = None,
            offset: int = 0, sort: str | None = None) -> list[str]:
        """Item ids in insertion order, optionally filtered (for listing / paging).

        ``sort`` (``taken``, ``-taken``, ``added``, ``-added``) orders by date instead:
        ``taken`` is the date taken, falling back to the date added; items without a
        date come last. Must not read every row to find a page (index-backed).
        """
        ...

    def by_sha256(self, hashes: Iterable[str]) -> dict[str, str]:
        """sha256 -> an id already stored with that content."""
        ...

    def source_states(self, prefix: str | None = None) -> dict[str, SourceState]:
        """source -> state for every item whose source starts with ``prefix``."""
        ...

    def all_vectors(self, batch: int = 65536) -> Iterable[tuple[list[str], np.ndarray]]:
        """Every (ids, vectors) in chunks; for duplicate finding and re-embedding."""
        ...

    def check(self) -> dict[str, Any]:
        """Health, in the shape every backend shares::

            {"ok": bool,                  # True exactly when "problems" is empty
             "items": int,                # items stored
             "backend": str,              # "sqlite", "milvus", ...
             "index": {**index_info(), "in_step": bool},   # the index holds every item
             "problems": [str, ...],      # each says what is wrong and what to do
             "details": {...}}            # backend-specific (sqlite: vectors, fts, integrity)
        """
        ...

    def index_info(self) -> dict[str, Any]:
        """The vector index in brief, cheap (no scans), in the shape every backend shares::

            {"backend": str, "kind": str,   # index type, e.g. "flat", "ivf-sq6", "HNSW"
             "size": int,                   # vectors it holds
             "details": {...}}              # backend-specific tuning (sqlite: nprobe, nlist...)
        """
        ...

    def rebuild(self) -> dict[str, Any]:
        """Rebuild every derived structure (vector index, full-text index) from the rows::

            {"items": int, "backend": str, "index": index_info(), "seconds": float,
             "details": {...}}
        """
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class StagingInfo:
    """A re-embed in progress: the model being staged and how far it got."""

    model: str
    dim: int
    model_path: str | None = None
    started: str | None = None
    total: int = 0      # items in the collection
    staged: int = 0     # items whose staged vector is current


@dataclass(frozen=True)
class StagingTask:
    """One item still to embed with the staged model.

    ``version`` identifies what was read (a staged vector for an older version
    is not current); ``stored`` says whether the store holds the original
    bytes (else ``source`` is read); ``pos`` orders tasks for ``staging_todo``'s
    ``after``.
    """

    id: str
    version: int
    source: str
    stored: bool
    pos: int


@runtime_checkable
class StagingStore(Protocol):
    """A store that builds a second model's vectors beside the live ones (re-embedding).

    Contract:

    * Staging never changes what searches, reads and writes see: the live
      vectors, ``info`` and every row stay as they are until
      :meth:`commit_staging`. Staged state is durable: each ``put_staged`` is
      committed, so a killed re-embed resumes where it stopped.
    * :meth:`begin_staging` starts staging ``info.model``/``info.dim`` (any
      dimension), or returns the one in progress for the same model; another
      model in progress is ``AlreadyExists``.
    * :meth:`staging_todo` lists items without a *current* staged vector: never
      staged, or written again (``put``) since their staged vector was made;
      ordered by ``pos``, from ``after``, only among ``ids`` when given. Deleted
      items leave no staged vector.
    * :meth:`put_staged` stores unit vectors for tasks, but only where the item is
      still at the task's ``version`` (returns how many were stored).
    * :meth:`commit_staging` switches in one transaction: if any item lacks a
      current staged vector it changes nothing and returns False; else the staged
      vectors replace the live ones, ``info`` takes the staged model, name and
      dim, staging ends, and True is returned. Every handle on the store, in any
      process, then searches the new vectors; a ``put`` of vectors embedded with
      the old model fails with ``ModelMismatch``. Ids, rows, metadata, thumbnails
      and stored originals are untouched.
    * :meth:`abort_staging` drops staged vectors; False if none were staged.
    """

    info: CollectionInfo

    def staging(self, counts: bool = True) -> StagingInfo | None:
        """The re-embed in progress (with ``total``/``staged`` when ``counts``), or None."""
        ...

    def begin_staging(self, info: CollectionInfo) -> StagingInfo: ...

    def staging_todo(self, limit: int, after: int = 0,
                     ids: Sequence[str] | None = None) -> list[StagingTask]: ...

    def put_staged(self, tasks: Sequence[StagingTask], vectors: np.ndarray) -> int: ...

    def commit_staging(self) -> bool: ...

    def abort_staging(self) -> bool: ...


class Backend(Protocol):
    def collections(self) -> list[CollectionInfo]: ...

    def create(self, info: CollectionInfo) -> CollectionStore:
        """AlreadyExists if the name is taken."""
        ...

    def open(self, name: str) -> CollectionStore:
        """NotFound if there is no such collection."""
        ...

    def drop(self, name: str) -> None: ...

    def close(self) -> None: ...
