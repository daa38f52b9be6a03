"""An exact, bounded cache of text-query vectors (least recently used goes first).

Users repeat queries and a results page re-issues its query for each page, so a
text embedder keeps the vectors of its recent texts. Each embedder owns one cache
(one model, one cache), keyed by the text exactly as its tokenizer would see it
after cleaning: a hit returns the very vector that text produced.

>>> cache = TextVectorCache(2)
>>> cache.put("a dog", np.ones(2, np.float32))
>>> cache.get("a dog")
array([1., 1.], dtype=float32)
>>> cache.get("a cat") is None
True
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

__all__ = ["DEFAULT_SIZE", "TextVectorCache"]

#: texts kept per model: 1024 x 512-d float32 is 2 MiB
DEFAULT_SIZE = 1024


class TextVectorCache:
    """Up to ``size`` vectors by text; ``size`` 0 keeps none. Thread-safe.

    Stored vectors are read-only copies, so no caller can change what a later
    hit returns.
    """

    def __init__(self, size: int = DEFAULT_SIZE):
        if size < 0:
            raise ValueError(f"cache size must be >= 0, got {size}")
        self.size = size
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, text: str) -> np.ndarray | None:
        """The vector stored for ``text`` (now the most recently used), or None."""
        with self._lock:
            vec = self._items.get(text)
            if vec is None:
                self.misses += 1
                return None
            self._items.move_to_end(text)
            self.hits += 1
            return vec

    def put(self, text: str, vector: np.ndarray) -> None:
        """Keep a copy of ``vector`` for ``text``, dropping the least recently used past
        the size."""
        if self.size == 0:
            return
        vec = np.array(vector, dtype=np.float32, copy=True)
        vec.setflags(write=False)
        with self._lock:
            self._items[text] = vec
            self._items.move_to_end(text)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
