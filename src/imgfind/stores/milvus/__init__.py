"""The Milvus store: imgfind collections in Milvus Lite, Milvus Standalone/Distributed
or Zilliz Cloud (one client API), thumbnails and originals in an fsspec blob store.

Needs the ``milvus`` extra (``pip install 'imgfind[milvus]'``). See
docs/scale-out.md for the layout, index defaults and sizing.
"""

from __future__ import annotations

from ...filters.milvus import compile_milvus
from .backend import MilvusBackend, MilvusOptions
from .blobs import BlobStore
from .schema import IndexSpec
from .store import MilvusStore

__all__ = ["BlobStore", "IndexSpec", "MilvusBackend", "MilvusOptions", "MilvusStore",
           "compile_milvus"]
