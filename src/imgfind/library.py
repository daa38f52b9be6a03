"""The library: a home folder of named collections, each bound to one embedding model.

>>> import imgfind
>>> with imgfind.open("/tmp/lib") as lib:                          # doctest: +SKIP
...     photos = lib.create_collection("photos", model_path="models/clip")
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from . import imageio
from .embedders import load_embedder
from .embedders.base import Embedder
from .errors import InvalidInput, ModelMismatch, NotSupported
from .interface import DEFAULT_COLLECTION
from .interface import typed_calls as _typed_calls
from .stores import open_backend
from .stores.base import CollectionInfo

if TYPE_CHECKING:  # a Collection is made on first use (it imports this module)
    from .api import Collection

DEFAULT_HOME = "~/.imgfind"

def default_home() -> Path:
    return Path(os.environ.get("IMGFIND_HOME") or DEFAULT_HOME).expanduser()


def open(home: str | Path | None = None, *, model_path: str | Path | None = None,
         threads: int | None = None, limits: imageio.Limits | None = None,
         allow_private_urls: bool = True, store: str | None = None,
         blobs: str | None = None) -> Library:
    """Open (or create) the library in ``home`` (default ``$IMGFIND_HOME`` or ``~/.imgfind``).

    ``model_path`` is a local model folder used for collections created
    without another model and for collections whose model is not cached.
    ``allow_private_urls=False`` refuses image URLs on loopback or private
    networks (the server sets it for its callers). ``store`` is a store URI
    (default ``$IMGFIND_STORE`` or ``sqlite``; see :mod:`imgfind.stores.uri`), and
    ``blobs`` (default ``$IMGFIND_BLOBS``) where a Milvus store keeps thumbnails.

    >>> with imgfind.open("/tmp/lib") as lib:                      # doctest: +SKIP
    ...     print([c.name for c in lib.collections()])
    """
    return Library(Path(home).expanduser() if home else default_home(),
                   model_path=model_path, threads=threads, limits=limits,
                   allow_private_urls=allow_private_urls,
                   store=store or os.environ.get("IMGFIND_STORE"),
                   blobs=blobs or os.environ.get("IMGFIND_BLOBS"))


@_typed_calls
class Library:
    """A folder of named collections, each bound to one embedding model."""

    def __init__(self, home: Path, *, model_path: str | Path | None = None,
                 threads: int | None = None, limits: imageio.Limits | None = None,
                 allow_private_urls: bool = True, store: str | None = None,
                 blobs: str | None = None):
        self.home = home
        self.allow_private_urls = allow_private_urls
        self.model_path = str(model_path) if model_path else os.environ.get("IMGFIND_MODEL_PATH")
        self.threads = threads
        self.limits = limits or imageio.Limits()
        self.backend = open_backend(home, store=store, blobs=blobs)
        self._embedders: dict[tuple[str | None, str | None], Embedder] = {}
        self._open: dict[str, Collection] = {}
        self._lock = threading.RLock()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for c in self._open.values():
                c.store.close()
            self._open.clear()
            self.backend.close()

    def embedder(self, model: str | None = None, model_path: str | None = None, *,
                 dim: int | None = None) -> Embedder:
        """The (cached) embedder for a model name or a local model folder.

        ``dim``, when known, spares loading the image tower just to learn the width.
        """
        key = (model, model_path)
        with self._lock:
            if key not in self._embedders:
                self._embedders[key] = load_embedder(model, model_path=model_path,
                                                     threads=self.threads, dim=dim)
            return self._embedders[key]

    def create_collection(self, name: str, model: str | None = None, *,
                          model_path: str | Path | None = None,
                          exist_ok: bool = False, ocr: bool = False) -> Collection:
        """Create a collection bound to ``model`` (a preset name, hub id or ``"phash"``)
        or to the model folder ``model_path``. ``ocr=True`` also reads the text inside
        its images, in a pass after embedding (see :meth:`Collection.run_ocr`).

        >>> lib.create_collection("dupes", model="phash")          # doctest: +SKIP
        >>> lib.create_collection("signs", ocr=True)                # doctest: +SKIP
        """
        if not isinstance(ocr, bool):
            raise InvalidInput(f"ocr must be true or false, got {ocr!r}")
        if ocr and not getattr(self.backend, "supports_ocr", False):
            raise NotSupported(f"this store ({type(self.backend).__name__}) keeps no OCR "
                               "text; create OCR collections in the sqlite store")
        with self._lock:
            existing = {c.name: c for c in self.backend.collections()}
            if exist_ok and name in existing:
                if existing[name].problem:      # e.g. a newer imgfind's: say "upgrade"
                    return self.collection(name)
                _check_same_model(existing[name], model)
                return self.collection(name)
            path = str(Path(model_path).expanduser().resolve()) if model_path else None
            if model is None and path is None:
                path = self.model_path
            emb = self.embedder(model if path is None else None, path)
            info = CollectionInfo(name=name, model=emb.name, dim=emb.dim, model_path=path,
                                  created=_now(), ocr=ocr)
            store = self.backend.create(info)
            from .api import Collection

            col = Collection(self, store, emb)
            self._open[name] = col
            return col

    def collection(self, name: str = DEFAULT_COLLECTION) -> Collection:
        """An existing collection; ``NotFound`` if there is none of that name."""
        with self._lock:
            if name not in self._open:
                from .api import Collection

                self._open[name] = Collection(self, self.backend.open(name))
            return self._open[name]

    def collections(self) -> list[CollectionInfo]:
        return self.backend.collections()

    def drop_collection(self, name: str) -> None:
        """Delete a collection and everything stored in it."""
        with self._lock:
            col = self._open.pop(name, None)
            if col is not None:
                col.store.close()
            self.backend.drop(name)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_same_model(info: CollectionInfo, model: str | None) -> None:
    """``exist_ok`` may only reuse a collection bound to the model that was asked for."""
    if model is None:
        return
    from .embedders.registry import resolve

    wanted = model if model == "phash" else resolve(model)[0]
    if wanted != info.model:
        raise ModelMismatch(
            f"collection {info.name!r} is bound to model {info.model!r}, not {wanted!r}; "
            f"use another collection name for {wanted!r} (or re-embed the collection)")
