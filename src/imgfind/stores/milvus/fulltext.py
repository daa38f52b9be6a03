"""Full-text search on a Milvus collection: BM25 over the ``text`` field.

Every word of the query must occur in the item's text (path, metadata, EXIF, file
name; lower-cased, accents folded), as a substring: the SQLite store matches word
prefixes, and a substring test is the closest Milvus can filter on. Hits where a
word matches whole are ranked by Milvus' BM25; items matching only inside a word
follow with score 0, in the order Milvus returns them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ...filters.milvus import plan_milvus
from . import schema

if TYPE_CHECKING:
    from .store import MilvusStore

__all__ = ["text_search"]


def text_search(store: MilvusStore, query: str, k: int,
                where: dict | None) -> list[tuple[str, float]]:
    k = schema.check_k(k)
    words = schema.words_of(query or "")[:32]
    if not words or k == 0:
        return []
    # Words hold letters and digits only: nothing to escape in the LIKE pattern.
    likes = [f"text like {schema.lit('%' + w + '%')}" for w in words]
    plan = plan_milvus(where)
    plan = dataclasses.replace(plan, expr=schema.and_(plan.expr, *likes))
    hits = store._hits("sparse", [" ".join(words)], k, plan, {"metric_type": "BM25"})[0]
    # Milvus Lite reports BM25 as a negative distance, Milvus as a positive score.
    out = [(h["id"], abs(float(h["distance"]))) for h in hits]
    if len(out) < k:
        seen = {i for i, _ in out}
        for r in store._matching(plan, []):
            if len(out) >= k:
                break
            if r["id"] not in seen:
                out.append((r["id"], 0.0))
    return out
