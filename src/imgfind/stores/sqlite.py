"""The embedded store: one SQLite file per collection, plus a derived faiss index.

Layout::

    <home>/collections/<name>/items.db        source of truth (WAL mode)
    <home>/collections/<name>/vectors.index   derived vector index (rebuildable)

``items.db`` holds the rows (``items``: metadata, EXIF and file facts as
JSON, image facts), their float32 vectors (``vectors``), thumbnails and stored
originals (``blobs``), an FTS5 table over the source path and the text of
metadata, EXIF and the file name (``fts``), and ``tombstones`` of deleted
rowids. Every change bumps a sequence number (``meta.seq``) and stamps the
changed rows with it; the vector index records the ``seq`` it reflects, so any
handle (this process or another one sharing the store) catches up by reading
only what changed since. A kill at any moment loses nothing that was
committed: the index file is replaced atomically and, if missing, stale,
damaged or of the wrong kind, is caught up or rebuilt from the rows on open.

Filtered search plans by selectivity: the filter runs in SQL (see
:mod:`imgfind.filters`) and yields the matching rowids; the flat index (exact)
or the IVF index restricted by a rowid bitmap, with ``nprobe`` raised as
selectivity falls (up to every list) and an exact re-rank, then scores only
those rows. (Scoring the matches from float32 rows read out of SQLite was
measured 10-100x slower than the bitmap-restricted IVF scan, even at 1%.)
On large collections (>= ``auto_index_min`` items) the JSON fields a filter
reads get SQLite expression indexes the first time they are used, so the
filter itself stays fast; :meth:`SQLiteStore.index_field` creates one
explicitly.

>>> import tempfile, numpy as np
>>> from imgfind.stores.base import CollectionInfo, Record
>>> backend = SQLiteBackend(tempfile.mkdtemp())
>>> store = backend.create(CollectionInfo(name="demo", model="toy", dim=2))
>>> store.put([Record(id="a", source="/x/a.jpg", vector=np.array([1, 0], np.float32),
...                   metadata={"breed": "labrador"})])
['a']
>>> store.search(np.array([[1, 0]], np.float32), k=1, where={"breed": "labrador"})
[[('a', 1.0)]]
>>> backend.close()
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from ..errors import AlreadyExists, InvalidInput, ModelMismatch, NotFound, StoreError
from ..filters import compile_filter, field_expression, json_fields
from ..types import Item
from .base import CollectionInfo, Record, SourceState
from .vector_index import FLAT, IVF, VectorIndex, rerank_depth

__all__ = ["NAME_RE", "SQLiteBackend", "SQLiteStore", "StoreOptions", "fts_query"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DB_FILE = "items.db"
INDEX_FILE = "vectors.index"
_SCHEMA_VERSION = 1
_CHUNK = 65536          # rows per chunk when streaming vectors (bounded memory)
_IN_CHUNK = 900         # ids per "IN (...)" list, well under SQLite's variable limit
_MAX_AUTO_INDEXES = 32
# Under a filter the nearest matches lie farther away, across more lists, than the
# nearest items overall: probe this many times base_nprobe / selectivity lists.
_FILTER_PROBE = 4

_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE items(
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: the vector index keys on it
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    exif TEXT NOT NULL DEFAULT '{}',
    file TEXT NOT NULL DEFAULT '{}',
    width INTEGER, height INTEGER, format TEXT, sha256 TEXT, taken TEXT,
    stored INTEGER NOT NULL DEFAULT 0,
    added TEXT NOT NULL, updated TEXT NOT NULL,
    seq INTEGER NOT NULL);
CREATE INDEX items_seq ON items(seq);
CREATE INDEX items_source ON items(source);
CREATE INDEX items_sha256 ON items(sha256);
CREATE TABLE vectors(rowid INTEGER PRIMARY KEY REFERENCES items(rowid) ON DELETE CASCADE,
                     v BLOB NOT NULL);
CREATE TABLE blobs(rowid INTEGER PRIMARY KEY REFERENCES items(rowid) ON DELETE CASCADE,
                   thumbnail BLOB, original BLOB);
CREATE TABLE tombstones(rowid INTEGER NOT NULL, seq INTEGER NOT NULL);
CREATE INDEX tombstones_seq ON tombstones(seq);
CREATE VIRTUAL TABLE fts USING fts5(path, body, tokenize='unicode61 remove_diacritics 2');
"""

_ITEM_COLS = ("id, source, metadata, exif, file, width, height, format, sha256, taken, "
              "stored, added, updated")


