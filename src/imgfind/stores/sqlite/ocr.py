"""Text read inside images (OCR): stored per item, indexed by trigrams, searched with the rest.

Columns ``items.ocr`` (the text, lines joined by newlines; NULL until the OCR pass has
read the item) and ``items.ocr_lines`` (JSON: lines with confidence and box, the engine,
an error if the image could not be read), from migration 3. ``ocr_fts`` indexes the
text by trigrams: a word is found inside whatever OCR glued it to ("EXITcoffee").
A replaced item's OCR is cleared (its pixels may have changed) so the pass reads it again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ...filters import compile_filter
from .codec import _check_k, _chunks, _qs
from .rows import RowStore

__all__ = ["OcrRows", "ocr_query"]


def ocr_query(text: str, max_terms: int = 32) -> str | None:
    """User text -> a trigram FTS5 query: every word of 3+ characters must occur.

    >>> ocr_query("Exit, to the coffee")
    '"Exit" "the" "coffee"'
    >>> ocr_query("to a") is None
    True
    """
    words = [w for w in re.findall(r"\w+", text or "") if len(w) >= 3][:max_terms]
    return " ".join(f'"{w}"' for w in words) if words else None


class OcrRows(RowStore):
    """OCR results of a store handle: write, list what is left to read, search."""

    def set_ocr(self, results: Mapping[str, Mapping[str, Any]]) -> int:
        """Store OCR results ``{id: {"text", "lines", "engine"?, "error"?}}`` in one
        transaction; ids no longer stored are skipped. Returns how many were written."""
        rows: list[tuple[str, str, str]] = []
        for id, r in results.items():
            rest = {"lines": [], **{k: v for k, v in r.items() if k != "text"}}
            rows.append((id, str(r.get("text") or ""), json.dumps(rest, ensure_ascii=False)))
        written = 0
        with self._lock, self._tx() as con:
            for id, text, extra in rows:
                row = con.execute("SELECT rowid FROM items WHERE id=?", (id,)).fetchone()
                if row is None:
                    continue
                con.execute("UPDATE items SET ocr=?, ocr_lines=? WHERE rowid=?",
                            (text, extra, row[0]))
                con.execute("DELETE FROM ocr_fts WHERE rowid=?", (row[0],))
                if text:
                    con.execute("INSERT INTO ocr_fts(rowid, text) VALUES (?, ?)",
                                (row[0], text))
                written += 1
        return written

    def ocr_todo(self, limit: int = 64, after: str | None = None) -> list[tuple[str, str]]:
        """(id, source) of items OCR has not read yet, in insertion order.

        ``after``: an id; only items inserted after it (to step past items a pass
        could not finish)."""
        start = 0
        with self._lock:
            if after is not None:
                row = self._con.execute("SELECT rowid FROM items WHERE id=?",
                                        (after,)).fetchone()
                start = row[0] if row else 0
            return [(r[0], r[1]) for r in self._con.execute(
                "SELECT id, source FROM items WHERE ocr IS NULL AND rowid > ? "
                "ORDER BY rowid LIMIT ?", (start, limit))]

    def ocr_progress(self) -> dict[str, int]:
        """{"done": items read, "pending": items not read yet, "with_text": items with text}."""
        with self._lock:
            total, pending, with_text = self._con.execute(
                "SELECT count(*), sum(ocr IS NULL), sum(ocr IS NOT NULL AND ocr != '') "
                "FROM items").fetchone()
        return {"done": total - (pending or 0), "pending": pending or 0,
                "with_text": with_text or 0}

    def reset_ocr(self, ids: Sequence[str] | None = None) -> int:
        """Forget OCR results (all, or of ``ids``) so the pass reads them again."""
        with self._lock, self._tx() as con:
            if ids is None:
                con.execute("DELETE FROM ocr_fts")
                return con.execute("UPDATE items SET ocr=NULL, ocr_lines=NULL "
                                   "WHERE ocr IS NOT NULL").rowcount
            n = 0
            for chunk in _chunks(list(dict.fromkeys(ids))):
                rowids = [r[0] for r in con.execute(
                    f"SELECT rowid FROM items WHERE id IN ({_qs(len(chunk))})", chunk)]
                con.executemany("DELETE FROM ocr_fts WHERE rowid=?", [(x,) for x in rowids])
                n += con.execute(f"UPDATE items SET ocr=NULL, ocr_lines=NULL WHERE rowid IN "
                                 f"({_qs(len(rowids))})", rowids).rowcount if rowids else 0
            return n

    def text_search(self, query: str, k: int = 10,
                    where: dict | None = None) -> list[tuple[str, float]]:
        """Full-text search over path, metadata, EXIF, file name and OCR text.

        An item is a hit when every word matches its path/metadata/EXIF (as word
        prefixes) or when every word of 3+ characters occurs in its OCR text (as a
        substring, any case). Scores are ``-bm25`` of each index, summed for an item
        found by both.
        """
        hits = super().text_search(query, k, where)
        match = ocr_query(query)
        k = _check_k(k)
        if match is None or k == 0:
            return hits
        sql, params = compile_filter(where)
        with self._lock:
            rows = self._con.execute(
                "SELECT i.id, bm25(ocr_fts) AS r FROM ocr_fts JOIN items i "
                f"ON i.rowid = ocr_fts.rowid WHERE ocr_fts MATCH ? AND {sql} ORDER BY r "
                "LIMIT ?", [match, *params, k]).fetchall()
        if not rows:
            return hits
        score: dict[str, float] = dict(hits)
        for id, r in rows:
            score[id] = score.get(id, 0.0) - float(r)
        return sorted(score.items(), key=lambda x: -x[1])[:k]

    def _rebuild_ocr_fts(self) -> int:
        """Refill ``ocr_fts`` from ``items.ocr`` (part of :meth:`rebuild`)."""
        with self._tx() as con:
            con.execute("DELETE FROM ocr_fts")
            con.execute("INSERT INTO ocr_fts(rowid, text) SELECT rowid, ocr FROM items "
                        "WHERE ocr IS NOT NULL AND ocr != ''")
            return con.execute("SELECT count(*) FROM ocr_fts").fetchone()[0]
