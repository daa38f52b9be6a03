"""The Milvus store: imgfind collections in Milvus Lite, Milvus Standalone/Distributed
or Zilliz Cloud (one client API), thumbnails and originals in an fsspec blob store.

Needs the ``milvus`` extra (``pip install 'imgfind[milvus]'``). See
docs/scale-out.md for the layout, index defaults and sizing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...filters.milvus import compile_milvus
from .backend import MilvusBackend, MilvusOptions
from .blobs import BlobStore
from .schema import IndexSpec
from .store import MilvusStore

__all__ = ["BlobStore", "IndexSpec", "MilvusBackend", "MilvusOptions", "MilvusStore",
           "compile_milvus", "open_backend"]


def open_backend(home: Path, spec: Any, options: Any = None,
                 blobs: str | None = None) -> MilvusBackend:
    """The registered factory for ``milvus`` store URIs (see :mod:`imgfind.stores.uri`).

    ``spec`` is the parsed URI; thumbnails and originals go to ``blobs`` (a folder
    or fsspec URL), by default the ``blobs`` folder in the home. ``options`` (the
    SQLite store's tuning) does not apply.
    """
    return MilvusBackend(
        spec.address, blobs=blobs or str(Path(home) / "blobs"), token=spec.token,
        db=spec.db, options=MilvusOptions(
            prefix=spec.prefix, shards=spec.shards or 1, replicas=spec.replicas or 1,
            index=IndexSpec(kind=spec.index)))