class StoreOptions:
    """Tuning knobs of the embedded store (the defaults suit 1k to 1M+ items).

    * ``flat_threshold``: at or above this many items the vector index is IVF-SQ8,
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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _chunks(seq: Sequence[Any], n: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _qs(n: int) -> str:
    return ",".join("?" * n)


def _clean(value: Any) -> Any:
    """EXIF / file facts as valid JSON: non-finite floats become null, odd types strings."""
    if not value:
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


# One encoder for every row: json.dumps with options would build a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _dumps(value: dict[str, Any], what: str, id: str) -> str:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} of item {id!r} must be a JSON object (dict)")
    if not value:
        return "{}"
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"{what} of item {id!r} is not plain JSON ({e}); use strings, "
                           "finite numbers, booleans, null, lists and objects") from e


def _text_values(value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _text_values(v, out)
    elif isinstance(value, list):
        for v in value:
            _text_values(v, out)
    elif isinstance(value, str):
        out.append(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out.append(str(value))


def _fts_body(metadata: dict[str, Any], exif: dict[str, Any], file: dict[str, Any]) -> str:
    out: list[str] = []
    _text_values(metadata, out)
    _text_values(exif, out)
    name = file.get("name") if isinstance(file, dict) else None
    if isinstance(name, str):
        out.append(name)
    return "\n".join(out)


def fts_query(text: str, max_terms: int = 32) -> str | None:
    """User text -> a safe FTS5 query: every word must match, each as a prefix.

    No FTS syntax reaches SQLite: words are quoted, operators become plain words.

    >>> fts_query('dog beach')
    '"dog"* "beach"*'
    >>> fts_query('NEAR(" OR *') is None
    False
    >>> fts_query('*** ""') is None
    True
    """
    words = re.findall(r"\w+", text or "")[:max_terms]
    if not words:
        return None
    return " ".join(f'"{w}"*' for w in words)


class SQLiteStore:
    """One collection: rows in SQLite, vectors searched through a derived faiss index.

    Thread-safe (one lock per handle); several processes may share the store.
    Open it through :class:`SQLiteBackend`.
    """

    def __init__(self, folder: Path, options: StoreOptions | None = None):
        self.folder = Path(folder)
        self.options = options or StoreOptions()
        self._lock = threading.RLock()
        self._conn = _connect(self.folder / DB_FILE)
        self._closed = False
        try:
            self.info = _read_info(self._conn)
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
        _remove_dead_temp_files(self.folder)

    # ----------------------------------------------------------------- creation
    @classmethod
    def create(cls, folder: Path, info: CollectionInfo,
               options: StoreOptions | None = None) -> SQLiteStore:
        """Create the collection's database in ``folder`` (which must not hold one)."""
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / DB_FILE
        for stale in (db, folder / f"{DB_FILE}-wal", folder / f"{DB_FILE}-shm",
                      folder / INDEX_FILE):
            stale.unlink(missing_ok=True)   # leftovers of a create that was killed
        con = _connect(db)
        try:
            con.execute("BEGIN IMMEDIATE")
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    con.execute(stmt)
            meta = {"schema": _SCHEMA_VERSION, "name": info.name, "model": info.model,
                    "dim": info.dim, "model_path": info.model_path,
                    "created": info.created or _now(), "seq": 0, "floor": 0}
            con.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", meta.items())
            con.execute("COMMIT")
        finally:
            con.close()
        return cls(folder, options)

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
        try:
            con.execute(f"BEGIN {mode}")
        except sqlite3.OperationalError as e:
            raise _store_error(self.info.name, e) from e
        try:
            yield con
            con.execute("COMMIT")
        except BaseException as e:
            if con.in_transaction:
                con.execute("ROLLBACK")
            if isinstance(e, sqlite3.OperationalError):
                raise _store_error(self.info.name, e) from e
            raise
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

    # -------------------------------------------------------------------- write
    def put(self, records: Sequence[Record]) -> list[str]:
        """Insert or replace (by id) in one transaction; returns the ids. All or nothing.

        A replaced item keeps its ``added`` time and its place in listing order.
        """
        if not records:
            return []
        ids = [r.id for r in records]
        for id in ids:
            if not isinstance(id, str) or not id or len(id) > 1024:
                raise InvalidInput(f"item ids must be non-empty strings up to 1024 characters, "
                                   f"got {id!r}")
        last = {r.id: r for r in records}      # a batch naming an id twice: the last one wins
        recs = list(last.values())
        vecs = self._check_vectors(recs)
        now = _now()
        rows, fts_rows, blob_rows = [], [], []
        for i, r in enumerate(recs):
            if not isinstance(r.source, str):
                raise InvalidInput(f"source of item {r.id!r} must be a string")
            exif = _clean(r.exif or {})
            file = _clean(r.file or {})
            rows.append((r.id, r.source, _dumps(r.metadata or {}, "metadata", r.id),
                         _dumps(exif, "exif", r.id), _dumps(file, "file facts", r.id),
                         r.width, r.height, r.format, r.sha256, r.taken,
                         int(r.original is not None), now, now, i + 1))
            fts_rows.append((r.source, _fts_body(r.metadata or {}, exif, file)))
            blob_rows.append((r.thumbnail, r.original))
        with self._lock, self._tx() as con:
            seq0 = self._bump_seq(con, len(recs))
            # AUTOINCREMENT: new rows get rowids above every earlier one, so rows at or
            # below this mark after the upsert are replacements.
            mark = con.execute("SELECT seq FROM sqlite_sequence WHERE name='items'").fetchone()
            mark = mark[0] if mark else 0
            con.executemany(
                f"INSERT INTO items({_ITEM_COLS}, seq) VALUES ({_qs(14)}) "
                "ON CONFLICT(id) DO UPDATE SET source=excluded.source, "
                "metadata=excluded.metadata, exif=excluded.exif, file=excluded.file, "
                "width=excluded.width, height=excluded.height, format=excluded.format, "
                "sha256=excluded.sha256, taken=excluded.taken, stored=excluded.stored, "
                "updated=excluded.updated, seq=excluded.seq",
                [row[:-1] + (seq0 + row[-1],) for row in rows])
            rowid_of = dict(con.execute("SELECT id, rowid FROM items WHERE seq > ?", (seq0,)))
            rowids = [rowid_of[r.id] for r in recs]
            existing = [x for x in rowids if x <= mark]
            if existing:
                con.executemany("DELETE FROM fts WHERE rowid=?", [(x,) for x in existing])
                con.executemany("DELETE FROM blobs WHERE rowid=?", [(x,) for x in existing])
            con.executemany("INSERT INTO fts(rowid, path, body) VALUES (?, ?, ?)",
                            [(x, *f) for x, f in zip(rowids, fts_rows, strict=True)])
            con.executemany("INSERT OR REPLACE INTO vectors(rowid, v) VALUES (?, ?)",
                            [(x, vecs[i].tobytes()) for i, x in enumerate(rowids)])
            con.executemany("INSERT INTO blobs(rowid, thumbnail, original) VALUES (?, ?, ?)",
                            [(x, *b) for x, b in zip(rowids, blob_rows, strict=True)
                             if b[0] is not None or b[1] is not None])
        return ids

    def _check_vectors(self, recs: Sequence[Record]) -> np.ndarray:
        out = np.empty((len(recs), self.dim), dtype=np.float32)
        for i, r in enumerate(recs):
            v = np.asarray(r.vector, dtype=np.float32).reshape(-1)
            if v.shape[0] != self.dim:
                raise ModelMismatch(
                    f"item {r.id!r} has a {v.shape[0]}-d vector but collection "
                    f"{self.info.name!r} uses model {self.info.model!r} with {self.dim}-d "
                    "vectors; embed with the collection's model")
            out[i] = v
        return _normalize(out, "vector")

    def set_metadata(self, id: str, metadata: dict[str, Any], merge: bool = False) -> None:
        """Replace (or, with ``merge``, update key by key) the user metadata of one item."""
        text = _dumps(metadata, "metadata", id)
        with self._lock, self._tx() as con:
            row = con.execute("SELECT rowid, source, metadata, exif, file FROM items "
                              "WHERE id=?", (id,)).fetchone()
            if row is None:
                raise NotFound(f"no item {id!r} in collection {self.info.name!r}")
            rowid, source, old, exif, file = row
            new = {**json.loads(old), **metadata} if merge else metadata
            if merge:
                text = _dumps(new, "metadata", id)
            con.execute("UPDATE items SET metadata=?, updated=? WHERE rowid=?",
                        (text, _now(), rowid))
            con.execute("DELETE FROM fts WHERE rowid=?", (rowid,))
            con.execute("INSERT INTO fts(rowid, path, body) VALUES (?, ?, ?)",
                        (rowid, source, _fts_body(new, json.loads(exif), json.loads(file))))

    def delete(self, ids: Sequence[str]) -> list[bool]:
        """Delete items; one bool per id, False where the id did not exist."""
        if not ids:
            return []
        with self._lock, self._tx() as con:
            found: dict[str, int] = {}
            unique = list(dict.fromkeys(ids))
            for chunk in _chunks(unique):
                found.update(con.execute(
                    f"SELECT id, rowid FROM items WHERE id IN ({_qs(len(chunk))})", chunk))
            if found:
                seq = self._bump_seq(con, 1) + 1
                gone = [(x,) for x in found.values()]
                con.executemany("DELETE FROM fts WHERE rowid=?", gone)
                con.executemany("DELETE FROM items WHERE rowid=?", gone)
                con.executemany("INSERT INTO tombstones(rowid, seq) VALUES (?, ?)",
                                [(x, seq) for x in found.values()])
        seen: set[str] = set()
        out = []
        for i in ids:
            out.append(i in found and i not in seen)
            seen.add(i)
        return out

    def clear(self) -> int:
        """Delete every item; returns how many there were."""
        with self._lock:
            with self._tx() as con:
                n = con.execute("SELECT count(*) FROM items").fetchone()[0]
                for table in ("fts", "blobs", "vectors", "items", "tombstones"):
                    con.execute(f"DELETE FROM {table}")
                seq = self._bump_seq(con, 1) + 1
                # Every index stamped before `floor` is void: no tombstones need keeping.
                con.execute("UPDATE meta SET value=? WHERE key='floor'", (seq,))
            self._ix = VectorIndex.empty(self.dim)
            self._ix.seq = seq
            self._save_index()
        return n

    # --------------------------------------------------------------------- read
    def get(self, ids: Sequence[str]) -> list[Item | None]:
        by_id: dict[str, Item] = {}
        with self._lock:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                for row in self._con.execute(
                        f"SELECT {_ITEM_COLS} FROM items WHERE id IN ({_qs(len(chunk))})",
                        chunk):
                    by_id[row[0]] = _item(row)
        return [by_id.get(i) for i in ids]

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """(len(ids), dim) float32; NotFound if any id is absent."""
        found: dict[str, bytes] = {}
        with self._lock:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                found.update(self._con.execute(
                    "SELECT i.id, v.v FROM items i JOIN vectors v ON v.rowid = i.rowid "
                    f"WHERE i.id IN ({_qs(len(chunk))})", chunk))
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"no item {missing[0]!r} in collection {self.info.name!r}"
                           + (f" (and {len(missing) - 1} more missing)" if len(missing) > 1
                              else ""))
        if not ids:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.frombuffer(b"".join(found[i] for i in ids),
                             dtype=np.float32).reshape(len(ids), self.dim).copy()

    def _blob(self, id: str, column: str) -> bytes | None:
        with self._lock:
            row = self._con.execute(
                f"SELECT i.rowid, b.{column} FROM items i LEFT JOIN blobs b "
                "ON b.rowid = i.rowid WHERE i.id=?", (id,)).fetchone()
        if row is None:
            raise NotFound(f"no item {id!r} in collection {self.info.name!r}")
        return row[1]

    def original(self, id: str) -> bytes | None:
        """Stored original bytes (URL / uploaded sources), None for files referenced in place."""
        return self._blob(id, "original")

    def thumbnail(self, id: str) -> bytes | None:
        """The stored thumbnail bytes, None if the item has none."""
        return self._blob(id, "thumbnail")

    def count(self, where: dict | None = None) -> int:
        sql, params = compile_filter(where)
        with self._lock:
            self._auto_index(where)
            return self._con.execute(f"SELECT count(*) FROM items WHERE {sql}",
                                     params).fetchone()[0]

    def ids(self, where: dict | None = None, limit: int | None = None,
            offset: int = 0) -> list[str]:
        """Item ids in insertion order, optionally filtered (for listing / paging)."""
        if (limit is not None and limit < 0) or offset < 0:
            raise InvalidInput("limit and offset must not be negative")
        sql, params = compile_filter(where)
        with self._lock:
            self._auto_index(where)
            return [r[0] for r in self._con.execute(
                f"SELECT id FROM items WHERE {sql} ORDER BY rowid LIMIT ? OFFSET ?",
                [*params, -1 if limit is None else limit, offset])]

    def by_sha256(self, hashes: Iterable[str]) -> dict[str, str]:
        """sha256 -> an id already stored with that content (the earliest one)."""
        out: dict[str, str] = {}
        with self._lock:
            for chunk in _chunks(list(dict.fromkeys(hashes))):
                for sha, id in self._con.execute(
                        f"SELECT sha256, id FROM items WHERE sha256 IN ({_qs(len(chunk))}) "
                        "ORDER BY rowid DESC", chunk):
                    out[sha] = id
        return out

    def source_states(self, prefix: str | None = None) -> dict[str, SourceState]:
        """source -> state (``file.mtime_ns``, ``file.size``, sha256) for sources under
        ``prefix``."""
        sql = ("SELECT source, id, json_extract(file, '$.mtime_ns'), "
               "json_extract(file, '$.size'), sha256 FROM items")
        params: list[Any] = []
        if prefix:
            # A range on the indexed column; U+10FFFF sorts after every other character.
            sql += " WHERE source >= ? AND source < ?"
            params = [prefix, prefix + "\U0010ffff"]
        out: dict[str, SourceState] = {}
        with self._lock:
            for source, id, mtime, size, sha in self._con.execute(sql, params):
                if prefix is None or source.startswith(prefix):
                    out[source] = SourceState(
                        id=id, mtime_ns=int(mtime) if isinstance(mtime, (int, float)) else None,
                        size=int(size) if isinstance(size, (int, float)) else None, sha256=sha)
        return out

    def all_vectors(self, batch: int = 65536) -> Iterable[tuple[list[str], np.ndarray]]:
        """Every (ids, vectors) in insertion order, ``batch`` at a time."""
        last = 0
        while True:
            with self._lock:
                rows = self._con.execute(
                    "SELECT i.rowid, i.id, v.v FROM items i JOIN vectors v ON v.rowid = i.rowid "
                    "WHERE i.rowid > ? ORDER BY i.rowid LIMIT ?", (last, batch)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield ([r[1] for r in rows],
                   np.frombuffer(b"".join(r[2] for r in rows),
                                 dtype=np.float32).reshape(len(rows), self.dim).copy())

    # ------------------------------------------------------------------- search
    def search(self, queries: np.ndarray, k: int, where: dict | None = None,
               exclude: Sequence[str] = ()) -> list[list[tuple[str, float]]]:
        """Nearest items by cosine for each query row, best first.

        With ``where``, only matching items are considered, and k hits come back
        whenever at least k items match. ``exclude`` ids never come back.
        """
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q.reshape(1, -1)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ModelMismatch(
                f"query vectors have shape {tuple(np.shape(queries))}, collection "
                f"{self.info.name!r} (model {self.info.model!r}) needs {self.dim}-d vectors")
        q = _normalize(q.copy(), "query vector")
        k = _check_k(k)
        if k == 0 or len(q) == 0:
            return [[] for _ in range(len(q))]
        sql, params = compile_filter(where) if where else (None, [])
        with self._lock:
            ix = self._sync()
            excluded = self._rowids_of(exclude)
            if sql is None:
                return self._search_all(ix, q, k, excluded)
            self._auto_index(where)
            # One text row instead of a tuple per match: far fewer Python objects.
            text = self._con.execute(f"SELECT group_concat(rowid) FROM items WHERE {sql}",
                                     params).fetchone()[0]
            match = (np.fromstring(text, dtype=np.int64, sep=",") if text
                     else np.empty(0, dtype=np.int64))
            if excluded:
                match = match[~np.isin(match, np.fromiter(excluded, dtype=np.int64))]
            if len(match) == 0:
                return [[] for _ in range(len(q))]
            return self._search_selected(ix, q, k, match)

    def _rowids_of(self, ids: Sequence[str]) -> set[int]:
        out: set[int] = set()
        for chunk in _chunks(list(dict.fromkeys(ids))):
            out.update(r[0] for r in self._con.execute(
                f"SELECT rowid FROM items WHERE id IN ({_qs(len(chunk))})", chunk))
        return out

    def _search_all(self, ix: VectorIndex, q: np.ndarray, k: int,
                    excluded: set[int]) -> list[list[tuple[str, float]]]:
        want = k + len(excluded)
        if ix.kind == FLAT:
            scores, rowids = ix.search(q, want)
            return self._finish(scores, rowids, k, excluded)
        _, cand = ix.search(q, rerank_depth(want), nprobe=self._nprobe(ix))
        return self._rerank(q, cand, k, excluded)

    def _nprobe(self, ix: VectorIndex) -> int:
        return min(ix.nlist, self.options.nprobe or ix.nprobe)

    def _search_selected(self, ix: VectorIndex, q: np.ndarray, k: int,
                         match: np.ndarray) -> list[list[tuple[str, float]]]:
        """Search only the rowids in ``match`` through the index, with a bitmap selector."""
        bits = np.zeros(int(match.max()) + 1, dtype=bool)
        bits[match] = True
        bitmap = np.packbits(bits, bitorder="little")
        # The selector only points at `bitmap`: it must stay referenced until searches end.
        sel = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))   # n is in bytes
        want = min(k, len(match))
        if ix.kind == FLAT:
            scores, rowids = ix.search(q, want, selector=sel)
            return self._finish(scores, rowids, k, set())
        selectivity = len(match) / max(1, ix.ntotal)
        nprobe = min(ix.nlist, math.ceil(_FILTER_PROBE * self._nprobe(ix) / selectivity))
        depth = rerank_depth(k)
        _, cand = ix.search(q, depth, selector=sel, nprobe=nprobe)
        short = (cand >= 0).sum(axis=1) < want
        if short.any() and nprobe < ix.nlist:
            # Too few matches in the probed lists: scan every list for those queries.
            _, full = ix.search(q[short], depth, selector=sel, nprobe=ix.nlist)
            cand[short] = full
        return self._rerank(q, cand, k, set())

    def _load_vectors(self, rowids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        got_ids: list[int] = []
        blobs: list[bytes] = []
        ordered = np.sort(rowids).tolist()
        for chunk in _chunks(ordered, 30_000):
            for rowid, v in self._con.execute(
                    f"SELECT rowid, v FROM vectors WHERE rowid IN ({_qs(len(chunk))})", chunk):
                got_ids.append(rowid)
                blobs.append(v)
        vecs = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), self.dim)
        return np.array(got_ids, dtype=np.int64), vecs

    def _rerank(self, q: np.ndarray, cand: np.ndarray, k: int,
                excluded: set[int]) -> list[list[tuple[str, float]]]:
        """Exact scores for IVF candidates, with float32 vectors and ids in one query."""
        wanted = sorted({int(x) for x in cand.ravel() if x >= 0} - excluded)
        if not wanted:
            return [[] for _ in range(len(q))]
        rows = []
        for chunk in _chunks(wanted, 30_000):     # one query unless the batch is huge
            rows += self._con.execute(
                "SELECT i.rowid, i.id, v.v FROM items i JOIN vectors v ON v.rowid = i.rowid "
                f"WHERE i.rowid IN ({_qs(len(chunk))})", chunk).fetchall()
        pos = {r[0]: n for n, r in enumerate(rows)}
        vecs = np.frombuffer(b"".join(r[2] for r in rows),
                             dtype=np.float32).reshape(len(rows), self.dim)
        out = []
        for qi in range(len(q)):
            idx = [pos[x] for x in dict.fromkeys(cand[qi].tolist()) if x in pos]
            if not idx:
                out.append([])
                continue
            s = vecs[idx] @ q[qi]
            order = np.argsort(-s, kind="stable")[:k]
            out.append([(rows[idx[j]][1], float(s[j])) for j in order])
        return out

    def _finish(self, scores: np.ndarray, rowids: np.ndarray, k: int,
                excluded: set[int]) -> list[list[tuple[str, float]]]:
        """Map exact (score, rowid) results to ids, best first, dropping excluded rows."""
        wanted = sorted({int(x) for x in rowids.ravel() if x >= 0} - excluded)
        id_of: dict[int, str] = {}
        for chunk in _chunks(wanted):
            id_of.update(self._con.execute(
                f"SELECT rowid, id FROM items WHERE rowid IN ({_qs(len(chunk))})", chunk))
        out = []
        for s_row, r_row in zip(scores, rowids, strict=True):
            order = np.argsort(-s_row, kind="stable")
            hits = [(id_of[int(r_row[j])], float(s_row[j])) for j in order
                    if int(r_row[j]) in id_of]
            out.append(hits[:k])
        return out

    def text_search(self, query: str, k: int = 10,
                    where: dict | None = None) -> list[tuple[str, float]]:
        """Full-text search over source path, user metadata, EXIF and file name (BM25).

        Every word of ``query`` must match (as a word prefix); FTS operators in
        the text are treated as plain words. Scores are ``-bm25``: higher is better.
        """
        k = _check_k(k)
        match = fts_query(query)
        if match is None or k == 0:
            return []
        sql, params = compile_filter(where)
        with self._lock:
            self._auto_index(where)
            rows = self._con.execute(
                "SELECT i.id, bm25(fts) AS r FROM fts JOIN items i ON i.rowid = fts.rowid "
                f"WHERE fts MATCH ? AND {sql} ORDER BY r LIMIT ?",
                [match, *params, k]).fetchall()
        return [(id, -float(r)) for id, r in rows]

    # ------------------------------------------------------- expression indexes
    def index_field(self, key: str) -> str:
        """Create (if missing) an SQLite index on a filter key; returns the index name.

        Filters on that key then find their rows without reading every item.
        Done automatically for keys filters use once the collection holds
        ``auto_index_min`` items.

        >>> store.index_field("group")   # doctest: +SKIP
        'ix_field_3f0c2e...'
        """
        expr = field_expression(key)
        name = "ix_field_" + hashlib.sha1(expr.encode()).hexdigest()[:16]
        sql = f"CREATE INDEX IF NOT EXISTS {name} ON items({expr})"
        with self._lock:
            if not any(name in s for s in self._indexed_exprs):
                with self._tx():
                    self._con.execute(sql)
                self._indexed_exprs.add(sql)
        return name

    def _auto_index(self, where: dict | None) -> None:
        if not where or len(self._indexed_exprs) >= _MAX_AUTO_INDEXES:
            return
        keys = json_fields(where)
        if not keys:
            return
        known = " ".join(self._indexed_exprs)
        todo = [k for k in keys if field_expression(k) not in known
                and k not in self._index_failed]
        if todo and self._approx_count() >= self.options.auto_index_min:
            for key in todo[:_MAX_AUTO_INDEXES - len(self._indexed_exprs)]:
                try:
                    self.index_field(key)
                except StoreError:
                    # Read-only or locked store: filters still work, only slower.
                    self._index_failed.add(key)

    def _approx_count(self) -> int:
        if self._ix is not None:
            return self._ix.ntotal
        row = self._con.execute("SELECT max(rowid) FROM items").fetchone()
        return int(row[0] or 0)

    # ------------------------------------------------------------ vector index
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
            ix.add(rowids, np.frombuffer(b"".join(r[1] for r in rows),
                                         dtype=np.float32).reshape(len(rows), self.dim))
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
                yield (np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                       np.frombuffer(b"".join(r[1] for r in rows),
                                     dtype=np.float32).reshape(len(rows), self.dim))

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

    # ------------------------------------------------------------------- health
    def check(self) -> dict[str, Any]:
        """Health: integrity, items without vectors, full-text and vector index in step.

        {"ok": bool, "items": n, "vectors": n, "fts": n, "integrity": "ok",
         "index": {"kind", "size", "in_step", ...}, "problems": [...]}
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
                if seq == ix.seq:
                    break
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
        return {"ok": not problems, "items": items, "vectors": vectors, "fts": fts,
                "integrity": integrity, "index": index, "problems": problems}

    def index_info(self) -> dict[str, Any]:
        """The vector index in brief, without the integrity scan :meth:`check` does.

        Cheap enough for a status page: {"kind", "size", "seq", "nlist", "nprobe", ...};
        ``nprobe`` is the one searches use, ``tuned_nprobe`` the one tuned at build time.
        """
        with self._lock:
            return self._describe(self._sync())

    def _describe(self, ix: VectorIndex) -> dict[str, Any]:
        return {"kind": ix.kind, "size": ix.ntotal, "seq": ix.seq, "nlist": ix.nlist,
                "nprobe": self._nprobe(ix) if ix.kind == IVF else None,
                "tuned_nprobe": ix.nprobe if ix.kind == IVF else None,
                "trained_for": ix.trained_for if ix.kind == IVF else None,
                "file": self._index_path.exists()}

    def rebuild(self) -> dict[str, Any]:
        """Rebuild the full-text index and the vector index from the rows."""
        t0 = time.perf_counter()
        with self._lock:
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
            with self._tx("DEFERRED") as con:
                ix = self._build(con, self._meta_int(con, "seq"))
        return {"items": fts, "fts": fts, "index": {"kind": ix.kind, "size": ix.ntotal,
                                                    "nlist": ix.nlist, "nprobe": ix.nprobe},
                "seconds": round(time.perf_counter() - t0, 3)}

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


def _store_error(name: str, e: sqlite3.OperationalError) -> StoreError:
    """SQLite's operational failures (locked, disk full, I/O) as a typed error."""
    msg = str(e)
    if "locked" in msg or "busy" in msg:
        return StoreError(f"collection {name!r} stayed locked by another writer for 30 s; "
                          "try again when the other import finishes")
    return StoreError(f"collection {name!r}: the database failed ({msg}); check free disk "
                      "space and permissions, then run check")


