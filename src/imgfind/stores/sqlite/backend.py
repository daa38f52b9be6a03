"""Named collections, one folder each, under ``<home>/collections/``."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from ...errors import AlreadyExists, InvalidInput, NotFound, StoreError, StoreTooNew
from ..base import CollectionInfo
from .core import StoreOptions
from .schema import DB_FILE, NAME_RE, probe
from .store import SQLiteStore

__all__ = ["SQLiteBackend"]


class SQLiteBackend:
    """Named collections under ``<home>/collections/<name>/``.

    >>> import tempfile
    >>> b = SQLiteBackend(tempfile.mkdtemp())
    >>> _ = b.create(CollectionInfo(name="photos", model="toy", dim=4))
    >>> [c.name for c in b.collections()]
    ['photos']
    >>> b.close()
    """

    #: its stores keep OCR text (imgfind.ocr); other backends refuse ``ocr=True``
    supports_ocr = True

    def __init__(self, home: str | Path, options: StoreOptions | None = None):
        self.home = Path(home)
        self.root = self.home / "collections"
        self.options = options or StoreOptions()
        self._open: dict[str, SQLiteStore] = {}
        self._lock = threading.Lock()

    def _folder(self, name: str) -> Path:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InvalidInput(
                f"bad collection name {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit")
        return self.root / name

    def collections(self) -> list[CollectionInfo]:
        """Every collection, by name; one written by a newer imgfind is listed with its
        ``problem`` (it cannot be opened here). Folders holding no collection are skipped."""
        out: list[CollectionInfo] = []
        if not self.root.is_dir():
            return out
        for folder in sorted(self.root.iterdir()):
            db = folder / DB_FILE
            if not (NAME_RE.match(folder.name) and db.is_file()):
                continue
            if folder.name in self._open:
                out.append(self._open[folder.name].info)
                continue
            try:
                info = probe(db)
            except StoreError:
                continue     # damaged or foreign: `open` says why, `create` refuses it
            if info is not None:
                out.append(info)
        return out

    def create(self, info: CollectionInfo) -> SQLiteStore:
        """Create a collection; AlreadyExists if the name is taken.

        Never deletes data: a folder holding a store this imgfind cannot read (damaged,
        foreign, or from a newer imgfind) is refused with a typed error, untouched.
        """
        folder = self._folder(info.name)
        if not isinstance(info.dim, int) or info.dim <= 0:
            raise InvalidInput(f"a collection needs a positive vector dimension, got {info.dim!r}")
        if not info.model:
            raise InvalidInput("a collection needs the name of its embedding model")
        with self._lock:
            db = folder / DB_FILE
            try:
                found = probe(db) if db.is_file() else None
            except StoreError as e:
                raise StoreError(f"collection {info.name!r} exists but cannot be read "
                                 f"({e.message}); imgfind does not overwrite it: move "
                                 f"{folder} away or drop the collection first") from e
            if found is not None and found.problem:
                raise StoreTooNew(found.problem)
            if found is not None:
                raise AlreadyExists(f"collection {info.name!r} already exists; open it, or "
                                    "drop it first")
            store = SQLiteStore.create(folder, info, self.options)
            self._open[info.name] = store
            return store

    def open(self, name: str) -> SQLiteStore:
        """The collection's store (one shared handle per backend); NotFound if absent."""
        folder = self._folder(name)
        with self._lock:
            store = self._open.get(name)
            if store is not None and not store.closed:
                return store
            if not (folder / DB_FILE).is_file():
                raise NotFound(f"no collection {name!r}; create it first")
            store = SQLiteStore(folder, self.options)
            self._open[name] = store
            return store

    def drop(self, name: str) -> None:
        """Delete a collection and all its files; NotFound if absent."""
        folder = self._folder(name)
        with self._lock:
            store = self._open.pop(name, None)
            if store is not None:
                store.close()
            if not folder.is_dir():
                raise NotFound(f"no collection {name!r}")
            # Rename first so a half-finished delete never looks like a collection.
            trash = self.root / f".dropped-{name}-{os.getpid()}-{time.time_ns()}"
            folder.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)

    def close(self) -> None:
        """Close every open collection (saving their vector indexes)."""
        with self._lock:
            for store in self._open.values():
                store.close()
            self._open.clear()
