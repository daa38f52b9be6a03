"""One search query, validated once, for the library, the CLI, the server and the client.

A :class:`Query` says what to look for (positive and negative examples, each
text, an image, a vector or an existing item), how many hits (``k``), which
items may match (``where``), the lowest score worth showing (``min_score``),
the order of the hits (``sort``) and how text is ranked (``mode``). Building
one checks every argument and raises a typed error naming what was wrong;
after that, nothing checks it again.

The query vector is the weighted combination of the examples' unit vectors,
normalised::

    q = normalise( sum(w_i * positive_i) - sum(w_j * negative_j) )

with weights 1.0 for positives and 0.5 for negatives unless given (the ratio
of Qdrant's ``average_vector`` recommendation strategy, ``2*avg(pos) - avg(neg)``).

>>> q = Query.build("a beach", positive=["sunset"], negative=["people"], k=5)
>>> [(e.kind, e.value, e.weight) for e in q.positive + q.negative]
[('text', 'a beach', 1.0), ('text', 'sunset', 1.0), ('text', 'people', 0.5)]
>>> q.mode, q.k, q.sort
('hybrid', 5, 'score')
>>> Query.build("x", k=0)
Traceback (most recent call last):
imgfind.errors.InvalidInput: k must be an integer from 1 to 10000
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from PIL import Image

from .errors import InvalidFilter, InvalidInput, UnknownField

MAX_K = 10_000
#: Most examples (positive plus negative) in one query.
MAX_EXAMPLES = 64
#: Weight of an example when none is given.
POSITIVE_WEIGHT = 1.0
NEGATIVE_WEIGHT = 0.5
#: Reciprocal-rank fusion constant (Cormack, Clarke & Buettcher, SIGIR 2009): an item
#: at rank r of a ranking adds 1 / (RRF_K + r) to its fused score.
RRF_K = 60
#: Depth of each ranking fused in hybrid mode (at least k).
HYBRID_DEPTH = 100

SORTS = ("score", "taken", "-taken", "added", "-added")
LIST_SORTS = SORTS[1:]
MODES = ("vector", "text", "hybrid")
T = TypeVar("T")
Kind = Literal["text", "image", "vector", "like"]
Sort = Literal["score", "taken", "-taken", "added", "-added"]
ListSort = Literal["taken", "-taken", "added", "-added"]
Mode = Literal["vector", "text", "hybrid"]


@dataclass(frozen=True)
class Example:
    """One example of a query: ``kind`` is text, image, vector or like (an item id)."""

    kind: Kind
    value: Any
    weight: float = POSITIVE_WEIGHT


@dataclass(frozen=True)
class Query:
    """A validated search query. Build it with :meth:`build` (library arguments) or
    :meth:`from_wire` (a REST JSON body); ``to_wire`` is the inverse of ``from_wire``.

    >>> Query.build(like="3f9c0e1d", sort="-taken", min_score=0.2).positive
    (Example(kind='like', value='3f9c0e1d', weight=1.0),)
    """

    positive: tuple[Example, ...]
    negative: tuple[Example, ...] = ()
    k: int = 10
    where: dict[str, Any] | None = None
    min_score: float | None = None
    sort: Sort = "score"
    mode: Mode = "vector"

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def build(cls, query: Any = None, *, like: str | Sequence[str] | None = None,
              positive: Sequence[Any] | None = None, negative: Sequence[Any] | None = None,
              weights: Sequence[float] | None = None, k: Any = 10, where: Any = None,
              min_score: Any = None, sort: Any = "score", mode: Any = None) -> Query:
        """A query from library-style arguments.

        ``query`` and each example may be text, an image (path, ``Path``, http(s) URL,
        bytes, PIL image), a vector, or a dict with one of ``text``/``image``/``url``/
        ``vector``/``like`` (plus an optional ``weight``). ``like`` adds item ids as
        positives. ``weights`` gives one weight per example, positives first (the
        ``query`` and ``like`` examples count as the first positives).
        """
        if isinstance(query, Query):
            raise InvalidInput("pass a Query on its own, without other query arguments")
        pos: list[Example] = []
        if query is not None:
            pos.append(example(query))
        if like is not None:
            ids = [like] if isinstance(like, str) else like
            if not isinstance(ids, (list, tuple)) or not ids:
                raise InvalidInput("like must be an item id or a list of item ids")
            pos += [example({"like": i}) for i in ids]
        pos += [example(e) for e in _seq(positive, "positive")]
        neg = [example(e, NEGATIVE_WEIGHT) for e in _seq(negative, "negative")]
        if weights is not None:
            pos, neg = _apply_weights(pos, neg, weights)
        return cls.of(pos, neg, k=k, where=where, min_score=min_score, sort=sort, mode=mode)

    @classmethod
    def of(cls, positive: Sequence[Example], negative: Sequence[Example] = (), *,
           k: Any = 10, where: Any = None, min_score: Any = None, sort: Any = "score",
           mode: Any = None) -> Query:
        """A query from examples already made; checks everything else."""
        positive, negative = tuple(positive), tuple(negative)
        if not positive:
            raise InvalidInput("a search needs a query or at least one positive example "
                               "(text, image, vector or like=<id>)")
        if len(positive) + len(negative) > MAX_EXAMPLES:
            raise InvalidInput(f"at most {MAX_EXAMPLES} examples per query")
        mode = check_mode(mode, positive, negative)
        min_score = check_min_score(min_score)
        if mode == "text" and min_score is not None:
            raise InvalidInput("min_score is a cosine similarity; mode='text' ranks by words "
                               "alone and has none: use mode='hybrid' or 'vector'")
        return cls(positive=positive, negative=negative, k=check_k(k),
                   where=check_where(where), min_score=min_score, sort=check_sort(sort),
                   mode=mode)

    @classmethod
    def from_wire(cls, body: dict[str, Any],
                  decode_image: Callable[[str], bytes] = base64.b64decode) -> Query:
        """A query from its JSON shape (REST): ``text`` / ``vector`` / ``like`` / ``url`` /
        ``image_b64`` for the main example, ``positive`` / ``negative`` lists of such
        objects (each may carry ``weight``), ``weights``, ``k``, ``where``, ``min_score``,
        ``sort`` and ``mode``. ``decode_image`` turns base64 into bytes (the server
        passes its size-limited decoder); ``bytes`` (a multipart file) is taken as is.
        """
        main = {key: body[key] for key in _WIRE_KEYS if body.get(key) is not None}
        pos = [wire_example(main, decode_image)] if main else []
        pos += [wire_example(e, decode_image) for e in _seq(body.get("positive"), "positive")]
        neg = [wire_example(e, decode_image, NEGATIVE_WEIGHT)
               for e in _seq(body.get("negative"), "negative")]
        if body.get("weights") is not None:
            pos, neg = _apply_weights(pos, neg, body["weights"])
        def opt(name: str, default: Any) -> Any:
            return default if body.get(name) is None else body[name]
        return cls.of(pos, neg, k=opt("k", 10), where=body.get("where"),
                      min_score=body.get("min_score"), sort=opt("sort", "score"),
                      mode=body.get("mode"))

    def to_wire(self, encode: Callable[[Example], dict[str, Any]]) -> dict[str, Any]:
        """The JSON body of this query; ``encode`` turns one example into its wire object
        (the client uploads files and images as base64)."""
        def one(e: Example, default: float) -> dict[str, Any]:
            w = encode(e)
            return w if e.weight == default else {**w, "weight": e.weight}
        body: dict[str, Any] = {
            "positive": [one(e, POSITIVE_WEIGHT) for e in self.positive], "k": self.k,
            "sort": self.sort, "mode": self.mode}
        if self.negative:
            body["negative"] = [one(e, NEGATIVE_WEIGHT) for e in self.negative]
        if self.where is not None:
            body["where"] = self.where
        if self.min_score is not None:
            body["min_score"] = self.min_score
        return body

    # -- reading ------------------------------------------------------------------------------
    @property
    def examples(self) -> tuple[Example, ...]:
        return self.positive + self.negative

    @property
    def text(self) -> str | None:
        """The words the full-text ranking looks for: the positive texts, joined."""
        words = [e.value for e in self.positive if e.kind == "text"]
        return " ".join(words) if words else None

    @property
    def liked(self) -> list[str]:
        """Item ids used as examples; they are left out of the hits."""
        return [e.value for e in self.examples if e.kind == "like"]


# -- examples ---------------------------------------------------------------------------------

_WIRE_KEYS = ("text", "vector", "like", "url", "image_b64", "bytes")


def example(value: Any, weight: float = POSITIVE_WEIGHT) -> Example:
    """Classify one library example (see :meth:`Query.build`).

    >>> example("https://example.com/a.jpg").kind, example({"like": "ab12"}).kind
    ('image', 'like')
    """
    if isinstance(value, Example):
        return value
    if isinstance(value, dict):
        value = dict(value)
        if "weight" in value:
            weight = check_weight(value.pop("weight"))
        keys = [k for k in ("text", "image", "vector", "like", "url") if value.get(k) is not None]
        extra = sorted(set(value) - {"text", "image", "vector", "like", "url"})
        if extra:
            raise UnknownField(f"unknown field {extra[0]!r} in a query example")
        if len(keys) != 1:
            raise InvalidInput("a query example needs exactly one of text, image, url, "
                               "vector, like")
        key = keys[0]
        if key == "like":
            if not isinstance(value["like"], str) or not value["like"]:
                raise InvalidInput("'like' must be an item id (a non-empty string)")
            return Example("like", value["like"], weight)
        if key == "text":
            return Example("text", _text(value["text"]), weight)
        if key == "vector":
            return Example("vector", _vector(value["vector"]), weight)
        return Example("image", value[key], weight)
    if isinstance(value, np.ndarray) or (isinstance(value, (list, tuple)) and value and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)):
        return Example("vector", _vector(value), weight)
    if isinstance(value, (bytes, bytearray, Image.Image, Path)):
        return Example("image", value, weight)
    if isinstance(value, str):
        text = _text(value)
        if text.lower().startswith(("http://", "https://")):
            return Example("image", text, weight)
        if len(text) < 4096 and os.path.isfile(os.path.expanduser(text)):
            return Example("image", os.path.expanduser(text), weight)
        return Example("text", text, weight)
    raise InvalidInput(f"cannot search by a {type(value).__name__}")


def text_example(value: Any, weight: float = POSITIVE_WEIGHT) -> Example:
    """A text example, whatever the string looks like (no file or URL guessing)."""
    return Example("text", _text(value), weight)


def wire_example(d: Any, decode_image: Callable[[str], bytes],
                 weight: float = POSITIVE_WEIGHT) -> Example:
    """One example from its JSON object (REST)."""
    if not isinstance(d, dict):
        raise InvalidInput("each query example must be a JSON object like {\"text\": \"...\"}")
    d = dict(d)
    if "weight" in d:
        weight = check_weight(d.pop("weight"))
    extra = sorted(set(d) - set(_WIRE_KEYS))
    if extra:
        raise UnknownField(f"unknown field {extra[0]!r} in a query example")
    keys = [k for k in _WIRE_KEYS if d.get(k) is not None]
    if len(keys) != 1:
        raise InvalidInput("a search needs exactly one of: text, vector, like, url, "
                           "image_b64 or a multipart file")
    key, value = keys[0], d[keys[0]]
    if key == "url":
        if not isinstance(value, str) or not value.lower().startswith(("http://", "https://")):
            raise InvalidInput("'url' must be an http:// or https:// URL")
        return Example("image", value, weight)
    if key == "image_b64":
        if not isinstance(value, str):
            raise InvalidInput("'image_b64' must be a base64 string")
        return Example("image", decode_image(value), weight)
    if key == "bytes":
        return Example("image", value, weight)
    if key == "vector" and not isinstance(value, list):
        raise InvalidInput("'vector' must be a non-empty list of numbers")
    return example({key: value}, weight)


def combine(vectors: np.ndarray, query: Query) -> np.ndarray:
    """The query vector: ``normalise(sum w*pos - sum w*neg)`` over unit ``vectors`` given
    in ``query.examples`` order.

    >>> q = Query.build(positive=[[1.0, 0.0]], negative=[[0.0, 1.0]])
    >>> [round(float(x), 3) for x in combine(np.eye(2, dtype=np.float32), q)]
    [0.894, -0.447]
    """
    signs = [e.weight for e in query.positive] + [-e.weight for e in query.negative]
    v = np.asarray(signs, dtype=np.float32) @ np.asarray(vectors, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    if not math.isfinite(norm) or norm < 1e-6:
        raise InvalidInput("the examples cancel out: their weighted combination is zero")
    return (v / norm).astype(np.float32)


# -- checks (each argument is checked here, once) -------------------------------------------

def check_k(k: Any) -> int:
    """``k`` as an int from 1 to 10000, else ``InvalidInput``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be an integer from 1 to {MAX_K}")
    return int(k)


