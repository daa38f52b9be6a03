"""The Milvus collection layout of one imgfind collection, and rows <-> items.

Fields: ``id`` (primary key), ``vector`` (unit-length float32, inner product =
cosine), the item facts filters compare as scalar fields (``source``,
``width``, ``height``, ``format``, ``sha256``, ``taken``, ``stored``,
``added``, ``updated``), ``metadata`` / ``exif`` / ``file`` as JSON, ``ord``
(listing order: Milvus has no insertion order), ``thumb`` / ``orig`` (blob
store keys) and ``text`` (lower-cased source path and the words of metadata,
EXIF and the file name) with Milvus' BM25 function writing ``sparse``.

Vector index defaults (``index=auto``): HNSW (M=16, efConstruction=200, search
ef = max(64, 2k)) up to ``IVF_FROM`` expected items, IVF_SQ8 (nlist = 4 sqrt(n),
nprobe = nlist / 16) above, where HNSW's graph (M x 2 x 4 bytes per vector on
top of the float32 vector) stops fitting query nodes' memory economically.
"""

from __future__ import annotations

import json
import math
import operator
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ...errors import InvalidInput, ModelMismatch
from ...types import Item
from ..base import CollectionInfo, Record
from ..records import clean_json, text_values

__all__ = ["INDEX_KINDS", "ITEM_FIELDS", "IndexSpec", "build_schema",
           "collection_name", "index_params", "info_from_description", "info_to_description",
           "item_from_row", "normalize", "text_of"]

TEXT_MAX = 60_000
_WORD = re.compile(r"[^\W_]+")
IVF_FROM = 50_000_000
# What ``index=`` may name. Milvus Lite builds FLAT, HNSW, IVF_FLAT and IVF_SQ8;
# IVF_PQ and DISKANN need Milvus Standalone/Distributed, AUTOINDEX Zilliz Cloud.
INDEX_KINDS = ("auto", "FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "DISKANN",
               "AUTOINDEX")
# Every field an Item is built from (search and get read these in one call).
ITEM_FIELDS = ["id", "source", "metadata", "exif", "file", "width", "height", "format",
               "sha256", "taken", "stored", "added", "updated"]
_MARK = "imgfind-collection"
INFO_KEY = "imgfind.collection"   # the collection property holding CollectionInfo


