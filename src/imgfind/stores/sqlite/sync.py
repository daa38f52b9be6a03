"""Keeping the derived faiss index in step with the rows (catch-up, rebuild, save)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..vector_index import FLAT, IVF, VectorIndex
from .codec import _CHUNK, _chunks, _qs, decode_vectors
from .staging import Staging

__all__ = ["IndexSync"]


class IndexSync(Staging):
    """The vector index of a store handle: loaded, caught up from ``seq``, rebuilt, saved."""

    def _sync(self) -> VectorIndex:
        """Bring the in-memory index in step with the rows (cheap when nothing changed)."""
        dv = self._con.execute("PRAGMA data_version").fetchone()[0]
        if self._ix is not None and dv == self._data_version and not self._local_writes:
            return self._ix
        self._data_version, self._local_writes = dv, False
        if self._ix is None:
            self._ix = self._load_index()
        try:
            with self._tx("DEFERRED") as con:   # one snapshot for the whole catch-up
                if self._follow_model(con):     # another handle switched the model
                    self._ix = None
                seq = self._meta_int(con, "seq")
                floor = self._meta_int(con, "floor")
                ix = self._ix
                if ix is not None and ix.seq < floor:
                    ix = self._load_index()     # the saved file may be past a clear()
                if ix is None or ix.seq < floor or ix.seq > seq:
                    ix = self._build(con, seq)
                elif ix.seq < seq:
                    self._unsaved += self._catch_up(con, ix, seq)
                self._ix = ix
                ix = self._maybe_rebuild(con, ix, seq)
        except BaseException:
            # A half-applied catch-up must not be reused: reload or rebuild next time.
            self._ix, self._unsaved = None, 0
            raise
        # A save rewrites the whole file: on big indexes wait for a tenth to change.
        if self._unsaved >= max(self.options.save_every, ix.ntotal // 10):
            self._save_index()
        return ix

    def _catch_up(self, con: sqlite3.Connection, ix: VectorIndex, seq: int) -> int:
        gone = [r[0] for r in con.execute(
            "SELECT rowid FROM tombstones WHERE seq > ?", (ix.seq,))]
        changes = len(gone)
        if gone:
            ix.remove(np.array(gone, dtype=np.int64))
        old_max = ix.max_rowid
        cur = con.execute("SELECT i.rowid, v.v FROM items i JOIN vectors v "
                          "ON v.rowid = i.rowid WHERE i.seq > ?", (ix.seq,))
        while rows := cur.fetchmany(_CHUNK):
            rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            replaced = rowids[rowids <= old_max]
            if len(replaced):
                ix.remove(replaced)
            ix.add(rowids, decode_vectors([r[1] for r in rows], self.dim, rowids))
            changes += len(rows)
        ix.seq = seq
        return changes

    def _maybe_rebuild(self, con: sqlite3.Connection, ix: VectorIndex, seq: int) -> VectorIndex:
        n, o = ix.ntotal, self.options
        if ix.kind == FLAT:
            stale = n >= o.flat_threshold
        else:
            stale = n < o.flat_threshold // 2 or n > o.retrain_factor * max(1, ix.trained_for)
        if stale:
            ix = self._build(con, seq)
            self._ix = ix
        return ix

    def _build(self, con: sqlite3.Connection, seq: int) -> VectorIndex:
        """Full build from the rows (inside the caller's read snapshot), then save."""
        n = con.execute("SELECT count(*) FROM vectors").fetchone()[0]
        kind = IVF if n >= self.options.flat_threshold else FLAT

        def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            cur = con.execute("SELECT rowid, v FROM vectors ORDER BY rowid")
            while rows := cur.fetchmany(_CHUNK):
                rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                yield rowids, decode_vectors([r[1] for r in rows], self.dim, rowids)

        def sample(m: int) -> np.ndarray:
            all_ids = np.fromiter((r[0] for r in con.execute("SELECT rowid FROM vectors")),
                                  dtype=np.int64)
            rng = np.random.default_rng(seq)
            pick = rng.choice(all_ids, size=min(m, len(all_ids)), replace=False)
            return self._load_vectors(pick)[1]

        ix = VectorIndex.build(self.dim, kind, n, chunks, sample, seq)
        self._ix = ix
        self._unsaved = 0
        self._save_index()
        return ix

    def _load_index(self) -> VectorIndex | None:
        try:
            return VectorIndex.load(self._index_path, self.dim, self._owner)
        except (OSError, ValueError, EOFError):
            return None      # missing or damaged: derived data, rebuilt from the rows

    def _save_index(self) -> None:
        if self._ix is None:
            return
        try:
            self._ix.save(self._index_path, self._owner)
            self._unsaved = 0
        except OSError:
            # A read-only or full disk must not fail a search: the rows stay the truth.
            pass

    def _load_vectors(self, rowids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rowids found, their float32 vectors), in rowid order."""
        got = np.empty(len(rowids), dtype=np.int64)
        out = np.empty((len(rowids), self.dim), dtype=np.float32)
        n = 0
        for ids, vecs in self._iter_vectors(rowids):
            got[n:n + len(ids)], out[n:n + len(ids)] = ids, vecs
            n += len(ids)
        return got[:n], out[:n]

    def _iter_vectors(self, rowids: np.ndarray, chunk: int = 1024
                      ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rowids found, float32 vectors) ``chunk`` rows at a time, in rowid order: a
        whole set's blobs at once (and their join) would double the memory of a load."""
        for part in _chunks(np.sort(rowids).tolist(), chunk):
            rows = self._con.execute(
                f"SELECT rowid, v FROM vectors WHERE rowid IN ({_qs(len(part))})",
                part).fetchall()
            ids = [r[0] for r in rows]
            yield (np.array(ids, dtype=np.int64),
                   decode_vectors([r[1] for r in rows], self.dim, ids))

    def _nprobe(self, ix: VectorIndex) -> int:
        return min(ix.nlist, self.options.nprobe or ix.nprobe)

    def _describe(self, ix: VectorIndex) -> dict[str, Any]:
        """index_info()'s shape (see stores.base): sqlite's own facts under "details"."""
        ivf = ix.is_ivf
        return {"backend": "sqlite", "kind": ix.kind, "size": ix.ntotal,
                "details": {"seq": ix.seq, "nlist": ix.nlist,
                            "nprobe": self._nprobe(ix) if ivf else None,
                            "tuned_nprobe": ix.nprobe if ivf else None,
                            "trained_for": ix.trained_for if ivf else None,
                            "file": self._index_path.exists()}}
