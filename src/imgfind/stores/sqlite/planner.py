"""Search: the filter becomes a rowid bitmap, then the index scores just those rows.

The bitmap comes from the in-memory filter cache (:mod:`.filter_cache`, no SQL
per query, the same answer reused while nothing is written) for every operator
but ``$contains``, which runs in SQL. A repeated filter with a small match set
skips the index: :mod:`.match_vectors` scans its rows from memory.

Otherwise the flat index (exact) or the IVF index restricted by the bitmap,
probing enough lists to expect :data:`_MATCHES_PER_DEPTH` times the re-rank
depth in matches. IVF and match-set codes only rank: the candidates within the
codes' error bound of the k-th (:func:`~imgfind.stores.vector_index.code_error`)
are re-scored from the stored vectors, so scores are the stored vectors' cosines.
Figures (1M clustered 512-d vectors, 2 cores): docs/benchmarks.md.

On large collections the JSON fields an SQL filter reads get SQLite expression
indexes the first time they are used.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from ...errors import ModelMismatch, StoreError
from ...filters import SQLCompiler, compile_filter, field_expression, json_fields, parse
from ...filters.tree import Node, fields
from ..vector_index import FLAT, VectorIndex, code_error, exact_top, rerank_depth
from .codec import _check_k, _chunks, _normalize, _qs, fts_query
from .filter_cache import Match, cacheable
from .match_vectors import MatchSet
from .sync import IndexSync

__all__ = ["SearchPlanner"]

_MAX_AUTO_INDEXES = 32
# A filtered IVF search probes enough lists to expect this many times the re-rank depth
# in matching rows. Measured on 1M clustered vectors: a 10% filter then probes the tuned
# lists and keeps the unfiltered recall; the old rule (4 x tuned / selectivity) probed 40
# times as many lists for no recall gained.
_MATCHES_PER_DEPTH = 8



class SearchPlanner(IndexSync):
    """Vector and full-text search of a store handle, and the filter's expression indexes."""

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
        node = parse(where) if where else None
        with self._lock:
            ix = self._sync()
            if ix.dim != q.shape[1]:    # a re-embed switched the model since the check above
                raise ModelMismatch(f"collection {self.info.name!r} now uses model "
                                    f"{self.info.model!r} ({self.dim}-d); embed the query again")
            excluded = self._rowids_of(exclude)
            if node is None:
                return self._search_all(ix, q, k, excluded)
            match = (self._cached_match(node, ix) if cacheable(node)
                     else Match.of(self._sql_match(node)))
            small = self._match_vectors.get(node, (ix.seq, self.dim), match, self._match_set)
            if small is not None and small.vectors is not None:
                return self._search_exact(q, k, small.rowids, small.vectors, excluded)
            if small is not None:
                return self._search_codes(q, k, small, excluded)
            if excluded:
                bits = match.bits.copy()
                gone = np.fromiter(excluded, dtype=np.int64)
                bits[gone[gone < len(bits)]] = False
                match = Match.of(bits)
            if match.count == 0:
                return [[] for _ in range(len(q))]
            return self._search_selected(ix, q, k, match)

    def _search_exact(self, q: np.ndarray, k: int, rowids: np.ndarray, vecs: np.ndarray,
                      excluded: set[int]) -> list[list[tuple[str, float]]]:
        """Score a small in-memory match set exactly (see :mod:`.match_vectors`)."""
        scores, top = exact_top(q, vecs, rowids, min(len(rowids), k + len(excluded)))
        return self._finish(scores, top, k, excluded)

    def _match_set(self, wanted: np.ndarray) -> MatchSet:
        with self._tx("DEFERRED"):        # both reads of the set see one snapshot
            return MatchSet.of(wanted, self._iter_vectors)

    def _search_codes(self, q: np.ndarray, k: int, small: MatchSet,
                      excluded: set[int]) -> list[list[tuple[str, float]]]:
        """Scan a match set's 8-bit codes, then re-rank the candidates that can win."""
        depth = min(len(small.rowids), rerank_depth(k + len(excluded)))
        approx, at = small.codes.search(np.ascontiguousarray(q), depth)
        cand = np.where(at >= 0, small.rowids[np.maximum(at, 0)], -1)
        return self._rerank(q, approx, cand, k, excluded, code_error(small.codes.sq, q))

    def _cached_match(self, node: Node, ix: VectorIndex) -> Match:
        """The filter's matches from the in-memory filter cache.

        No SQL when nothing changed since the last query: the index sync just
        proved the store is at ``ix.seq``, the seq the cache reflects.
        """
        fc = self._filter_cache
        if fc.seq != ix.seq or any(f not in fc.columns for f in fields(node)):
            with self._tx("DEFERRED") as con:      # one snapshot for the whole catch-up
                fc.refresh(con, self._meta_int(con, "seq"), self._meta_int(con, "floor"),
                           node)
        return fc.match(node)

    def _sql_match(self, node: Node) -> np.ndarray:
        """The filter's matches by asking SQLite (filters the cache cannot answer)."""
        compiler = SQLCompiler()
        sql = compiler.compile(node)
        self._auto_index(node)
        # One text row instead of a tuple per match: far fewer Python objects.
        text = self._con.execute(f"SELECT group_concat(rowid) FROM items WHERE {sql}",
                                 compiler.params).fetchone()[0]
        match = (np.array(text.split(","), dtype=np.int64) if text
                 else np.empty(0, dtype=np.int64))
        bits = np.zeros(int(match.max()) + 1 if len(match) else 0, dtype=bool)
        bits[match] = True
        return bits

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
        approx, cand = ix.search(q, rerank_depth(want), nprobe=self._nprobe(ix))
        return self._rerank(q, approx, cand, k, excluded, ix.score_error(q))

    def _search_selected(self, ix: VectorIndex, q: np.ndarray, k: int,
                         match: Match) -> list[list[tuple[str, float]]]:
        """Search only the rows of ``match`` through the index, with a bitmap selector.

        IVF: probe enough lists to expect :data:`_MATCHES_PER_DEPTH` times the
        re-rank depth in matches (never fewer than an unfiltered query), then
        widen, four times at a step, for queries whose lists held fewer.
        """
        # The selector only points at `match.packed`: `match` outlives every search below.
        import faiss  # (loaded on first use, as in vector_index)

        sel = faiss.IDSelectorBitmap(len(match.packed), faiss.swig_ptr(match.packed))
        if ix.kind == FLAT:
            scores, rowids = ix.search(q, min(k, match.count), selector=sel, allow=match.bits)
            return self._finish(scores, rowids, k, set())
        depth = min(rerank_depth(k), match.count)
        per_list = match.count / ix.nlist
        nprobe = min(ix.nlist, max(self._nprobe(ix),
                                   math.ceil(_MATCHES_PER_DEPTH * depth / per_list)))
        approx, cand = ix.search(q, depth, selector=sel, nprobe=nprobe)
        short = (cand >= 0).sum(axis=1) < depth
        while short.any() and nprobe < ix.nlist:
            nprobe = min(ix.nlist, 4 * nprobe)
            rows = np.flatnonzero(short)
            approx[rows], cand[rows] = ix.search(q[rows], depth, selector=sel, nprobe=nprobe)
            short[rows] = (cand[rows] >= 0).sum(axis=1) < depth
        return self._rerank(q, approx, cand, k, set(), ix.score_error(q))

    def _rerank(self, q: np.ndarray, approx: np.ndarray, cand: np.ndarray, k: int,
                excluded: set[int], margin: np.ndarray) -> list[list[tuple[str, float]]]:
        """Exact scores for the code-scored candidates that can still reach the top k.

        The codes' scores are off by at most ``margin`` (a 6-sigma bound, see
        :func:`~imgfind.stores.vector_index.code_error`), so a candidate scoring
        below the k-th by more than that cannot displace it: only the rest are
        read from SQLite, typically 10-30 rows instead of the whole candidate list.
        """
        gone = np.fromiter(excluded, dtype=np.int64) if excluded else None
        keep: list[np.ndarray] = []
        for qi in range(len(q)):
            ok = cand[qi] >= 0
            if gone is not None:
                ok &= ~np.isin(cand[qi], gone)
            c, s = cand[qi][ok], approx[qi][ok]        # best first, as faiss returns them
            if len(c) > k:
                c = c[s >= s[k - 1] - margin[qi]]
            keep.append(c)
        wanted = sorted(set(np.concatenate(keep).tolist())) if keep else []
        if not wanted:
            return [[] for _ in range(len(q))]
        # Vectors only: the ids of the k winners come after, so the rows that lose cost
        # one B-tree lookup each, not two (25% less time on a cold 1M store).
        found = list(self._iter_vectors(np.array(wanted, dtype=np.int64)))
        got = np.concatenate([f[0] for f in found])
        vecs = np.concatenate([f[1] for f in found])
        pos = {int(r): n for n, r in enumerate(got)}
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        rowids = np.full((len(q), k), -1, dtype=np.int64)
        for qi in range(len(q)):
            idx = [pos[x] for x in dict.fromkeys(keep[qi].tolist()) if x in pos]
            if idx:
                sc = vecs[idx] @ q[qi]
                order = np.argsort(-sc, kind="stable")[:k]
                scores[qi, :len(order)] = sc[order]
                rowids[qi, :len(order)] = got[np.asarray(idx)[order]]
        return self._finish(scores, rowids, k, set())

    def _finish(self, scores: np.ndarray, rowids: np.ndarray, k: int,
                excluded: set[int]) -> list[list[tuple[str, float]]]:
        """Map exact (score, rowid) results to ids, best first, dropping excluded rows."""
        # whole-array numpy, then plain Python values: per-element numpy scalars cost
        # ~1 us each, a third of a 100-deep search's mapping (hybrid text queries)
        wanted = [r for r in np.unique(rowids[rowids >= 0]).tolist() if r not in excluded]
        id_of: dict[int, str] = {}
        for chunk in _chunks(wanted):
            id_of.update(self._con.execute(
                f"SELECT rowid, id FROM items WHERE rowid IN ({_qs(len(chunk))})", chunk))
        out = []
        for s_row, r_row in zip(scores, rowids, strict=True):
            order = np.argsort(-s_row, kind="stable")
            hits = [(id_of[r], s) for r, s in zip(r_row[order].tolist(), s_row[order].tolist())
                    if r in id_of]
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

    def _auto_index(self, where: dict | Node | None) -> None:
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

