"""Filtered search over a small match set held in memory.

When a filter matches few rows (at most :data:`MAX_ROWS`), scanning the whole
vector index with a bitmap costs far more than scoring just those rows. The
second time the same filter is searched at the same ``seq``, its rows' vectors
are read once and kept (least recently used first out, within
:data:`BUDGET_BYTES`), so later queries touch neither the index nor SQLite
until a write moves ``seq``:

* up to :data:`EXACT_ROWS` rows as float32, scored exactly by one product;
* more as 8-bit scalar-quantizer codes (a quarter of the bytes, so a quarter
  of the memory traffic per query: 0.3 ms instead of 1.3 ms for 10,000 rows),
  whose best candidates the planner re-ranks exactly (see
  :func:`~imgfind.stores.vector_index.code_error`).

A filter seen once is only remembered, so one-off filters never pay the read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .filter_cache import Match

__all__ = ["BUDGET_BYTES", "EXACT_ROWS", "MAX_ROWS", "MatchSet", "MatchVectors"]

MAX_ROWS = 20_000
EXACT_ROWS = 2_048
BUDGET_BYTES = 48 << 20

#: rowids wanted -> (rowids found, float32 vectors) chunks, in rowid order
Chunks = Callable[[np.ndarray], Iterable[tuple[np.ndarray, np.ndarray]]]
#: rowids wanted -> their MatchSet (the store builds it inside one read snapshot)
Builder = Callable[[np.ndarray], "MatchSet"]


@dataclass(frozen=True)
class MatchSet:
    """The rows of one filter: float32 ``vectors`` (small sets) or ``codes``, a faiss
    8-bit scalar-quantizer index whose ids are positions in ``rowids``."""

    rowids: np.ndarray
    vectors: np.ndarray | None = None
    codes: Any = None

    @property
    def nbytes(self) -> int:
        own = self.rowids.nbytes
        if self.vectors is not None:
            return own + self.vectors.nbytes
        return own + int(self.codes.ntotal) * int(self.codes.code_size)

    @classmethod
    def of(cls, wanted: np.ndarray, chunks: Chunks) -> MatchSet:
        """The set of rows ``wanted``, read through ``chunks`` (called twice for codes:
        the caller holds one read snapshot across both)."""
        if len(wanted) <= EXACT_ROWS:
            parts = list(chunks(wanted))
            if not parts:
                return cls(np.empty(0, dtype=np.int64), vectors=np.empty((0, 0), np.float32))
            return cls(np.concatenate([p[0] for p in parts]),
                       vectors=np.concatenate([p[1] for p in parts]))
        return _encoded(wanted, chunks)


def _encoded(wanted: np.ndarray, chunks: Chunks) -> MatchSet:
    """8-bit codes of the rows, encoded chunk by chunk: never the whole set as float32.

    The quantizer is trained as faiss trains QT_8bit (per-dimension min and range
    of the data), from a first pass; the second pass encodes. Held in an IVF with
    one list, not IndexScalarQuantizer: the flat SQ index opens an OpenMP team
    even for one query, which on a busy 2-core machine cost 20 ms a query where
    IVF's single-query path (no team) takes under 1.
    """
    import faiss

    lo = hi = None
    rowids = []
    for ids, x in chunks(wanted):
        rowids.append(ids)
        lo = x.min(axis=0) if lo is None else np.minimum(lo, x.min(axis=0))
        hi = x.max(axis=0) if hi is None else np.maximum(hi, x.max(axis=0))
    assert lo is not None and hi is not None           # more than EXACT_ROWS rows wanted
    found = np.concatenate(rowids)
    dim = len(lo)
    index: Any = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, 1,
                                          faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT, False)
    faiss.copy_array_to_vector(np.concatenate([lo, hi - lo]).astype(np.float32),
                               index.sq.trained)
    index.quantizer.add(np.zeros((1, dim), dtype=np.float32))
    index.is_trained = True
    codes = np.empty((len(found), index.code_size), dtype=np.uint8)
    n = 0
    for ids, x in chunks(found):
        codes[n:n + len(ids)] = index.sq.compute_codes(np.ascontiguousarray(x))
        n += len(ids)
    if n != len(found):
        raise RuntimeError("match set changed between reads")   # the caller's snapshot
    at = np.arange(n, dtype=np.int64)                            # ids: positions in rowids
    index.invlists.add_entries(0, n, faiss.swig_ptr(at), faiss.swig_ptr(codes))
    index.ntotal = n
    return MatchSet(found, codes=index)


class MatchVectors:
    """(filter, seq) -> the :class:`MatchSet` of its rows, for repeated filters."""

    def __init__(self, budget: int = BUDGET_BYTES, max_rows: int = MAX_ROWS):
        self.budget, self.max_rows = budget, max_rows
        self._entries: OrderedDict[Any, tuple[Any, MatchSet | None]] = OrderedDict()
        self._bytes = 0

    def get(self, node: Any, version: Any, match: Match, build: Builder) -> MatchSet | None:
        """The rows of ``match``, or None the first time this filter is seen at
        ``version`` (or when it matches too many rows)."""
        n = match.count
        if n == 0 or n > self.max_rows:
            return None
        entry = self._entries.get(node)
        if entry is not None and entry[0] == version and entry[1] is not None:
            self._entries.move_to_end(node)
            return entry[1]
        if entry is None or entry[0] != version:
            self._put(node, (version, None))     # seen once: remember, do not load
            return None
        found = build(np.flatnonzero(match.bits))
        self._put(node, (version, found))
        return found

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _put(self, node: Any, entry: tuple[Any, MatchSet | None]) -> None:
        self._drop(self._entries.pop(node, None))
        self._entries[node] = entry
        if entry[1] is not None:
            self._bytes += entry[1].nbytes
        while (self._bytes > self.budget or len(self._entries) > 1024) \
                and len(self._entries) > 1:           # bound the bytes and the filters
            self._drop(self._entries.popitem(last=False)[1])

    def _drop(self, entry: tuple[Any, MatchSet | None] | None) -> None:
        if entry is not None and entry[1] is not None:
            self._bytes -= entry[1].nbytes
