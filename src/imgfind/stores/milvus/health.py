"""check / index_info / rebuild of a Milvus collection, in the stores' common shape.

``check()``, ``index_info()`` and ``rebuild()`` return the shape every store
returns (see :mod:`imgfind.stores.base`); Milvus' own facts (collection,
index parameters, consistency level, blob store, shards/replicas) sit under
``details``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import MilvusStore

__all__ = ["check", "index_info", "rebuild"]


def index_info(store: MilvusStore) -> dict[str, Any]:
    return {"backend": "milvus", "kind": store.index.resolved(), "size": store.count(),
            "details": {"collection": store.cname, **store.index.to_dict(),
                        "consistency": "Strong", "blobs": store.blobs.url, **store.describe}}


def check(store: MilvusStore) -> dict[str, Any]:
    """Every row read back (by primary-key pages), every blob it names present."""
    problems: list[str] = []
    items = missing = 0
    for page in store._scan("", ["thumb", "orig"]):
        items += len(page)
        for r in page:
            for key in (r.get("thumb"), r.get("orig")):
                if key and not store.blobs.exists(key):
                    missing += 1
    if missing:
        problems.append(f"{missing} blobs named by rows are missing from {store.blobs.url}; "
                        "re-add those items")
    count = store.count()
    if count != items:
        problems.append(f"count(*) says {count} items but a scan read {items}")
    info = index_info(store)
    return {"ok": not problems, "items": items, "backend": "milvus",
            "index": info | {"in_step": info["size"] == items}, "problems": problems,
            "details": {"blobs_missing": missing, "blobs": store.blobs.url}}


def rebuild(store: MilvusStore) -> dict[str, Any]:
    """Re-create the vector index (Milvus keeps BM25 and scalar data itself)."""
    t0 = time.perf_counter()
    c = store.client
    store._call("release", c.release_collection)
    store._call("drop index", c.drop_index, index_name="vector")
    p = c.prepare_index_params()
    p.add_index("vector", index_type=store.index.resolved(), metric_type="IP",
                params=store.index.build_params())
    store._call("create index", c.create_index, p)
    store._call("load", c.load_collection)
    info = index_info(store)
    return {"items": info["size"], "backend": "milvus", "index": info,
            "seconds": round(time.perf_counter() - t0, 3),
            "details": {"rebuilt": "vector index (Milvus maintains BM25 and scalars itself)"}}