def check_where(where: Any) -> dict[str, Any] | None:
    """A filter dict, checked by the filter parser (``InvalidFilter`` names the problem)."""
    if where is None:
        return None
    if not isinstance(where, dict):
        raise InvalidFilter('where must be a JSON object, e.g. {"format": "JPEG"}')
    from .filters import parse

    parse(where)
    return where


def check_min_score(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not -1.0 <= value <= 1.0:
        raise InvalidInput("min_score must be a number from -1 to 1 (a cosine similarity)")
    return float(value)


def check_sort(value: Any, *, listing: bool = False) -> Sort:
    allowed = LIST_SORTS if listing else SORTS
    if value not in allowed:
        raise InvalidInput(f"sort must be one of {', '.join(allowed)}; got {value!r}")
    return value  # type: ignore[no-any-return]


def check_weight(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise InvalidInput("each weight must be a positive number")
    return float(value)


def check_mode(mode: Any, positive: Sequence[Example], negative: Sequence[Example]) -> Mode:
    """The ranking mode; ``None`` means hybrid when the query has text, else vector."""
    has_text = any(e.kind == "text" for e in positive)
    if mode is None:
        return "hybrid" if has_text else "vector"
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    if mode in ("text", "hybrid") and not has_text:
        raise InvalidInput(f"mode={mode!r} ranks by words: the query needs a text")
    if mode == "text" and (negative or any(e.kind != "text" for e in positive)):
        raise InvalidInput("mode='text' searches words only: images, vectors, items and "
                           "negative examples need mode='vector' or 'hybrid'")
    return mode  # type: ignore[no-any-return]


def sort_by(rows: Sequence[T], sort: str, item: Callable[[T], Any]) -> list[T]:
    """``rows`` in ``sort`` order; ``item(row)`` gives the row's ``Item``. ``"score"``
    keeps the given order.

    ``taken`` is the date taken, falling back to the date added; ``added`` the date
    added. Rows without a date go last in both directions, in their given order.
    """
    if sort == "score":
        return list(rows)
    name = sort.lstrip("-")

    def date(row: T) -> str | None:
        it = item(row)
        return (it.taken or it.added) if name == "taken" else it.added
    dated = [r for r in rows if date(r)]
    # sorted() is stable with reverse=True too: equal dates keep their order
    dated.sort(key=lambda r: date(r) or "", reverse=sort.startswith("-"))
    return dated + [r for r in rows if not date(r)]


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("'text' must be a non-empty string")
    return value


def _vector(value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidInput("'vector' must be a non-empty list of numbers") from None
    if not arr.size:
        raise InvalidInput("'vector' must be a non-empty list of numbers")
    if not np.all(np.isfinite(arr)) or not np.any(arr):
        raise InvalidInput("vector must be finite and non-zero")
    return arr


def _seq(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
        raise InvalidInput(f"{name} must be a list of examples")
    return list(value)


def _apply_weights(pos: list[Example], neg: list[Example],
                   weights: Any) -> tuple[list[Example], list[Example]]:
    if not isinstance(weights, (list, tuple)) or len(weights) != len(pos) + len(neg):
        raise InvalidInput(f"weights must be a list of {len(pos) + len(neg)} numbers, one "
                           "per example (positives first, then negatives)")
    ws = [check_weight(w) for w in weights]
    return ([Example(e.kind, e.value, w) for e, w in zip(pos, ws)],
            [Example(e.kind, e.value, w) for e, w in zip(neg, ws[len(pos):])])


__all__ = ["Example", "Query", "RRF_K", "SORTS", "LIST_SORTS", "MODES", "combine", "example",
           "check_k", "check_where", "check_sort", "check_min_score", "sort_by"]
