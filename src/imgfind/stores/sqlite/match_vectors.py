"""Exact filtered search over a small match set held in memory.

When a filter matches few rows (at most :data:`MAX_ROWS`), scanning the whole
vector index with a bitmap costs far more than scoring just those rows. The
second time the same filter is searched at the same ``seq``, its rows' float32
vectors are read once and kept (least recently used first out, within
:data:`BUDGET_BYTES`); every later query scores them exactly with one matrix
product, so the answer is exact (recall 1.0) and touches neither the index nor
SQLite until a write moves ``seq``. A filter seen once is only remembered, so
one-off filters never pay the read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["BUDGET_BYTES", "MAX_ROWS", "MatchVectors"]

MAX_ROWS = 20_000
BUDGET_BYTES = 96 << 20

Loader = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class MatchVectors:
    """(filter, seq) -> the matching rowids and their vectors, for repeated filters."""

    def __init__(self, budget: int = BUDGET_BYTES, max_rows: int = MAX_ROWS):
        self.budget, self.max_rows = budget, max_rows
        self._entries: OrderedDict[Any, tuple[Any, np.ndarray | None, np.ndarray | None]] = \
            OrderedDict()
        self._bytes = 0

    def get(self, node: Any, version: Any, bits: np.ndarray,
            load: Loader) -> tuple[np.ndarray, np.ndarray] | None:
        """The (rowids, vectors) of the rows set in ``bits``, or None the first time this
        filter is seen at ``version`` (or when it matches too many rows)."""
        n = int(np.count_nonzero(bits))
        if n == 0 or n > self.max_rows:
            return None
        entry = self._entries.get(node)
        if entry is not None and entry[0] == version and entry[1] is not None:
            self._entries.move_to_end(node)
            assert entry[2] is not None
            return entry[1], entry[2]
        if entry is None or entry[0] != version:
            self._put(node, (version, None, None))     # seen once: remember, do not load
            return None
        rowids, vecs = load(np.flatnonzero(bits))
        self._put(node, (version, rowids, np.ascontiguousarray(vecs)))
        return rowids, vecs

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _put(self, node: Any, entry: tuple[Any, np.ndarray | None, np.ndarray | None]) -> None:
        old = self._entries.pop(node, None)
        if old is not None and old[2] is not None:
            self._bytes -= old[2].nbytes
        self._entries[node] = entry
        if entry[2] is not None:
            self._bytes += entry[2].nbytes
        while self._bytes > self.budget and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            if dropped[2] is not None:
                self._bytes -= dropped[2].nbytes
        while len(self._entries) > 1024:                 # bound the remembered filters
            _, dropped = self._entries.popitem(last=False)
            if dropped[2] is not None:
                self._bytes -= dropped[2].nbytes