def _check_k(k: Any) -> int:
    try:
        n = operator.index(k)      # numpy integers too, but not floats or strings
    except TypeError:
        n = -1
    if n < 0:
        raise InvalidInput(f"k must be a non-negative integer, got {k!r}")
    return n


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


def _normalize(v: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(v).all():
        raise InvalidInput(f"a {what} holds NaN or infinite values; check the embedder output")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InvalidInput(f"a {what} is all zeros and has no direction; it cannot be searched")
    return np.ascontiguousarray(v / norms, dtype=np.float32)


def _item(row: Sequence[Any]) -> Item:
    return Item(id=row[0], source=row[1], metadata=json.loads(row[2]),
                exif=json.loads(row[3]), file=json.loads(row[4]), width=row[5],
                height=row[6], format=row[7], sha256=row[8], taken=row[9],
                stored=bool(row[10]), added=row[11], updated=row[12])


def _connect(path: Path) -> sqlite3.Connection:
    try:
        con = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        # Takes effect only when the file is created. 16 KiB pages hold several float32
        # vectors each; with 4 KiB pages a 2 KiB (512-d) vector wastes half a page.
        con.execute("PRAGMA page_size=16384")
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        # Checkpoints truncate the WAL back to 64 MiB after a big import.
        con.execute("PRAGMA journal_size_limit=67108864")
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA cache_size=-65536")
        con.execute("PRAGMA temp_store=MEMORY")
    except sqlite3.DatabaseError as e:
        raise StoreError(f"cannot open {path}: {e}; the file is damaged or not an imgfind "
                         "store (restore it from a backup or drop the collection)") from e
    return con


def _read_info(con: sqlite3.Connection) -> CollectionInfo:
    try:
        meta = dict(con.execute("SELECT key, value FROM meta"))
    except sqlite3.DatabaseError as e:
        raise StoreError(f"not an imgfind collection database: {e}") from e
    if meta.get("schema") != _SCHEMA_VERSION or "dim" not in meta:
        raise StoreError(f"unsupported collection schema {meta.get('schema')!r}; "
                         "this imgfind cannot open it")
    return CollectionInfo(name=meta["name"], model=meta["model"], dim=int(meta["dim"]),
                          model_path=meta.get("model_path"), created=meta.get("created"))


class SQLiteBackend:
    """Named collections under ``<home>/collections/<name>/``.

    >>> import tempfile
    >>> b = SQLiteBackend(tempfile.mkdtemp())
    >>> _ = b.create(CollectionInfo(name="photos", model="toy", dim=4))
    >>> [c.name for c in b.collections()]
    ['photos']
    >>> b.close()
    """

    def __init__(self, home: str | Path, options: StoreOptions | None = None):
        self.home = Path(home)
        self.root = self.home / "collections"
        self.options = options or StoreOptions()
        self._open: dict[str, SQLiteStore] = {}
        self._lock = threading.Lock()

    def _folder(self, name: str) -> Path:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InvalidInput(
                f"bad collection name {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit")
        return self.root / name

    def collections(self) -> list[CollectionInfo]:
        """Every collection with a valid database, by name."""
        out = []
        if not self.root.is_dir():
            return out
        for folder in sorted(self.root.iterdir()):
            db = folder / DB_FILE
            if not (NAME_RE.match(folder.name) and db.is_file()):
                continue
            if folder.name in self._open:
                out.append(self._open[folder.name].info)
                continue
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
                try:
                    out.append(_read_info(con))
                finally:
                    con.close()
            except (sqlite3.DatabaseError, StoreError):
                continue     # a half-created or foreign folder is not a collection
        return out

    def create(self, info: CollectionInfo) -> SQLiteStore:
        """Create a collection; AlreadyExists if the name is taken."""
        folder = self._folder(info.name)
        if not isinstance(info.dim, int) or info.dim <= 0:
            raise InvalidInput(f"a collection needs a positive vector dimension, got {info.dim!r}")
        if not info.model:
            raise InvalidInput("a collection needs the name of its embedding model")
        with self._lock:
            if self._valid(folder):
                raise AlreadyExists(f"collection {info.name!r} already exists; open it, or "
                                    "drop it first")
            store = SQLiteStore.create(folder, info, self.options)
            self._open[info.name] = store
            return store

    def _valid(self, folder: Path) -> bool:
        if not (folder / DB_FILE).is_file():
            return False
        try:
            con = sqlite3.connect(f"file:{folder / DB_FILE}?mode=ro", uri=True, timeout=30)
            try:
                _read_info(con)
            finally:
                con.close()
        except (sqlite3.DatabaseError, StoreError):
            return False
        return True

    def open(self, name: str) -> SQLiteStore:
        """The collection's store (one shared handle per backend); NotFound if absent."""
        folder = self._folder(name)
        with self._lock:
            store = self._open.get(name)
            if store is not None and not store.closed:
                return store
            if not (folder / DB_FILE).is_file():
                raise NotFound(f"no collection {name!r}; create it first")
            store = SQLiteStore(folder, self.options)
            self._open[name] = store
            return store

    def drop(self, name: str) -> None:
        """Delete a collection and all its files; NotFound if absent."""
        folder = self._folder(name)
        with self._lock:
            store = self._open.pop(name, None)
            if store is not None:
                store.close()
            if not folder.is_dir():
                raise NotFound(f"no collection {name!r}")
            # Rename first so a half-finished delete never looks like a collection.
            trash = self.root / f".dropped-{name}-{os.getpid()}-{time.time_ns()}"
            folder.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)

    def close(self) -> None:
        """Close every open collection (saving their vector indexes)."""
        with self._lock:
            for store in self._open.values():
                store.close()
            self._open.clear()
