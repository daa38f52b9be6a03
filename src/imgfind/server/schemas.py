"""Request and response models of the REST API (they document themselves in /docs).

Request models forbid unknown fields (a typo answers 422 ``unknown_field``).
Response models are documentation only: routes return plain dicts, nothing is
re-validated.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..types import DuplicateGroup, Item, Result

TAGS = [
    {"name": "collections", "description": "Named collections, each bound to one model."},
    {"name": "items", "description": "Insert, update, get and delete images and metadata."},
    {"name": "search", "description": "Search by text, image, vector, existing item or "
                                      "metadata text; duplicate groups."},
    {"name": "jobs", "description": "Background indexing of server-side folders."},
    {"name": "health", "description": "Liveness, index health and rebuild."},
]


# -- request models (JSON bodies with a fixed shape; they document themselves in /docs) ---------

class Strict(BaseModel):
    """A request body: an unknown field is an error, never ignored."""

    model_config = ConfigDict(extra="forbid")


class CollectionIn(Strict):
    name: str = Field(description="collection name", examples=["photos"])
    model: str | None = Field(None, description="model name; omitted = the server's "
                                                "default model (its --model-path)")
    ocr: bool = Field(False, description="also read the text inside images (in the "
                                         "background, after embedding)")


class IdsIn(Strict):
    ids: list[str] = Field(description="item ids to delete")


class QueryIn(Strict):
    text: str | None = Field(None, description="natural-language query")
    vector: list[float] | None = Field(None, description="query vector (collection dim)")
    like: str | None = Field(None, description="id of an item: more like this one")
    url: str | None = Field(None, description="http(s) URL of a query image")
    image_b64: str | None = Field(None, description="query image bytes, base64")
    positive: list[Any] | None = Field(None, description="more examples to look like: "
                                       "objects with one of text, url, image_b64, vector, "
                                       "like, and an optional weight (default 1)")
    negative: list[Any] | None = Field(None, description="examples to look unlike (weight "
                                       "default 0.5)")
    weights: list[Any] | None = Field(None, description="one weight per example, positives "
                                      "first")
    k: Any = Field(None, description="number of hits, 1..10000 (default 10)")
    where: Any = Field(None, description="metadata filter (see docs/filters)")
    min_score: Any = Field(None, description="drop hits below this cosine similarity")
    sort: Any = Field(None, description="score (default), taken, -taken, added, -added")
    mode: Any = Field(None, description="vector, text or hybrid (default for text)")


class SearchBatchIn(Strict):
    queries: list[QueryIn]
    k: Any = 10
    where: Any = None
    min_score: Any = None
    sort: Any = None
    mode: Any = None


class IndexJobIn(Strict):
    path: str | list[str] = Field(description="server-side folder, file, glob or CSV inside "
                                              "an --allow-path root (or a list of them)")
    recursive: bool = True
    skip_duplicates: bool = True
    remove_missing: bool = True


# -- response models (documentation only: routes return plain dicts, nothing is re-validated) --

class ErrorDetail(BaseModel):
    code: str = Field(description="stable code from imgfind.errors", examples=["not_found"])
    message: str = Field(description="what went wrong and what to do about it")


class ErrorOut(BaseModel):
    error: ErrorDetail


class CollectionOut(BaseModel):
    name: str
    model: str
    dim: int
    created: str | None = None
    count: int | None          # None when the store cannot be opened (see problem)
    ocr: bool = False
    problem: str | None = None  # e.g. written by a newer imgfind: upgrade to open it


class CollectionsOut(BaseModel):
    collections: list[CollectionOut]


class ItemsOut(BaseModel):
    items: list[Item]
    total: int


class AddedOut(BaseModel):
    id: str
    item: Item
    duplicate: bool = Field(description="the same bytes were stored already: this is that item")


class ResultsOut(BaseModel):
    results: list[Result]


class HitOut(BaseModel):
    id: str
    score: float = Field(description="cosine similarity, higher is closer")
    source: str
    item: Item


class HitsOut(BaseModel):
    hits: list[HitOut]
    took_ms: float | None = None


class HitListsOut(BaseModel):
    results: list[list[HitOut]]


class GroupsOut(BaseModel):
    groups: list[DuplicateGroup]


class JobOut(BaseModel):
    id: str
    kind: str = Field("index", description="index, or reembed (its report's fields instead "
                                          "of the index counts: see ReembedJobOut)")
    collection: str
    paths: list[str]
    state: str = Field(description="running, done, cancelled or failed")
    done: int
    total: int | None
    indexed: int = 0
    updated: int = 0
    skipped: int = 0
    duplicates: int = Field(0, description="new files with the bytes of a stored item")
    removed: int = 0
    ignored: list[dict[str, Any]] = Field([], description="entries that are not images, "
                                          "each with its reason")
    errors: list[dict[str, Any]] = []
    error: ErrorDetail | None
    started: str
    finished: str | None


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text} for status, text in (
        (400, "bad input (invalid_input, invalid_filter)"),
        (401, "missing or wrong API key"),
        (404, "no such collection, item or job"),
        (413, "upload over the size limit"),
        (422, "not a usable image or source"))}


def out(model: type, status: int = 200) -> dict[str, Any]:
    """Route options documenting ``model`` as the answer without validating it at runtime."""
    return {"responses": {status: {"model": model}}, "response_model": None}


def body_doc(*, multipart: dict[str, str] | None = None,
             json_props: dict[str, str] | None = None) -> dict[str, Any]:
    """OpenAPI request-body docs for routes that parse the body themselves."""
    def schema(props: dict[str, str]) -> dict[str, Any]:
        return {"type": "object", "properties": {
            k: ({"type": "string", "format": "binary"} if t == "binary" else {"type": t})
            for k, t in props.items()}}
    content: dict[str, Any] = {}
    if json_props is not None:
        content["application/json"] = {"schema": schema(json_props)}
    if multipart is not None:
        content["multipart/form-data"] = {"schema": schema(multipart)}
    return {"requestBody": {"content": content, "required": True}}