@dataclass(frozen=True)
class IndexSpec:
    """Vector index choice: ``kind`` in :data:`INDEX_KINDS`, tuned for ``expected`` items."""

    kind: str = "auto"
    expected: int = 1_000_000
    m: int = 16
    ef_construction: int = 200
    nlist: int | None = None
    nprobe: int | None = None     # IVF lists searched (None: nlist / 16, at least 8)
    ef: int | None = None         # HNSW search breadth (None: max(64, 2k))

    def resolved(self) -> str:
        if self.kind not in INDEX_KINDS:
            raise InvalidInput(f"unknown Milvus index {self.kind!r}; use one of "
                               f"{', '.join(INDEX_KINDS)}")
        if self.kind == "auto":
            return "IVF_SQ8" if self.expected >= IVF_FROM else "HNSW"
        return self.kind

    def lists(self) -> int:
        return self.nlist or max(16, min(65536, int(4 * math.sqrt(max(self.expected, 1)))))

    def build_params(self) -> dict[str, Any]:
        kind = self.resolved()
        if kind == "HNSW":
            return {"M": self.m, "efConstruction": self.ef_construction}
        if kind == "IVF_PQ":
            return {"nlist": self.lists(), "m": 64, "nbits": 8}
        if kind.startswith("IVF"):
            return {"nlist": self.lists()}
        return {}

    def search_params(self, k: int) -> dict[str, Any]:
        kind = self.resolved()
        if kind == "HNSW":
            return {"ef": max(self.ef or 64, 2 * k)}
        if kind.startswith("IVF"):
            return {"nprobe": self.nprobe or max(8, self.lists() // 16)}
        if kind == "DISKANN":
            return {"search_list": max(100, 2 * k)}
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.resolved(), "params": self.build_params(),
                "expected": self.expected}


def collection_name(prefix: str, name: str) -> str:
    """imgfind name -> Milvus name (letters, digits, '_' only; one-to-one).

    >>> collection_name("imgfind_", "my-photos.v2")
    'imgfind_my_dphotos_pv2'
    """
    return prefix + name.replace("_", "_u").replace("-", "_d").replace(".", "_p")


def info_to_description(info: CollectionInfo, index: IndexSpec, replicas: int = 1) -> str:
    return json.dumps({"kind": _MARK, "name": info.name, "model": info.model, "dim": info.dim,
                       "model_path": info.model_path, "created": info.created,
                       "replicas": replicas,
                       "index": {"kind": index.kind, "expected": index.expected,
                                 "m": index.m, "ef_construction": index.ef_construction,
                                 "nlist": index.nlist}})


def info_from_description(text: str) -> tuple[CollectionInfo, IndexSpec] | None:
    """None where the description is not one imgfind wrote (a foreign collection)."""
    try:
        d = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(d, dict) or d.get("kind") != _MARK:
        return None
    ix = d.get("index") or {}
    return (CollectionInfo(name=d["name"], model=d["model"], dim=int(d["dim"]),
                           model_path=d.get("model_path"), created=d.get("created")),
            IndexSpec(kind=ix.get("kind", "auto"), expected=int(ix.get("expected", 1_000_000)),
                      m=int(ix.get("m", 16)), ef_construction=int(ix.get("ef_construction", 200)),
                      nlist=ix.get("nlist")))


def build_schema(client: Any, dim: int) -> Any:
    from pymilvus import DataType, Function, FunctionType  # type: ignore[import-untyped]

    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=1024)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("source", DataType.VARCHAR, max_length=65535)
    for name in ("width", "height"):
        s.add_field(name, DataType.INT64, nullable=True)
    for name, n in (("format", 64), ("sha256", 128), ("taken", 64), ("thumb", 128),
                    ("orig", 128)):
        s.add_field(name, DataType.VARCHAR, max_length=n, nullable=True)
    s.add_field("stored", DataType.INT64)
    s.add_field("added", DataType.VARCHAR, max_length=64)
    s.add_field("updated", DataType.VARCHAR, max_length=64)
    s.add_field("ord", DataType.INT64)
    for name in ("metadata", "exif", "file"):
        s.add_field(name, DataType.JSON)
    s.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                            input_field_names=["text"], output_field_names=["sparse"]))
    return s


def index_params(client: Any, spec: IndexSpec) -> Any:
    p = client.prepare_index_params()
    p.add_index("vector", index_type=spec.resolved(), metric_type="IP",
                params=spec.build_params())
    p.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    return p


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def check_metadata(value: Any, id: str) -> dict[str, Any]:
    """User metadata must be plain JSON (the same rule as the SQLite store)."""
    if not isinstance(value, dict):
        raise InvalidInput(f"metadata of item {id!r} must be a JSON object (dict)")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"metadata of item {id!r} is not plain JSON ({e}); use strings, "
                           "finite numbers, booleans, null, lists and objects") from e
    return value


def text_of(source: str, metadata: dict[str, Any], exif: dict[str, Any],
            file: dict[str, Any]) -> str:
    """What full-text search reads: its words, lower-cased, one space apart.

    Words are split as SQLite's FTS5 splits them (``_`` and punctuation separate
    words), so BM25 sees ``dog`` in ``/photos/dog_5.jpg``; lower case because
    Milvus' LIKE is case-sensitive.

    >>> text_of("/p/Dog_5.jpg", {"tags": ["Beach"]}, {}, {})
    'p dog 5 jpg beach'
    """
    out = [source]
    text_values(metadata, out)
    text_values(exif, out)
    name = file.get("name") if isinstance(file, dict) else None
    if isinstance(name, str):
        out.append(name)
    return " ".join(words_of("\n".join(out)))[:TEXT_MAX]


def words_of(text: str) -> list[str]:
    """Lower-cased words (letters and digits) of ``text``, accents removed (as SQLite's
    ``remove_diacritics``), so ``creme`` finds ``crème``.

    >>> words_of("Crème_brûlée.JPG")
    ['creme', 'brulee', 'jpg']
    """
    plain = "".join(c for c in unicodedata.normalize("NFKD", text.lower())
                    if not unicodedata.combining(c))
    return _WORD.findall(plain)


