"""Answering validated queries: query -> vector -> ranked ids -> hits.

Examples are embedded in batches across all queries (texts together, images
together, stored vectors in one read), combined per query (see
:func:`imgfind.query.combine`), then ranked:

* ``vector``: the store's nearest neighbours by cosine;
* ``text``: the store's full-text ranking (scores are full-text relevance);
* ``hybrid``: reciprocal-rank fusion of both rankings, each ``HYBRID_DEPTH`` deep:
  ``sum 1 / (RRF_K + rank)``; a hit's score stays its cosine similarity.

Then ``min_score`` drops hits below it, the best ``k`` are kept, and ``sort``
orders them. Items used as examples (``like``) never come back as hits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidInput, NotFound
from .query import HYBRID_DEPTH, RRF_K, Query, combine, sort_by
from .types import Hit

if TYPE_CHECKING:
    from .api import Collection


def run_queries(col: Collection, queries: list[Query]) -> list[list[Hit]]:
    """One list of hits per query, each ranked, filtered, cut to k and sorted as asked."""
    if not queries:
        return []
    vectors = _query_vectors(col, queries)
    ranked: list[list[tuple[str, float]]] = [[] for _ in queries]
    plain = [i for i, q in enumerate(queries)
             if q.mode == "vector" and not q.liked and q.where == queries[0].where
             and q.k == queries[0].k]
    done = set(plain)
    if plain:
        # the common case (a batch of plain queries): one store call for all
        found = col.store.search(np.stack([vectors[i] for i in plain]), queries[0].k,
                                 queries[0].where)
        for i, hits in zip(plain, found):
            ranked[i] = hits
    for i, q in enumerate(queries):
        if i in done:
            continue
        if q.mode == "vector":
            ranked[i] = col.store.search(vectors[i][None, :], q.k, q.where,
                                         exclude=q.liked)[0]
        elif q.mode == "text":
            ranked[i] = col.store.text_search(q.text or "", q.k, q.where)
        else:
            ranked[i] = _hybrid(col, q, vectors[i])
    return [_finish(col, q, r) for q, r in zip(queries, ranked)]


def rrf(*rankings: list[str], k: int = RRF_K) -> list[str]:
    """Reciprocal-rank fusion: ids by ``sum 1 / (k + rank)`` over the rankings (rank from 1);
    ties keep first-seen order.

    >>> rrf(["a", "b", "c"], ["c", "d"])
    ['c', 'a', 'b', 'd']
    """
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, id in enumerate(ranking, 1):
            fused[id] = fused.get(id, 0.0) + 1.0 / (k + rank)
    return sorted(fused, key=lambda i: -fused[i])


def _hybrid(col: Collection, q: Query, qv: np.ndarray) -> list[tuple[str, float]]:
    depth = max(q.k, HYBRID_DEPTH)
    by_vector = col.store.search(qv[None, :], depth, q.where, exclude=q.liked)[0]
    liked = set(q.liked)
    by_text = [i for i, _ in col.store.text_search(q.text or "", depth, q.where)
               if i not in liked]
    cosine = dict(by_vector)
    missing = [i for i in by_text if i not in cosine]
    if missing:
        # text-only hits get their cosine too, so a score means the same in every mode
        try:
            vectors = col.store.vectors(missing)
        except NotFound:  # deleted since the text ranking: leave those out
            missing = [it.id for it in col.store.get(missing) if it is not None]
            vectors = col.store.vectors(missing)
        for i, v in zip(missing, vectors):
            cosine[i] = float(np.dot(v, qv))
    return [(i, cosine[i]) for i in rrf([i for i, _ in by_vector], by_text) if i in cosine]


def _finish(col: Collection, q: Query, ranked: list[tuple[str, float]]) -> list[Hit]:
    if q.min_score is not None:
        ranked = [(i, s) for i, s in ranked if s >= q.min_score]
    ranked = ranked[:q.k]
    items = col.store.get([i for i, _ in ranked])
    hits = [Hit(id=i, score=float(s), item=it) for (i, s), it in zip(ranked, items)
            if it is not None]
    return sort_by(hits, q.sort, lambda h: h.item)


def _query_vectors(col: Collection, queries: list[Query]) -> dict[int, np.ndarray]:
    """Query vectors keyed by position in ``queries`` (none for text mode); examples are
    embedded in batches."""
    texts: list[tuple[int, int, str]] = []
    images: list[tuple[int, int, Any]] = []
    likes: list[tuple[int, int, str]] = []
    per: list[list[np.ndarray | None]] = []
    for qi, q in enumerate(queries):
        per.append([None] * len(q.examples))
        if q.mode == "text":
            continue
        for ei, e in enumerate(q.examples):
            if e.kind == "vector":
                per[qi][ei] = col._check_vector(e.value)
            elif e.kind == "text":
                texts.append((qi, ei, e.value))
            elif e.kind == "like":
                likes.append((qi, ei, e.value))
            else:
                images.append((qi, ei, col._load_query_image(e.value)))
    if texts:
        emb = col.embedder
        if not emb.supports_text:
            raise InvalidInput(f"model {col.model!r} has no text tower: search by image")
        warm = getattr(emb, "warm_text", None)
        loading = warm() if warm is not None else None
        if loading is not None:
            # Cold start: load the text tower and the vector index at the same time.
            col.store.index_info()
            loading.join()
        for (qi, ei, _), v in zip(texts, emb.embed_texts([t for _, _, t in texts])):
            per[qi][ei] = v
    if images:
        for (qi, ei, _), v in zip(images, col.embedder.embed_images([x for _, _, x in images])):
            per[qi][ei] = v
    if likes:
        for (qi, ei, _), v in zip(likes, col.store.vectors([x for _, _, x in likes])):
            per[qi][ei] = v
    out: dict[int, np.ndarray] = {}
    for qi, q in enumerate(queries):
        if q.mode == "text":
            continue
        vs = np.stack(per[qi]).astype(np.float32)  # type: ignore[arg-type]
        out[qi] = vs[0] if len(vs) == 1 and not q.negative else combine(vs, q)
    return out
