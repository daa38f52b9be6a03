"""Plain data types returned by the public API (library and HTTP client alike)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Item:
    """One stored image and everything known about it.

    ``source`` is where the image lives: a file path (referenced in place), an
    http(s) URL, or ``upload:<name>`` for bytes handed in directly (stored).
    ``stored`` says whether imgfind holds the original bytes itself.
    """

    id: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)
    exif: dict[str, Any] = field(default_factory=dict)
    file: dict[str, Any] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    format: str | None = None
    sha256: str | None = None
    taken: str | None = None
    stored: bool = False
    added: str | None = None
    updated: str | None = None
    #: text read inside the image, for collections with OCR: ``{"text": str, "lines":
    #: [{"text", "confidence", "box": [[x, y] x 4]}], "engine": str}`` (plus ``"error"``
    #: when the image could not be read); None until the OCR pass reaches the item
    ocr: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict; nested dicts are the item's own, not copies (a REST
        search encodes ten of these per query: ``asdict``'s deep copy took 37 us each)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Item:
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Hit:
    """A search result: the item and its similarity ``score`` (cosine, higher is closer)."""

    id: str
    score: float
    item: Item

    @property
    def source(self) -> str:
        return self.item.source

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score, "source": self.item.source,
                "item": self.item.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hit:
        return cls(id=d["id"], score=float(d["score"]), item=Item.from_dict(d["item"]))


@dataclass(frozen=True)
class Result:
    """Outcome of one item of a batch call: ``id`` on success, ``error`` otherwise.

    ``code`` is the error's stable code (see ``imgfind.errors``) when it failed.
    """

    id: str | None
    error: str | None = None
    source: str | None = None
    code: str | None = None
    #: an insert found these bytes already stored: ``id`` is that item's
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        return cls(id=d.get("id"), error=d.get("error"), source=d.get("source"),
                   code=d.get("code"), duplicate=bool(d.get("duplicate")))


@dataclass
class IndexReport:
    """What ``Collection.add`` did: counts plus one entry per failed source."""

    indexed: int = 0
    updated: int = 0
    #: unchanged since the last run (same size and mtime, or same bytes)
    skipped: int = 0
    removed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    #: new files not stored because an item with the same bytes exists
    duplicates: int = 0
    #: entries that are not images at all, each ``{"source": ..., "reason": ...}``
    ignored: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"indexed": self.indexed, "updated": self.updated, "skipped": self.skipped,
                "duplicates": self.duplicates, "removed": self.removed,
                "ignored": list(self.ignored), "errors": list(self.errors)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexReport:
        return cls(indexed=d.get("indexed", 0), updated=d.get("updated", 0),
                   skipped=d.get("skipped", 0), removed=d.get("removed", 0),
                   errors=list(d.get("errors", [])), duplicates=d.get("duplicates", 0),
                   ignored=list(d.get("ignored", [])))


@dataclass(frozen=True)
class DuplicateLink:
    """One proven or observed relation between two items of a duplicate group.

    ``tier``: ``"exact"`` (same bytes), ``"near"`` (``b`` is ``a`` edited, proven by
    keypoints under the edit's geometry; ``edit`` says which, e.g. ``"rotated 90"``,
    ``"mirrored + cropped"``, ``"resized"``, ``"re-encoded"``) or ``"similar"`` (the
    collection's model finds them alike, cosine ``score`` >= the threshold, but no edit
    explains one by the other: e.g. two shots of a burst). ``score``: 1.0 for exact, the
    pHash agreement of the predicted edit for near (1 - 2*bits/64), the model's cosine for
    similar. ``inliers``: keypoints that agree with the edit (near only).
    """

    a: str
    b: str
    tier: str
    score: float
    edit: str | None = None
    inliers: int = 0


@dataclass(frozen=True)
class DuplicateGroup:
    """Images that are the same picture (or the same scene), in one group each.

    ``ids``: the members, the likely original first (most pixels, then file size, then
    id). ``tier``: the weakest relation that holds the group together: ``"exact"`` (all
    members have the same bytes), ``"near"`` (edited copies) or ``"similar"``.
    ``exact`` is ``tier == "exact"``. ``score``: the lowest of ``scores``.
    ``scores`` and ``edits`` map each member other than the first to its score and to the
    edit that makes it from the first (``"exact copy"``, ``"rotated 90"``, ...; None when
    it is related only through other members or only by the model). ``links``: every
    relation found inside the group (see :class:`DuplicateLink`).

    >>> g = DuplicateGroup(ids=["a", "b"], score=1.0, exact=True, tier="exact")
    >>> g.to_dict()["tier"]
    'exact'
    """

    ids: list[str]
    score: float
    exact: bool
    tier: str = "near"
    scores: dict[str, float] = field(default_factory=dict)
    edits: dict[str, str | None] = field(default_factory=dict)
    links: list[DuplicateLink] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DuplicateGroup:
        return cls(ids=list(d["ids"]), score=float(d["score"]), exact=bool(d["exact"]),
                   tier=d.get("tier", "exact" if d["exact"] else "near"),
                   scores={k: float(v) for k, v in d.get("scores", {}).items()},
                   edits=dict(d.get("edits", {})),
                   links=[DuplicateLink(**x) for x in d.get("links", [])])

@dataclass
class ReembedReport:
    """What a re-embed did. ``switched``: the collection now uses ``model``."""

    model: str
    dim: int
    previous_model: str
    total: int = 0
    embedded: int = 0
    deleted: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    switched: bool = False
    cancelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReembedReport:
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in d.items() if k in names})

@dataclass(frozen=True)
class CollectionInfo:
    """A collection's identity: its name and the model its vectors come from."""

    name: str
    model: str            # embedder name, e.g. "ViT-B-32__openai"
    dim: int
    model_path: str | None = None   # local model folder it was created with, if any
    created: str | None = None
    # Why the collection is listed but cannot be opened (e.g. written by a newer imgfind).
    problem: str | None = None
    ocr: bool = False     # read text inside images (a pass after embedding; see imgfind.ocr)
