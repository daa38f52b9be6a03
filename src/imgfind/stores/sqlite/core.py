"""The state every part of an SQLite store handle shares: connection, lock, transactions."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ...errors import StoreError, StoreTooNew
from ..vector_index import VectorIndex
from .filter_cache import FilterCache
from .match_vectors import MatchVectors
from .migrations import migrate
from .schema import DB_FILE, INDEX_FILE, READ_CACHE, WRITE_CACHE, connect, probe, read_info

__all__ = ["StoreCore", "StoreOptions"]


class StoreOptions:
    """Tuning knobs of the embedded store (the defaults suit 1k to 1M+ items).

    * ``flat_threshold``: at or above this many items the vector index is IVF-SQ6,
      below it exact (flat); an IVF index goes back to flat below half of it.
    * ``save_every``: save the index file after this many absorbed changes, or a
      tenth of the index if more (always on close and after a full build).
    * ``auto_index_min``: from this many items on, JSON fields used in filters
      get SQLite expression indexes automatically.
    * ``retrain_factor``: rebuild (retrain) an IVF index once the collection
      holds this many times the items it was trained on.
    * ``nprobe``: IVF lists probed per unfiltered query (filtered queries probe
      more as selectivity falls). ``None``, the default, uses the value tuned
      when the index was built; set it to trade recall for speed. May be
      changed on an open store: ``store.options.nprobe = 64``.

    >>> StoreOptions(flat_threshold=2000).flat_threshold
    2000
    """

    def __init__(self, flat_threshold: int = 50_000,
                 save_every: int = 10_000, auto_index_min: int = 100_000,
                 retrain_factor: float = 4.0, nprobe: int | None = None):
        self.flat_threshold = flat_threshold
        self.save_every = save_every
        self.auto_index_min = auto_index_min
        self.retrain_factor = retrain_factor
        if nprobe is not None and nprobe < 1:
            raise ValueError("nprobe must be at least 1 (or None for the tuned value)")
        self.nprobe = nprobe



class StoreCore:
    """Connection, lock, options and transactions of one store handle (see SQLiteStore)."""

    def __init__(self, folder: Path, options: StoreOptions | None = None):
        self.folder = Path(folder)
        self.options = options or StoreOptions()
        self._lock = threading.RLock()
        db = self.folder / DB_FILE
        # Looked at read-only first: a store from a newer imgfind must stay byte-identical.
        found = probe(db)
        if found is None:
            raise StoreError(f"collection {self.folder.name!r} holds no data (its creation "
                             "was interrupted); create it again")
        if found.problem:
            raise StoreTooNew(found.problem)
        self._conn = connect(db)
        self._closed = False
        try:
            migrate(self._conn, found.name)
            self.info = read_info(self._conn)
        except BaseException:
            self._conn.close()
            raise
        self.dim = self.info.dim
        self._index_path = self.folder / INDEX_FILE
        # Ties the index file to this very collection (not a same-named, re-created one).
        self._owner = f"{self.info.name}@{self.info.created}"
        self._ix: VectorIndex | None = None
        self._data_version = -1
        self._local_writes = True
        self._unsaved = 0
        self._indexed_exprs = self._load_expression_indexes()
        self._index_failed: set[str] = set()
        self._filter_cache = FilterCache()
        self._match_vectors = MatchVectors()
        _remove_dead_temp_files(self.folder)

    def _load_expression_indexes(self) -> set[str]:
        rows = self._con.execute(
            "SELECT sql FROM sqlite_master WHERE type='index' AND name LIKE 'ix_field_%'")
        return {r[0] for r in rows if r[0]}

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (the backend then opens a fresh handle)."""
        return self._closed

    @property
    def _con(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"collection {self.info.name!r} is closed; open it again")
        return self._conn

    # ------------------------------------------------------------- transactions
    @contextmanager
    def _tx(self, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """A transaction; IMMEDIATE for writes so concurrent writers queue, not deadlock."""
        con = self._con
        write = mode == "IMMEDIATE"
        try:
            con.execute(f"BEGIN {mode}")
        except sqlite3.OperationalError as e:
            raise _store_error(self.info.name, e) from e
        if write:
            con.execute(f"PRAGMA cache_size={WRITE_CACHE}")
        try:
            yield con
            con.execute("COMMIT")
        except BaseException as e:
            if con.in_transaction:
                con.execute("ROLLBACK")
            if isinstance(e, sqlite3.OperationalError):
                raise _store_error(self.info.name, e) from e
            raise
        finally:
            if write:        # shrinking frees the pages beyond the read cache
                with suppress(sqlite3.Error):      # a closed connection keeps nothing
                    con.execute(f"PRAGMA cache_size={READ_CACHE}")
        if mode == "IMMEDIATE":
            self._local_writes = True

    def _meta_int(self, con: sqlite3.Connection, key: str) -> int:
        row = con.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _bump_seq(self, con: sqlite3.Connection, n: int) -> int:
        """Reserve ``n`` sequence numbers; returns the last one before them."""
        seq0 = self._meta_int(con, "seq")
        con.execute("UPDATE meta SET value=? WHERE key='seq'", (seq0 + n,))
        return seq0


def _store_error(name: str, e: sqlite3.OperationalError) -> StoreError:
    """SQLite's operational failures (locked, disk full, I/O) as a typed error."""
    msg = str(e)
    if "locked" in msg or "busy" in msg:
        return StoreError(f"collection {name!r} stayed locked by another writer for 30 s; "
                          "try again when the other import finishes")
    return StoreError(f"collection {name!r}: the database failed ({msg}); check free disk "
                      "space and permissions, then run check")



def _remove_dead_temp_files(folder: Path) -> None:
    """Delete index temp files left by processes killed while saving."""
    for tmp in folder.glob(f".{INDEX_FILE}.*.tmp"):
        try:
            pid = int(tmp.name.split(".")[-2])
            os.kill(pid, 0)          # raises if no such process: the file is orphaned
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            continue

