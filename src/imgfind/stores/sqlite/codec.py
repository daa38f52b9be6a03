"""Row <-> Python conversions shared by the store's modules (JSON, full-text, items)."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ...errors import InvalidInput
from ...types import Item
from ..records import text_values

_CHUNK = 65536          # rows per chunk when streaming vectors (bounded memory)
_IN_CHUNK = 900         # ids per "IN (...)" list, well under SQLite's variable limit

_ITEM_COLS = ("id, source, metadata, exif, file, width, height, format, sha256, taken, "
              "stored, added, updated")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _chunks(seq: Sequence[Any], n: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def _qs(n: int) -> str:
    return ",".join("?" * n)


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


def _fts_body(metadata: dict[str, Any], exif: dict[str, Any], file: dict[str, Any]) -> str:
    out: list[str] = []
    text_values(metadata, out)
    text_values(exif, out)
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


def _check_k(k: Any) -> int:
    try:
        n = operator.index(k)      # numpy integers too, but not floats or strings
    except TypeError:
        n = -1
    if n < 0:
        raise InvalidInput(f"k must be a non-negative integer, got {k!r}")
    return n



def _normalize(v: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(v).all():
        raise InvalidInput(f"a {what} holds NaN or infinite values; check the embedder output")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InvalidInput(f"a {what} is all zeros and has no direction; it cannot be searched")
    return np.ascontiguousarray(v / norms, dtype=np.float32)


#: what ``get`` reads: the written columns plus those later passes fill in (OCR)
_READ_COLS = _ITEM_COLS + ", ocr, ocr_lines"


def _item(row: Sequence[Any]) -> Item:
    ocr = None
    if row[13] is not None:
        ocr = {"text": row[13], **(json.loads(row[14]) if row[14] else {"lines": []})}
    return Item(id=row[0], source=row[1], metadata=json.loads(row[2]),
                exif=json.loads(row[3]), file=json.loads(row[4]), width=row[5],
                height=row[6], format=row[7], sha256=row[8], taken=row[9],
                stored=bool(row[10]), added=row[11], updated=row[12], ocr=ocr)

