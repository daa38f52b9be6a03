"""One imgfind collection in one Milvus collection (see :mod:`.schema` for the layout).

Consistency: every call uses Milvus' ``Strong`` level, so an acknowledged
write is seen by the next search or query of any client, through any imgfind
server. (``Bounded``, Milvus' default, lets a search miss writes from the
last few seconds: a user who adds a photo through one server and searches
through another would not find it.) The price is that a query node waits
until it has applied every write before the query's timestamp, milliseconds
on a healthy cluster.

Round trips: ``put`` reads the batch's existing rows in one query (to keep
their ``added`` time and listing place), writes blobs, then upserts in one
call; ``by_sha256`` is one query per batch; ``search`` returns each hit's
fields in the same call and hands them to the next ``get`` on this thread, so
a search followed by ``get`` of its hits costs one round trip.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ...errors import InvalidInput, NotFound, StoreError
from ...filters.evaluate import matches
from ...filters.milvus import MilvusPlan, plan_milvus
from ...types import Item
from ..base import CollectionInfo, Record, SourceState
from . import fulltext, health, schema
from .blobs import BlobStore
from .schema import and_ as _and
from .schema import check_k as _check_k
from .schema import in_list as _q
from .schema import lit as schema_lit

__all__ = ["MilvusStore"]

_BATCH = 500          # rows per upsert / ids per "in [...]" list
_ITER = 4096          # rows per page when scanning
_MAX_LIMIT = 16384    # Milvus' largest search limit
_FLUSH_ROWS, _FLUSH_SEARCH = 2048, 256     # Milvus Lite only (see MilvusStore.__init__)
_RECENT_S = 2.0       # a search's hit fields answer this thread's next get() this long


class MilvusStore:
    """A :class:`~imgfind.stores.base.CollectionStore` on Milvus. Open it through
    :class:`~imgfind.stores.milvus.MilvusBackend`."""

    def __init__(self, client: Any, cname: str, info: CollectionInfo,
                 index: schema.IndexSpec, blobs: BlobStore, describe: dict[str, Any]):
        self.client = client
        self.cname = cname
        self.info = info
        self.index = index
        self.blobs = blobs
        self.describe = describe
        self._recent = threading.local()
        self.closed = False
        # Milvus Lite searches unflushed rows by converting them row by row (seconds at
        # 10k rows); Milvus proper seals growing segments itself. So on Lite only, this
        # handle flushes after _FLUSH_ROWS writes, or before a search once _FLUSH_SEARCH.
        self.lite = str(describe.get("server", "")).startswith("milvus_lite")
        self._unflushed = 0

    # ----------------------------------------------------------------- helpers
    def _call(self, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        from pymilvus.exceptions import MilvusException  # type: ignore[import-untyped]
        try:
            return fn(self.cname, *args, **kw)
        except MilvusException as e:
            raise StoreError(f"collection {self.info.name!r}: Milvus {what} failed: "
                             f"{getattr(e, 'message', e)}") from e

    def _query(self, expr: str, fields: list[str], limit: int | None = None) -> list[dict]:
        kw: dict[str, Any] = {"filter": expr or 'id != ""', "output_fields": fields,
                              "consistency_level": "Strong"}
        if limit is not None:
            kw["limit"] = limit
        return list(self._call("query", self.client.query, **kw))

    def _scan(self, expr: str, fields: list[str]) -> Iterable[list[dict]]:
        """Every matching row, a page at a time (primary-key paging: bounded memory)."""
        last: str | None = None
        while True:
            page_expr = _and(expr, f"id > {schema_lit(last)}" if last is not None else "")
            rows = self._query(page_expr, list(dict.fromkeys(["id", *fields])), limit=_ITER)
            if not rows:
                return
            rows.sort(key=lambda r: r["id"])
            yield rows
            if len(rows) < _ITER:
                return
            last = rows[-1]["id"]

    def _rows(self, ids: Sequence[str], fields: list[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        unique = list(dict.fromkeys(ids))
        for i in range(0, len(unique), _BATCH):
            chunk = unique[i:i + _BATCH]
            for r in self._query(f"id in {_q(chunk)}", fields, limit=len(chunk)):
                out[r["id"]] = r
        return out

    def _wrote(self, n: int, threshold: int) -> None:
        self._unflushed += n
        if self.lite and self._unflushed >= threshold:
            self._call("flush", self.client.flush)
            self._unflushed = 0

    def _forget(self, ids: Iterable[str]) -> None:
        recent = getattr(self._recent, "items", None)
        if recent:
            for i in ids:
                recent.pop(i, None)

    # ------------------------------------------------------------------- write
    def put(self, records: Sequence[Record]) -> list[str]:
        """Insert or replace (by id) in one upsert; returns the ids.

        Blobs are written first, so a row never points at a missing blob. A
        replaced item keeps its ``added`` time and its place in listing order.
        """
        if not records:
            return []
        ids = [r.id for r in records]
        for id in ids:
            if not isinstance(id, str) or not id or len(id) > 1024:
                raise InvalidInput(f"item ids must be non-empty strings up to 1024 characters, "
                                   f"got {id!r}")
        recs = list({r.id: r for r in records}.values())
        checked = schema.checked_records(recs, self.info)       # all checked before any write
        old = self._rows([r.id for r in recs], ["id", "added", "ord"])
        now, base = schema.now(), time.time_ns()
        rows = [schema.row_of(r, vec, meta, exif, file, old.get(r.id), now, base + i,
                              thumb=self.blobs.put(r.thumbnail) if r.thumbnail is not None
                              else None,
                              orig=self.blobs.put(r.original) if r.original is not None else None)
                for i, (r, vec, meta, exif, file) in enumerate(checked)]
        for i in range(0, len(rows), _BATCH):
            self._call("upsert", self.client.upsert, rows[i:i + _BATCH])
        self._wrote(len(rows), _FLUSH_ROWS)
        self._forget(ids)
        return ids

    def set_metadata(self, id: str, metadata: dict[str, Any], merge: bool = False) -> None:
        """Replace (or, with ``merge``, update key by key) the user metadata of one item."""
        schema.check_metadata(metadata, id)
        row = self._rows([id], ["*"]).get(id)
        if row is None:
            raise NotFound(f"no item {id!r} in collection {self.info.name!r}")
        new = {**(row.get("metadata") or {}), **metadata} if merge else metadata
        row.pop("sparse", None)
        row["metadata"] = new
        row["updated"] = schema.now()
        row["text"] = schema.text_of(row["source"], new, row.get("exif") or {},
                                     row.get("file") or {})
        row["vector"] = [float(x) for x in row["vector"]]
        self._call("upsert", self.client.upsert, [row])
        self._forget([id])

    def delete(self, ids: Sequence[str]) -> list[bool]:
        """Delete items; one bool per id, False where the id did not exist."""
        if not ids:
            return []
        found = set(self._rows(list(ids), ["id"]))
        found_list = list(found)
        for n in range(0, len(found_list), _BATCH):
            self._call("delete", self.client.delete,
                       filter=f"id in {_q(found_list[n:n + _BATCH])}")
        self._forget(ids)
        seen: set[str] = set()
        out = []
        for i in ids:
            out.append(i in found and i not in seen)
            seen.add(i)
        return out

    def clear(self) -> int:
        """Delete every item; returns how many there were."""
        n = self.count()
        self._call("delete", self.client.delete, filter='id != ""')
        self._forget(list(getattr(self._recent, "items", {}) or {}))
        return n

    # -------------------------------------------------------------------- read
    def get(self, ids: Sequence[str]) -> list[Item | None]:
        recent: dict[str, Item] = getattr(self._recent, "items", None) or {}
        if time.monotonic() - getattr(self._recent, "at", 0.0) > _RECENT_S:
            recent = {}     # only the hits of a search this thread just made
        self._recent.items = {}
        have = {i: recent[i] for i in ids if i in recent}
        missing = [i for i in ids if i not in have]
        if missing:
            for id, row in self._rows(missing, schema.ITEM_FIELDS).items():
                have[id] = schema.item_from_row(row)
        return [have.get(i) for i in ids]

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """(len(ids), dim) float32; NotFound if any id is absent."""
        rows = self._rows(list(ids), ["id", "vector"])
        missing = [i for i in ids if i not in rows]
        if missing:
            raise NotFound(f"no item {missing[0]!r} in collection {self.info.name!r}"
                           + (f" (and {len(missing) - 1} more missing)" if len(missing) > 1
                              else ""))
        if not ids:
            return np.empty((0, self.info.dim), dtype=np.float32)
        return np.asarray([rows[i]["vector"] for i in ids], dtype=np.float32)

    def _blob(self, id: str, field: str) -> bytes | None:
        row = self._rows([id], ["id", field]).get(id)
        if row is None:
            raise NotFound(f"no item {id!r} in collection {self.info.name!r}")
        return self.blobs.get(row[field]) if row.get(field) else None

    def original(self, id: str) -> bytes | None:
        """Stored original bytes (URL / upload sources), None for in-place files."""
        return self._blob(id, "orig")

    def thumbnail(self, id: str) -> bytes | None:
        return self._blob(id, "thumb")

    def _matching(self, plan: MilvusPlan, fields: list[str]) -> Iterable[dict]:
        """Every row the filter selects (checked in Python where Milvus is loose)."""
        extra = [] if plan.exact else schema.ITEM_FIELDS
        for page in self._scan(plan.expr, [*fields, *extra]):
            for r in page:
                if plan.exact or matches(plan.node, r):
                    yield r

    def count(self, where: dict | None = None) -> int:
        plan = plan_milvus(where)
        if not plan.exact:
            return sum(1 for _ in self._matching(plan, []))
        rows = self._query(plan.expr, ["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def ids(self, where: dict | None = None, limit: int | None = None,
            offset: int = 0, sort: str | None = None) -> list[str]:
        """Item ids in insertion order or a date ``sort`` (Milvus has no ORDER BY: sorted
        here, in the SQLite store's order: equal dates in insertion order in the sort's
        direction, undated items last)."""
        if (limit is not None and limit < 0) or offset < 0:
            raise InvalidInput("limit and offset must not be negative")
        if sort not in (None, "taken", "-taken", "added", "-added"):
            raise InvalidInput("sort must be one of taken, -taken, added, -added")
        fields = ["ord"] if sort is None else ["ord", "taken", "added"]
        rows = list(self._matching(plan_milvus(where), fields))
        rows.sort(key=lambda r: r["ord"])
        if sort is not None:
            def date(r: dict[str, Any]) -> str:
                return (r.get("taken") or r.get("added") or "") if sort.lstrip("-") == "taken" \
                    else (r.get("added") or "")
            dated = sorted((r for r in rows if date(r)), key=lambda r: (date(r), r["ord"]),
                           reverse=sort.startswith("-"))
            rows = dated + [r for r in rows if not date(r)]
        end = None if limit is None else offset + limit
        return [r["id"] for r in rows[offset:end]]

    def by_sha256(self, hashes: Iterable[str]) -> dict[str, str]:
        """sha256 -> an id already stored with that content (the earliest one): one query."""
        wanted = [h for h in dict.fromkeys(hashes) if isinstance(h, str)]
        if not wanted:
            return {}
        best: dict[str, tuple[int, str]] = {}
        for i in range(0, len(wanted), 10_000):
            chunk = wanted[i:i + 10_000]
            for r in self._query(f"sha256 in {_q(chunk)}", ["id", "sha256", "ord"]):
                cur = best.get(r["sha256"])
                if cur is None or r["ord"] < cur[0]:
                    best[r["sha256"]] = (r["ord"], r["id"])
        return {h: v[1] for h, v in best.items()}

    def source_states(self, prefix: str | None = None) -> dict[str, SourceState]:
        """source -> state for every item whose source starts with ``prefix``."""
        expr = ""
        if prefix:
            pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            expr = f"source like {schema_lit(pattern + '%')}"
        out: dict[str, SourceState] = {}
        for page in self._scan(expr, ["source", "file", "sha256"]):
            for r in page:
                src = r["source"]
                if prefix and not src.startswith(prefix):
                    continue
                f = r.get("file") or {}
                mt, size = f.get("mtime_ns"), f.get("size")
                out[src] = SourceState(
                    id=r["id"],
                    mtime_ns=int(mt) if isinstance(mt, (int, float)) else None,
                    size=int(size) if isinstance(size, (int, float)) else None,
                    sha256=r.get("sha256"))
        return out

    def all_vectors(self, batch: int = 65536) -> Iterable[tuple[list[str], np.ndarray]]:
        """Every (ids, vectors), ``batch`` at a time."""
        if batch < 1:
            raise InvalidInput(f"batch must be positive, got {batch!r}")
        ids: list[str] = []
        vecs: list[Any] = []
        for page in self._scan("", ["vector"]):
            for r in page:
                ids.append(r["id"])
                vecs.append(r["vector"])
                if len(ids) == batch:
                    yield ids, np.asarray(vecs, dtype=np.float32)
                    ids, vecs = [], []
        if ids:
            yield ids, np.asarray(vecs, dtype=np.float32)

    # ------------------------------------------------------------------ search
    def search(self, queries: np.ndarray, k: int, where: dict | None = None,
               exclude: Sequence[str] = ()) -> list[list[tuple[str, float]]]:
        """Nearest items by cosine per query row, best first; hits' fields come back in the
        same call (kept for the next ``get`` on this thread)."""
        q = schema.check_queries(queries, self.info)
        k = _check_k(k)
        if k == 0 or len(q) == 0:
            return [[] for _ in range(len(q))]
        self._wrote(0, _FLUSH_SEARCH)
        plan = plan_milvus(where)
        if exclude:
            plan = dataclasses.replace(plan, expr=_and(
                plan.expr, f"not (id in {_q(list(dict.fromkeys(exclude)))})"))
        res = self._ann(q, k, plan, self.index.search_params(k))
        if where is not None and any(len(r) < k for r in res):
            # An approximate index may stop short under a selective filter: when more
            # items match than it returned, search again exploring as far as needed.
            n = self.count(where)
            if any(len(r) < min(k, n) for r in res):
                params = self.index.search_params(max(k, n))
                if "ef" in params:
                    params["ef"] = max(params["ef"], n)
                if "nprobe" in params:
                    params["nprobe"] = self.index.lists()
                res = self._ann(q, k, plan, params)
            if any(len(r) < min(k, n) for r in res) and n <= _MAX_LIMIT:
                # HNSW can still miss a few of very few matches (seen at 0.5% of 600
                # rows): score the matching rows exactly, the brute force Milvus skips.
                res = self._exact(q, k, plan)
        return res

    def _exact(self, q: np.ndarray, k: int, plan: MilvusPlan) -> list[list[tuple[str, float]]]:
        """Cosine over every row the filter matches, best first."""
        rows = [r for page in self._scan(plan.expr, [*schema.ITEM_FIELDS, "vector"])
                for r in page if plan.exact or matches(plan.node, r)]
        if not rows:
            return [[] for _ in range(len(q))]
        scores = q @ np.asarray([r["vector"] for r in rows], dtype=np.float32).T
        recent: dict[str, Item] = {}
        out = []
        for row_scores in scores:
            top = np.argsort(-row_scores, kind="stable")[:k]
            for i in top:
                recent[rows[i]["id"]] = schema.item_from_row(
                    {f: v for f, v in rows[i].items() if f != "vector"})
            out.append([(rows[i]["id"], float(row_scores[i])) for i in top])
        self._recent.items, self._recent.at = recent, time.monotonic()
        return out

    def _ann(self, q: np.ndarray, k: int, plan: MilvusPlan,
             params: dict[str, Any]) -> list[list[tuple[str, float]]]:
        recent: dict[str, Item] = {}
        out = []
        for hits in self._hits("vector", q.tolist(), k, plan,
                               {"metric_type": "IP", "params": params}):
            for h in hits:
                recent[h["id"]] = schema.item_from_row(h["entity"])
            out.append([(h["id"], float(h["distance"])) for h in hits])
        self._recent.items, self._recent.at = recent, time.monotonic()
        return out

    def _hits(self, field: str, data: list, k: int, plan: MilvusPlan,
              params: dict[str, Any]) -> list[list[dict]]:
        """Search hits with their fields; where the plan is loose, over-fetch and keep the
        rows the filter accepts, widening until k are found or Milvus has no more."""
        limit = k if plan.exact else min(_MAX_LIMIT, max(4 * k, 64))
        while True:
            raw = self._call("search", self.client.search, data=data, anns_field=field,
                             limit=limit, filter=plan.expr, output_fields=schema.ITEM_FIELDS,
                             search_params=params, consistency_level="Strong")
            out = []
            for hits in raw:
                for h in hits:
                    h["entity"].setdefault("id", h["id"])
                out.append([h for h in hits if plan.exact or matches(plan.node, h["entity"])
                            ][:k])
            short = any(len(o) < k and len(r) == limit for o, r in zip(out, raw))
            if plan.exact or not short or limit >= _MAX_LIMIT:
                return out
            limit = min(_MAX_LIMIT, limit * 4)

    def text_search(self, query: str, k: int = 10,
                    where: dict | None = None) -> list[tuple[str, float]]:
        """Full-text search over source path, user metadata, EXIF and file name: every word
        must occur; BM25-ranked (see :func:`.fulltext.text_search`)."""
        return fulltext.text_search(self, query, k, where)

    # ------------------------------------------------------------------ health
    def index_info(self) -> dict[str, Any]:
        """The vector index in brief: {"kind", "size", "backend": "milvus", "milvus": {...}}."""
        return health.index_info(self)

    def check(self) -> dict[str, Any]:
        """Health: every row readable, every blob it names present (see :mod:`.health`)."""
        return health.check(self)

    def rebuild(self) -> dict[str, Any]:
        """Milvus maintains its indexes itself: rebuild re-creates the vector index."""
        return health.rebuild(self)

    def close(self) -> None:
        self.closed = True
