"""Stores: where collections live. The embedded SQLite + faiss store is the default.

Backends are registered by name and chosen by a store URI (:mod:`.uri`):
``open_backend(home, store="milvus:///abs/m.db")``. A backend module registers
itself with one line, lazily by import path so that the base install does not
need its dependencies::

    register_backend("milvus", "imgfind.stores.milvus:open_backend")

A factory is called as ``factory(home, spec, options, blobs)`` and returns a
:class:`~.base.Backend`: ``spec`` is the parsed :class:`~.uri.StoreSpec`,
``options`` the :class:`StoreOptions` (or None), ``blobs`` the ``--blobs`` URL
(or None: a folder in the home).

>>> import tempfile
>>> backend = open_backend(tempfile.mkdtemp())
>>> backend.collections()
[]
>>> backend.close()
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from ..errors import InvalidInput
from .base import Backend, CollectionInfo, CollectionStore, Record, SourceState
from .sqlite import SQLiteBackend, SQLiteStore, StoreOptions
from .uri import StoreSpec, parse_store_uri

__all__ = ["Backend", "BackendFactory", "CollectionInfo", "CollectionStore", "Record",
           "SQLiteBackend", "SQLiteStore", "SourceState", "StoreOptions", "StoreSpec",
           "open_backend", "parse_store_uri", "register_backend"]

BackendFactory = Callable[[Path, StoreSpec, StoreOptions | None, str | None], Backend]

# name -> factory, or "module:attribute" imported on first use.
_BACKENDS: dict[str, BackendFactory | str] = {}


def register_backend(name: str, factory: BackendFactory | str) -> None:
    """Make ``open_backend`` open URIs whose :attr:`StoreSpec.backend` is ``name``."""
    _BACKENDS[name] = factory


def _resolve(name: str) -> BackendFactory:
    factory = _BACKENDS.get(name)
    if factory is None:
        raise InvalidInput(f"no store backend {name!r} in this install; known: "
                           f"{', '.join(sorted(_BACKENDS))}")
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except ImportError as e:
            raise InvalidInput(
                f"the {name} store is not available in this install ({e}); install it "
                f"with: pip install 'imgfind[{name}]'") from e
        _BACKENDS[name] = factory
    return factory  # type: ignore[return-value]


def open_backend(home: str | Path, options: StoreOptions | None = None, *,
                 store: str | StoreSpec | None = None, blobs: str | None = None) -> Backend:
    """The backend for the store URI ``store`` (default ``sqlite``: files under ``home``).

    ``blobs`` is where a backend without its own file storage keeps thumbnails and
    stored originals (a folder or fsspec URL); the SQLite store keeps them in its
    database, so giving it one is an error rather than silently ignored.
    """
    spec = store if isinstance(store, StoreSpec) else parse_store_uri(store)
    return _resolve(spec.backend)(Path(home), spec, options, blobs)


def _sqlite(home: Path, spec: StoreSpec, options: StoreOptions | None,
            blobs: str | None) -> Backend:
    if blobs:
        raise InvalidInput("--blobs / IMGFIND_BLOBS applies to the milvus store; the sqlite "
                           "store keeps thumbnails and originals in its own database")
    return SQLiteBackend(home, options)


register_backend("sqlite", _sqlite)
register_backend("milvus", "imgfind.stores.milvus:open_backend")