def normalize(v: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(v).all():
        raise InvalidInput(f"a {what} holds NaN or infinite values; check the embedder output")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InvalidInput(f"a {what} is all zeros and has no direction; it cannot be searched")
    return np.ascontiguousarray(v / norms, dtype=np.float32)


def check_vectors(recs: list[Record], info: CollectionInfo) -> np.ndarray:
    out = np.empty((len(recs), info.dim), dtype=np.float32)
    for i, r in enumerate(recs):
        v = np.asarray(r.vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != info.dim:
            raise ModelMismatch(
                f"item {r.id!r} has a {v.shape[0]}-d vector but collection {info.name!r} "
                f"uses model {info.model!r} with {info.dim}-d vectors; embed with the "
                "collection's model")
        out[i] = v
    return normalize(out, "vector")


def check_queries(queries: Any, info: CollectionInfo) -> np.ndarray:
    """Query rows as unit float32 of the collection's dimension (ModelMismatch otherwise)."""
    q = np.asarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q.reshape(1, -1)
    if q.ndim != 2 or q.shape[1] != info.dim:
        raise ModelMismatch(
            f"query vectors have shape {tuple(np.shape(queries))}, collection {info.name!r} "
            f"(model {info.model!r}) needs {info.dim}-d vectors")
    return normalize(q.copy(), "query vector")


def checked_records(recs: list[Record], info: CollectionInfo) -> list[tuple[
        Record, list[float], dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """Each record with its unit vector and clean metadata / EXIF / file facts; raises the
    typed error of the first bad record (so a batch is written whole or not at all)."""
    vecs = check_vectors(recs, info)
    out = []
    for i, r in enumerate(recs):
        if not isinstance(r.source, str):
            raise InvalidInput(f"source of item {r.id!r} must be a string")
        meta = check_metadata(r.metadata or {}, r.id)
        exif, file = clean_json(r.exif or {}), clean_json(r.file or {})
        if not isinstance(exif, dict) or not isinstance(file, dict):
            raise InvalidInput(f"exif and file facts of item {r.id!r} must be objects")
        out.append((r, vecs[i].tolist(), meta, exif, file))
    return out


def row_of(r: Record, vector: list[float], meta: dict[str, Any], exif: dict[str, Any],
           file: dict[str, Any], prev: dict[str, Any] | None, now: str, ord: int, *,
           thumb: str | None, orig: str | None) -> dict[str, Any]:
    """The Milvus row of a record; a replaced item (``prev``) keeps ``added`` and ``ord``."""
    return {"id": r.id, "vector": vector, "source": r.source, "width": r.width,
            "height": r.height, "format": r.format, "sha256": r.sha256, "taken": r.taken,
            "thumb": thumb, "orig": orig, "stored": int(r.original is not None),
            "added": prev["added"] if prev else now, "updated": now,
            "ord": prev["ord"] if prev else ord, "metadata": meta, "exif": exif,
            "file": file, "text": text_of(r.source, meta, exif, file)}


def item_from_row(row: dict[str, Any]) -> Item:
    return Item(id=row["id"], source=row["source"], metadata=row.get("metadata") or {},
                exif=row.get("exif") or {}, file=row.get("file") or {},
                width=row.get("width"), height=row.get("height"), format=row.get("format"),
                sha256=row.get("sha256"), taken=row.get("taken"),
                stored=bool(row.get("stored")), added=row.get("added"),
                updated=row.get("updated"))


def lit(value: str) -> str:
    """A Milvus string literal (JSON quoting is the expression grammar's)."""
    return json.dumps(value, ensure_ascii=False)


def in_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(lit(v) for v in values) + "]"


def and_(*parts: str) -> str:
    parts = tuple(p for p in parts if p)
    if len(parts) == 1:
        return parts[0]
    return " and ".join(f"({p})" for p in parts)


def check_k(k: Any) -> int:
    try:
        n = operator.index(k)      # numpy integers too, but not floats or strings
    except TypeError:
        n = -1
    if n < 0:
        raise InvalidInput(f"k must be a non-negative integer, got {k!r}")
    return n
