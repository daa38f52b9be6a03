"""Staged vectors: a second model's vectors built beside the live ones, then switched to.

``staged_vectors`` (schema migration 4) holds one row per item already embedded with the staged
model, stamped with the item's ``seq`` at the time it was read: an item
written again since (a changed file, a re-insert) no longer matches its stamp
and is embedded again. ``meta.staging`` names the staged model. The switch is
one transaction: live vectors replaced by the staged ones, ``meta`` model and
dim updated, ``floor`` raised so every handle (in any process) drops its
vector index and rebuilds it at the new width.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ...errors import AlreadyExists, InvalidInput, ModelMismatch, NotFound
from ..base import CollectionInfo, StagingInfo, StagingTask
from .codec import _IN_CHUNK, _normalize, _now, _qs, encode_vectors
from .core import StoreCore

__all__ = ["Staging"]

_PENDING = ("FROM items i LEFT JOIN staged_vectors s ON s.rowid = i.rowid "
            "WHERE (s.rowid IS NULL OR s.item_seq != i.seq)")


class Staging(StoreCore):
    """The :class:`~imgfind.stores.base.StagingStore` side of an SQLite store handle."""

    def staging(self, counts: bool = True) -> StagingInfo | None:
        with self._lock, self._tx("DEFERRED") as con:
            return self._staging(con, counts=counts)

    def _staging(self, con: sqlite3.Connection, counts: bool = False) -> StagingInfo | None:
        row = con.execute("SELECT value FROM meta WHERE key='staging'").fetchone()
        if row is None:
            return None
        d = json.loads(row[0])
        info = StagingInfo(model=d["model"], dim=int(d["dim"]), model_path=d.get("model_path"),
                           started=d.get("started"))
        if counts:
            total = con.execute("SELECT count(*) FROM items").fetchone()[0]
            pending = con.execute(f"SELECT count(*) {_PENDING}").fetchone()[0]
            info = replace(info, total=total, staged=total - pending)
        return info

    def begin_staging(self, info: CollectionInfo) -> StagingInfo:
        if not isinstance(info.dim, int) or info.dim <= 0 or not info.model:
            raise InvalidInput("a staged model needs a name and a positive dimension")
        with self._lock:
            with self._tx() as con:
                self._follow_model(con)
                current = self._staging(con)
                if current is not None and (current.model, current.dim) != (info.model,
                                                                           info.dim):
                    raise AlreadyExists(
                        f"collection {self.info.name!r} is already being re-embedded with "
                        f"model {current.model!r}; finish that (run it again: it resumes) "
                        "or abort it first")
                if current is None:
                    con.execute("DELETE FROM staged_vectors")
                    value = json.dumps({"model": info.model, "dim": info.dim,
                                        "model_path": info.model_path, "started": _now()})
                    con.execute("INSERT INTO meta(key, value) VALUES ('staging', ?)", (value,))
            out = self.staging()
        assert out is not None
        return out

    def abort_staging(self) -> bool:
        with self._lock, self._tx() as con:
            if self._staging(con) is None:
                return False
            con.execute("DELETE FROM staged_vectors")
            con.execute("DELETE FROM meta WHERE key='staging'")
            return True

    def staging_todo(self, limit: int, after: int = 0,
                     ids: Sequence[str] | None = None) -> list[StagingTask]:
        only = list(dict.fromkeys(ids)) if ids is not None else None
        if only is not None and len(only) > _IN_CHUNK:
            raise InvalidInput(f"staging_todo takes at most {_IN_CHUNK} ids at a time")
        where = f" AND i.id IN ({_qs(len(only))})" if only else ""
        with self._lock, self._tx("DEFERRED") as con:
            if self._staging(con) is None:
                raise NotFound(f"collection {self.info.name!r} has no re-embed in progress")
            if only == []:
                return []
            rows = con.execute(
                "SELECT i.rowid, i.id, i.seq, i.source, i.stored "
                f"{_PENDING} AND i.rowid > ?{where} ORDER BY i.rowid LIMIT ?",
                (after, *(only or ()), limit)).fetchall()
        return [StagingTask(id=r[1], version=r[2], source=r[3], stored=bool(r[4]), pos=r[0])
                for r in rows]

    def put_staged(self, tasks: Sequence[StagingTask], vectors: np.ndarray) -> int:
        if len(tasks) != len(vectors):
            raise InvalidInput("put_staged needs one vector per task")
        if not len(tasks):
            return 0
        with self._lock, self._tx() as con:
            st = self._staging(con)
            if st is None:
                raise NotFound(f"collection {self.info.name!r} has no re-embed in progress")
            v = np.asarray(vectors, dtype=np.float32)
            if v.ndim != 2 or v.shape[1] != st.dim:
                raise ModelMismatch(f"staged vectors must be {st.dim}-d for model {st.model!r}")
            v = _normalize(v, "staged vector")
            before = con.total_changes
            # Only where the item is still the version that was embedded.
            con.executemany(
                "INSERT OR REPLACE INTO staged_vectors(rowid, v, item_seq) "
                "SELECT rowid, ?, seq FROM items WHERE id=? AND seq=?",
                [(b, t.id, t.version)
                 for b, t in zip(encode_vectors(v), tasks, strict=True)])
            return con.total_changes - before

    def commit_staging(self) -> bool:
        with self._lock:
            with self._tx() as con:
                st = self._staging(con)
                if st is None:
                    raise NotFound(f"collection {self.info.name!r} has no re-embed in progress")
                if con.execute(f"SELECT 1 {_PENDING} LIMIT 1").fetchone() is not None:
                    return False
                con.execute("DELETE FROM vectors")
                con.execute("INSERT INTO vectors(rowid, v) SELECT rowid, v FROM staged_vectors")
                con.execute("DELETE FROM staged_vectors")
                con.execute("DELETE FROM meta WHERE key='staging'")
                seq = self._bump_seq(con, 1) + 1
                for key, value in (("model", st.model), ("dim", st.dim),
                                   ("model_path", st.model_path), ("floor", seq)):
                    con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                                (key, value))
            self._adopt(CollectionInfo(name=self.info.name, model=st.model, dim=st.dim,
                                       model_path=st.model_path, created=self.info.created))
            self._index_path.unlink(missing_ok=True)
        return True

    # ------------------------------------------------------ every handle follows
    def _follow_model(self, con: sqlite3.Connection) -> bool:
        """Adopt a model switch committed by another handle; True if there was one."""
        meta = dict(con.execute("SELECT key, value FROM meta WHERE key IN "
                                "('model', 'dim', 'model_path')"))
        if meta.get("model") == self.info.model and int(meta.get("dim", 0)) == self.dim:
            return False
        self._adopt(CollectionInfo(name=self.info.name, model=meta["model"],
                                   dim=int(meta["dim"]), model_path=meta.get("model_path"),
                                   created=self.info.created))
        return True

    def _adopt(self, info: CollectionInfo) -> None:
        self.info = info
        self.dim = info.dim
        self._ix = None
        self._unsaved = 0
        self._local_writes = True

    def _guard_model(self, con: sqlite3.Connection, model: str, dim: int) -> None:
        """Inside a write: refuse vectors made for a model the collection switched away from
        (``model``/``dim``: what the caller checked its vectors against)."""
        self._follow_model(con)
        if (self.info.model, self.dim) != (model, dim):
            raise ModelMismatch(
                f"collection {self.info.name!r} switched to model {self.info.model!r} "
                f"({self.dim}-d) while this batch was embedded with {model!r}; embed it again")
