"""Native threads of a request: one query, one core.

faiss runs each search on OpenMP threads. For a single query that split gains
little even on an idle machine, and a server answers many queries at once: there
the OpenMP threads of each request contend with the others' and with the text
tower's threads (on a busy 2-core machine a 10k-vector flat search took 10-21 ms
on 2 OpenMP threads, 1.2 ms on one). The OpenMP thread count is a per-thread
setting (libgomp keeps it in the calling thread's ICVs), so a request thread can
lower its own without touching index builds or batch work elsewhere in the process.

>>> def work():                       # doctest: +SKIP
...     one_native_thread()
...     return collection.run([query])
"""

from __future__ import annotations

import threading

__all__ = ["one_native_thread"]

_done = threading.local()


def one_native_thread() -> None:
    """Make faiss (OpenMP) searches started from the calling thread single-threaded.

    Cheap after the first call in a thread (the thread pool's threads are reused).
    """
    if getattr(_done, "set", False):
        return
    import faiss

    faiss.omp_set_num_threads(1)
    _done.set = True
