"""Reading and writing item rows: put, metadata, delete, get, listing, source states.

Every write bumps ``meta.seq`` and stamps the rows it changed (``items.seq``) or
records their ``tombstones``: the vector index and the filter cache catch up
from exactly that. A new write path (OCR text, ...) must do the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ...errors import InvalidInput, ModelMismatch, NotFound, StoreError
from ...filters import compile_filter, field_expression
from ...types import Item
from ..base import Record, SourceState
from ..records import clean_json
from ..vector_index import VectorIndex
from .codec import (
    _ITEM_COLS,
    _READ_COLS,
    _chunks,
    _dumps,
    _fts_body,
    _item,
    _normalize,
    _now,
    _qs,
    decode_vectors,
    encode_vectors,
)
from .planner import _MAX_AUTO_INDEXES, SearchPlanner

__all__ = ["RowStore"]

#: ORDER BY per listing sort. Each date sort reads one index (migration 2) in either
#: direction; equal dates follow insertion order in the sort's direction, which keeps
#: the scan a plain index walk (no sorter, even at 1M rows).
_DATE = {"taken": "COALESCE(taken, added)", "added": "added"}
_ORDER: dict[str | None, str] = {
    None: "rowid",
    "taken": "COALESCE(taken, added), rowid",
    "-taken": "COALESCE(taken, added) DESC, rowid DESC",
    "added": "added, rowid",
    "-added": "added DESC, rowid DESC",
}


class RowStore(SearchPlanner):
    """The item rows of a store handle (every write bumps ``meta.seq``)."""

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
        model, dim = self.info.model, self.dim
        vecs = self._check_vectors(recs)
        now = _now()
        rows, fts_rows, blob_rows = [], [], []
        for i, r in enumerate(recs):
            if not isinstance(r.source, str):
                raise InvalidInput(f"source of item {r.id!r} must be a string")
            exif = clean_json(r.exif or {})
            file = clean_json(r.file or {})
            rows.append((r.id, r.source, _dumps(r.metadata or {}, "metadata", r.id),
                         _dumps(exif, "exif", r.id), _dumps(file, "file facts", r.id),
                         r.width, r.height, r.format, r.sha256, r.taken,
                         int(r.original is not None), now, now, i + 1))
            fts_rows.append((r.source, _fts_body(r.metadata or {}, exif, file)))
            blob_rows.append((r.thumbnail, r.original))
        with self._lock, self._tx() as con:
            self._guard_model(con, model, dim)   # a re-embed may have switched the model
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
                "updated=excluded.updated, seq=excluded.seq, ocr=NULL, ocr_lines=NULL",
                [row[:-1] + (seq0 + row[-1],) for row in rows])
            rowid_of = dict(con.execute("SELECT id, rowid FROM items WHERE seq > ?", (seq0,)))
            rowids = [rowid_of[r.id] for r in recs]
            existing = [x for x in rowids if x <= mark]
            if existing:
                con.executemany("DELETE FROM fts WHERE rowid=?", [(x,) for x in existing])
                con.executemany("DELETE FROM ocr_fts WHERE rowid=?", [(x,) for x in existing])
                con.executemany("DELETE FROM blobs WHERE rowid=?", [(x,) for x in existing])
            con.executemany("INSERT INTO fts(rowid, path, body) VALUES (?, ?, ?)",
                            [(x, *f) for x, f in zip(rowids, fts_rows, strict=True)])
            con.executemany("INSERT OR REPLACE INTO vectors(rowid, v) VALUES (?, ?)",
                            zip(rowids, encode_vectors(vecs), strict=True))
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
            # A new seq stamp: the filter cache (and any other handle) sees the change.
            seq = self._bump_seq(con, 1) + 1
            con.execute("UPDATE items SET metadata=?, updated=?, seq=? WHERE rowid=?",
                        (text, _now(), seq, rowid))
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
                con.executemany("DELETE FROM ocr_fts WHERE rowid=?", gone)
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
                for table in ("fts", "ocr_fts", "blobs", "vectors", "items", "tombstones"):
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
                        f"SELECT {_READ_COLS} FROM items WHERE id IN ({_qs(len(chunk))})",
                        chunk):
                    by_id[row[0]] = _item(row)
        return [by_id.get(i) for i in ids]

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """(len(ids), dim) float32; NotFound if any id is absent."""
        found: dict[str, tuple[int, bytes]] = {}
        with self._lock:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                found.update((r[0], (r[1], r[2])) for r in self._con.execute(
                    "SELECT i.id, i.rowid, v.v FROM items i JOIN vectors v ON v.rowid = i.rowid "
                    f"WHERE i.id IN ({_qs(len(chunk))})", chunk))
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound(f"no item {missing[0]!r} in collection {self.info.name!r}"
                           + (f" (and {len(missing) - 1} more missing)" if len(missing) > 1
                              else ""))
        if not ids:
            return np.empty((0, self.dim), dtype=np.float32)
        rows = [found[i] for i in ids]
        return decode_vectors([r[1] for r in rows], self.dim, [r[0] for r in rows])

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
            offset: int = 0, sort: str | None = None) -> list[str]:
        """Item ids in insertion order or in a date ``sort`` (migration 2's indexes),
        optionally filtered (for listing / paging)."""
        if (limit is not None and limit < 0) or offset < 0:
            raise InvalidInput("limit and offset must not be negative")
        if sort not in _ORDER:
            raise InvalidInput(f"sort must be one of {', '.join(map(str, _ORDER))}")
        sql, params = compile_filter(where)
        with self._lock:
            if sort is not None and where:
                self._sort_index(where, sort)
            self._auto_index(where)
            return [r[0] for r in self._con.execute(
                f"SELECT id FROM items WHERE {sql} ORDER BY {_ORDER[sort]} LIMIT ? OFFSET ?",
                [*params, -1 if limit is None else limit, offset])]

    def _sort_index(self, where: dict, sort: str) -> None:
        """On a large collection, an index on (filter key, date) for a listing filtered by
        one key's value and sorted by date (``{"album": "Rome"}`` newest first): the page
        is then an index walk too, instead of sorting every match (150-240 ms at 1M rows
        with a 1% filter, ``python -m bench sort``). Other filters keep the date index."""
        if len(where) != 1 or len(self._indexed_exprs) >= _MAX_AUTO_INDEXES:
            return
        key, value = next(iter(where.items()))
        if isinstance(value, dict) and set(value) == {"$eq"}:
            value = value["$eq"]
        plain = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        if key.startswith("$") or not plain or key in self._index_failed \
                or self._approx_count() < self.options.auto_index_min:
            return
        expr = f"{field_expression(key)}, {_DATE[sort.lstrip('-')]}"
        name = "ix_field_" + hashlib.sha1(expr.encode()).hexdigest()[:16]
        if any(name in s for s in self._indexed_exprs):
            return
        sql = f"CREATE INDEX IF NOT EXISTS {name} ON items({expr})"
        try:
            with self._tx():
                self._con.execute(sql)
            self._indexed_exprs.add(sql)
        except StoreError:
            self._index_failed.add(key)  # read-only or locked: the listing only sorts more

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
                   decode_vectors([r[2] for r in rows], self.dim, [r[0] for r in rows]))

