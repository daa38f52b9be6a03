"""Row <-> Python conversions shared by the store's modules (JSON, full-text, items, vectors).

Stored vectors (``vectors.v``, ``staged_vectors.v``) go through :func:`encode_vectors`
and :func:`decode_vectors` only: new rows are little-endian float16; rows written
before schema 5 are float32 and are read as they are (see the package docstring).
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ...errors import InvalidInput, StoreError
from ...types import Item
from ..records import text_values

_CHUNK = 65536          # rows per chunk when streaming vectors (bounded memory)
_IN_CHUNK = 900         # ids per "IN (...)" list, well under SQLite's variable limit

#: how new vectors are stored: unit-length cosines need ~3 significant digits, and half
#: the bytes put 15 512-d rows on a 16 KiB page instead of 7 (issue 9 part 3: disk)
STORED = np.dtype("<f2")
_OLD = np.dtype("<f4")     # rows written before schema 5 (float32, little-endian)

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


def _obj(text: str) -> dict[str, Any]:
    # Most items have no EXIF or user metadata: skip the decoder for the empty object
    # (search hits read three of these per item).
    return {} if text == "{}" else json.loads(text)


def _item(row: Sequence[Any]) -> Item:
    ocr = None
    if row[13] is not None:
        ocr = {"text": row[13], **(json.loads(row[14]) if row[14] else {"lines": []})}
    return Item(id=row[0], source=row[1], metadata=_obj(row[2]),
                exif=_obj(row[3]), file=_obj(row[4]), width=row[5],
                height=row[6], format=row[7], sha256=row[8], taken=row[9],
                stored=bool(row[10]), added=row[11], updated=row[12], ocr=ocr)


def encode_vectors(vectors: np.ndarray) -> list[bytes]:
    """(n, dim) vectors -> one stored blob per row (float16, 2 * dim bytes).

    Callers pass unit-length vectors (:func:`_normalize`): every value is within
    [-1, 1], so nothing overflows float16, and a cosine from the stored values is
    within ~1e-3 of the float32 one.

    >>> [len(b) for b in encode_vectors(np.eye(2, 3, dtype=np.float32))]
    [6, 6]
    """
    v = np.ascontiguousarray(vectors, dtype=STORED)
    return [row.tobytes() for row in v]


def decode_vectors(blobs: Sequence[bytes], dim: int,
                   rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Stored blobs -> (len(blobs), dim) float32, each blob decoded by its length.

    ``2 * dim`` bytes is float16 (written since schema 5), ``4 * dim`` float32
    (older rows, never rewritten at upgrade); a store may hold both. Any other
    length is a damaged row: StoreError naming it (``rows[i]``, the rowid, when
    given), never a misread.

    >>> decode_vectors(encode_vectors(np.array([[0.5, -1.0]], np.float32)), 2)
    array([[ 0.5, -1. ]], dtype=float32)
    >>> decode_vectors([np.array([0.5, -1.0], np.float32).tobytes()], 2)
    array([[ 0.5, -1. ]], dtype=float32)
    """
    half, full = 2 * dim, 4 * dim
    n = len(blobs)
    if n == 0:
        return np.empty((0, dim), dtype=np.float32)
    sizes = set(map(len, blobs))
    if sizes == {half}:
        return np.frombuffer(b"".join(blobs), dtype=STORED).reshape(n, dim).astype(np.float32)
    if sizes == {full}:
        return np.frombuffer(b"".join(blobs), dtype=_OLD).reshape(n, dim).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for i, b in enumerate(blobs):
        if len(b) == half:
            out[i] = np.frombuffer(b, dtype=STORED)
        elif len(b) == full:
            out[i] = np.frombuffer(b, dtype=_OLD)
        else:
            where = f"row {rows[i]}" if rows is not None else f"blob {i} of the batch"
            raise StoreError(
                f"the stored vector of {where} is {len(b)} bytes, but a {dim}-d vector "
                f"takes {half} (float16) or {full} (float32): the row is damaged; run "
                "check, then delete that item and add it again")
    return out
