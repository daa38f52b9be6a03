"""Stores: where collections live. The embedded SQLite + faiss store is the default.

>>> import tempfile
>>> backend = open_backend(tempfile.mkdtemp())
>>> backend.collections()
[]
>>> backend.close()
"""

from __future__ import annotations

from pathlib import Path

from .base import Backend, CollectionInfo, CollectionStore, Record, SourceState
from .sqlite import SQLiteBackend, SQLiteStore, StoreOptions

__all__ = ["Backend", "CollectionInfo", "CollectionStore", "Record", "SQLiteBackend",
           "SQLiteStore", "SourceState", "StoreOptions", "open_backend"]


def open_backend(home: str | Path, options: StoreOptions | None = None) -> Backend:
    """The embedded backend for the data directory ``home`` (created on first write)."""
    return SQLiteBackend(home, options)
