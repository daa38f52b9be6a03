"""One collection's store handle, assembled from its parts, with its health checks."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..base import CollectionInfo
from .codec import _CHUNK, _fts_body, _now, decode_vectors, encode_vectors
from .core import StoreOptions
from .migrations import BASE_VERSION
from .migrations import apply as apply_migrations
from .ocr import OcrRows
from .schema import DB_FILE, INDEX_FILE, SCHEMA, connect

__all__ = ["SQLiteStore"]


class SQLiteStore(OcrRows):
    """One collection: rows in SQLite, vectors searched through a derived faiss index.

    Thread-safe (one lock per handle); several processes may share the store.
    Open it through :class:`SQLiteBackend`.
    """

    # ----------------------------------------------------------------- creation
    @classmethod
    def create(cls, folder: Path, info: CollectionInfo,
               options: StoreOptions | None = None) -> SQLiteStore:
        """Create the collection's database in ``folder`` (which must hold no data: the
        backend checks; files here are leftovers of a create that was killed)."""
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / DB_FILE
        for stale in (db, folder / f"{DB_FILE}-wal", folder / f"{DB_FILE}-shm",
                      folder / INDEX_FILE):
            stale.unlink(missing_ok=True)   # leftovers of a create that was killed
        con = connect(db)
        try:
            con.execute("BEGIN IMMEDIATE")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    con.execute(stmt)
            meta = {"schema": BASE_VERSION, "name": info.name, "model": info.model,
                    "dim": info.dim, "model_path": info.model_path,
                    "created": info.created or _now(), "seq": 0, "floor": 0,
                    "ocr": int(info.ocr)}
            con.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta.items())
            apply_migrations(con, BASE_VERSION)     # one way to every version: the steps
            con.execute("COMMIT")
        finally:
            con.close()
        return cls(folder, options)

    # ------------------------------------------------------------------- health
    def check(self) -> dict[str, Any]:
        """Health: integrity, items without vectors, full-text and vector index in step.

        The common shape (stores.base); ``details``: {"vectors": n, "fts": n,
        "integrity": "ok" or SQLite's complaint, "float32_vectors": rows still stored
        the pre-schema-5 way (:meth:`rebuild` converts them)}.
        """
        problems: list[str] = []
        with self._lock:
            con = self._con
            items = con.execute("SELECT count(*) FROM items").fetchone()[0]
            pragma = "integrity_check" if items < 200_000 else "quick_check"
            res = [r[0] for r in con.execute(f"PRAGMA {pragma}")]
            integrity = "ok" if res == ["ok"] else "; ".join(res[:5])
            if integrity != "ok":
                problems.append(f"database integrity: {integrity}")
            for _ in range(3):    # other writers may commit between the sync and the counts
                ix = self._sync()
                with self._tx("DEFERRED"):
                    seq = self._meta_int(con, "seq")
                    items = con.execute("SELECT count(*) FROM items").fetchone()[0]
                    vectors = con.execute("SELECT count(*) FROM vectors").fetchone()[0]
                    novec = con.execute("SELECT count(*) FROM items WHERE rowid NOT IN "
                                        "(SELECT rowid FROM vectors)").fetchone()[0]
                    fts = con.execute("SELECT count(*) FROM fts").fetchone()[0]
                    sizes = dict(con.execute(
                        "SELECT length(v), count(*) FROM vectors GROUP BY 1").fetchall())
                if seq == ix.seq:
                    break
            old = sizes.pop(4 * self.dim, 0)
            sizes.pop(2 * self.dim, None)
            if sizes:
                bad = [r[0] for r in con.execute(
                    "SELECT i.id FROM vectors v JOIN items i ON i.rowid = v.rowid "
                    "WHERE length(v.v) NOT IN (?, ?) LIMIT 5", (2 * self.dim, 4 * self.dim))]
                problems.append(
                    f"{sum(sizes.values())} stored vectors have a wrong size for "
                    f"{self.dim}-d (items {', '.join(map(repr, bad))}"
                    f"{', ...' if sum(sizes.values()) > len(bad) else ''}); delete those "
                    "items and add them again")
            if novec:
                problems.append(f"{novec} items have no vector; re-add them")
            if fts != items:
                problems.append(f"full-text index holds {fts} rows for {items} items; "
                                "run rebuild")
            in_step = ix.ntotal == vectors and ix.seq == seq
            if not in_step:
                problems.append(f"vector index holds {ix.ntotal} vectors for {vectors} "
                                "stored ones; run rebuild")
            index = self._describe(ix) | {"in_step": in_step}
        return {"ok": not problems, "items": items, "backend": "sqlite", "index": index,
                "problems": problems,
                "details": {"vectors": vectors, "fts": fts, "integrity": integrity,
                            "float32_vectors": old}}

    def index_info(self) -> dict[str, Any]:
        """The vector index in brief, without the integrity scan :meth:`check` does.

        Cheap enough for a status page. The common shape (stores.base); ``details``:
        {"seq", "nlist", "nprobe", "tuned_nprobe", "trained_for", "file"}, where
        ``nprobe`` is the one searches use, ``tuned_nprobe`` the one tuned at build time.
        """
        with self._lock:
            return self._describe(self._sync())

    def rebuild(self) -> dict[str, Any]:
        """Rebuild the full-text index and the vector index from the rows, after
        converting vectors still stored as float32 (before schema 5) to float16.

        The common shape (stores.base); ``details``: {"fts": rows written,
        "converted": float32 vectors rewritten as float16}.
        """
        t0 = time.perf_counter()
        with self._lock:
            converted = self._convert_float32()
            with self._tx() as con:
                con.execute("DELETE FROM fts")
                cur = con.execute("SELECT rowid, source, metadata, exif, file FROM items")
                fts = 0
                while rows := cur.fetchmany(_CHUNK):
                    con.executemany(
                        "INSERT INTO fts(rowid, path, body) VALUES (?, ?, ?)",
                        [(r[0], r[1], _fts_body(json.loads(r[2]), json.loads(r[3]),
                                                json.loads(r[4]))) for r in rows])
                    fts += len(rows)
            self._rebuild_ocr_fts()
            with self._tx("DEFERRED") as con:
                ix = self._build(con, self._meta_int(con, "seq"))
            index = self._describe(ix)
        return {"items": fts, "backend": "sqlite", "index": index,
                "seconds": round(time.perf_counter() - t0, 3),
                "details": {"fts": fts, "converted": converted}}

    def _convert_float32(self, batch: int = 10_000) -> int:
        """Rewrite float32 vector rows as float16, ``batch`` rows per transaction.

        A kill between batches leaves some rows converted and the rest float32; both
        are read, and the next rebuild carries on. The rows keep their ``seq``
        (a new stamp would make a re-embed in progress embed every item again), so
        another handle's index keeps the float32 values, which differ by < 1e-3,
        until it rebuilds. The file does not shrink: SQLite reuses the freed space
        only after a ``VACUUM`` (sqlite3 items.db VACUUM, with the collection closed).
        """
        converted, last, full = 0, 0, 4 * self.dim
        while True:
            with self._tx() as con:
                rows = con.execute(
                    "SELECT rowid, v FROM vectors WHERE rowid > ? AND length(v) = ? "
                    "ORDER BY rowid LIMIT ?", (last, full, batch)).fetchall()
                if not rows:
                    break
                rowids = [r[0] for r in rows]
                blobs = encode_vectors(decode_vectors([r[1] for r in rows], self.dim, rowids))
                con.executemany("UPDATE vectors SET v=? WHERE rowid=?",
                                zip(blobs, rowids, strict=True))
            converted += len(rows)
            last = rowids[-1]
        if converted:
            self._match_vectors.clear()     # it holds the float32 values read before
        return converted

    def flush(self) -> None:
        """Save the vector index now if it absorbed changes since its last save.

        Optional: the index is saved on close and every ``save_every`` changes,
        and a lost save only costs a catch-up from the rows on the next open.
        """
        with self._lock:
            if self._ix is not None and self._unsaved:
                self._save_index()

    def close(self) -> None:
        """Save the index if it changed since the last save, then close the database."""
        with self._lock:
            if self._closed:
                return
            if self._ix is not None and self._unsaved:
                self._save_index()
            self._closed = True
            self._conn.close()

