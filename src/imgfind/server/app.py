"""The REST API: FastAPI routes over the library API (``imgfind.api``), nothing more.

Every route is a thin translation: parse and bound the request, call the
library, turn its objects into JSON. Routes that embed images or text (CPU
bound) run in the threadpool, so the event loop never blocks. The web UI's
static files are served from ``server/static``.

>>> import imgfind
>>> from imgfind.server import create_app
>>> app = create_app(imgfind.open("/tmp/lib"), api_key="s3cret")   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile
from starlette.types import Scope

from .. import __version__, sources
from ..api import Collection, Library
from ..errors import (
    ImageTooLarge,
    ImgfindError,
    InvalidFilter,
    InvalidInput,
    NotFound,
    PathNotAllowed,
    Unauthorized,
)
from ..filters import compile_filter
from ..types import DuplicateGroup, Item, Result
from .errors import BodyLimitMiddleware, install_error_handlers
from .jobs import JobManager

STATIC_DIR = Path(__file__).parent / "static"

#: Room for multipart framing and JSON fields around one image.
_ENVELOPE_BYTES = 1 << 20
#: Largest ``limit`` of one page of items.
MAX_PAGE = 1000
#: Items sampled by ``/fields`` to list filterable keys.
FIELDS_SAMPLE = 500

TAGS = [
    {"name": "collections", "description": "Named collections, each bound to one model."},
    {"name": "items", "description": "Insert, update, get and delete images and metadata."},
    {"name": "search", "description": "Search by text, image, vector, existing item or "
                                      "metadata text; duplicate groups."},
    {"name": "jobs", "description": "Background indexing of server-side folders."},
    {"name": "health", "description": "Liveness, index health and rebuild."},
]


@dataclass(frozen=True)
class Settings:
    """What a running server allows; built by :func:`create_app` from its options."""

    api_key: str | None
    protect_reads: bool
    allow_paths: tuple[str, ...]
    max_upload_bytes: int
    max_request_bytes: int
    max_batch: int
    fetch_timeout: float

    def body_limit(self, scope: Scope) -> int:
        """Batch routes take up to ``max_request_bytes``; others one image (base64-sized)."""
        if scope.get("path", "").endswith("/batch"):
            return self.max_request_bytes
        return self.max_upload_bytes * 4 // 3 + _ENVELOPE_BYTES


# -- request models (JSON bodies with a fixed shape; they document themselves in /docs) ---------

class CollectionIn(BaseModel):
    name: str = Field(description="collection name", examples=["photos"])
    model: str | None = Field(None, description="model name; omitted = the server's "
                                                "default model (its --model-path)")


class IdsIn(BaseModel):
    ids: list[str] = Field(description="item ids to delete")


class QueryIn(BaseModel):
    text: str | None = Field(None, description="natural-language query")
    vector: list[float] | None = Field(None, description="query vector (collection dim)")
    like: str | None = Field(None, description="id of an item: more like this one")
    url: str | None = Field(None, description="http(s) URL of a query image")
    image_b64: str | None = Field(None, description="query image bytes, base64")


class SearchIn(QueryIn):
    k: Any = Field(10, description="number of hits, 1..10000")
    where: Any = Field(None, description="metadata filter (see docs/filters)")


class SearchBatchIn(BaseModel):
    queries: list[QueryIn]
    k: Any = 10
    where: Any = None


class IndexJobIn(BaseModel):
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
    count: int


class CollectionsOut(BaseModel):
    collections: list[CollectionOut]


class ItemsOut(BaseModel):
    items: list[Item]
    total: int


class AddedOut(BaseModel):
    id: str
    item: Item


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
    collection: str
    paths: list[str]
    state: str = Field(description="running, done, cancelled or failed")
    done: int
    total: int | None
    indexed: int
    updated: int
    skipped: int
    removed: int
    errors: list[dict[str, Any]]
    error: ErrorDetail | None
    started: str
    finished: str | None


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text} for status, text in (
        (400, "bad input (invalid_input, invalid_filter)"),
        (401, "missing or wrong API key"),
        (404, "no such collection, item or job"),
        (413, "upload over the size limit"),
        (422, "not a usable image or source"))}


def _out(model: type, status: int = 200) -> dict[str, Any]:
    """Route options documenting ``model`` as the answer without validating it at runtime."""
    return {"responses": {status: {"model": model}}, "response_model": None}


def create_app(library: Library, *, api_key: str | None = None, protect_reads: bool = False,
               allow_paths: tuple[str | Path, ...] | list[str | Path] = (),
               max_upload_bytes: int | None = None, max_request_bytes: int = 256 << 20,
               max_batch: int = 256, max_jobs: int = 2, fetch_timeout: float = 20.0,
               allow_private_urls: bool = False) -> FastAPI:
    """The FastAPI app serving ``library`` under ``/api``, with docs and the web UI.

    ``api_key``: writes need ``Authorization: Bearer <key>``; reads too with
    ``protect_reads``. ``allow_paths``: folders whose files callers may name
    by server-side path (none: such paths are refused). ``max_upload_bytes``
    (default: the library's image byte limit) bounds one image;
    ``max_request_bytes`` one batch request; ``max_batch`` its item count.
    Image URLs given by callers are fetched only from public addresses unless
    ``allow_private_urls`` (this sets the library's URL policy).

    >>> app = create_app(imgfind.open("/tmp/lib"), allow_paths=["/srv/photos"])  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)                            # doctest: +SKIP
    """
    if protect_reads and not api_key:
        raise InvalidInput("protect_reads needs an api_key (--api-key KEY)")
    # Callers must not make the server fetch from its own network (SSRF).
    library.allow_private_urls = allow_private_urls
    settings = Settings(
        api_key=api_key or None, protect_reads=protect_reads,
        allow_paths=tuple(str(Path(p).expanduser()) for p in allow_paths),
        max_upload_bytes=int(max_upload_bytes or library.limits.max_bytes),
        max_request_bytes=max_request_bytes, max_batch=max_batch, fetch_timeout=fetch_timeout)
    jobs = JobManager(max_running=max_jobs)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await run_in_threadpool(jobs.shutdown)

    app = FastAPI(
        title="imgfind", version=__version__, lifespan=lifespan, openapi_tags=TAGS,
        description="Self-hosted image search by example image, text and metadata. Errors "
                    'are `{"error": {"code", "message"}}` with a stable code. See '
                    "docs/rest-api.md for curl examples.")
    app.state.library = library
    app.state.settings = settings
    app.state.jobs = jobs
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit_for=settings.body_limit)
    app.include_router(_api_router(library, settings, jobs), prefix="/api")
    _mount_ui(app)
    return app


# -- auth -------------------------------------------------------------------------------------

#: cookie the web UI sets so image tags can load when reads need the key
KEY_COOKIE = "imgfind_key"

# Module level: the dependency's annotation is resolved against this module's globals.
_BEARER = HTTPBearer(auto_error=False, description="the server's --api-key")


def _auth(settings: Settings, *, write: bool) -> Callable[..., None]:
    required = settings.api_key is not None and (write or settings.protect_reads)

    def check(cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
              request: Request) -> None:
        if not required:
            return
        given = cred.credentials.encode() if cred else b""
        if not given and not write:
            # <img> tags cannot send a header: the web UI mirrors the key into a
            # SameSite=Strict cookie, honoured for reads only (writes need the header,
            # so a forged cross-site request can never write).
            given = unquote(request.cookies.get(KEY_COOKIE, "")).encode()
        # Constant time: the comparison must not leak how much of a guess was right.
        if not hmac.compare_digest(given, settings.api_key.encode()):  # type: ignore[union-attr]
            raise Unauthorized("this request needs the API key: send "
                               "'Authorization: Bearer <key>' (the server's --api-key)")
    return check


# -- routes -----------------------------------------------------------------------------------

def _api_router(library: Library, settings: Settings, jobs: JobManager) -> APIRouter:
    read = [Depends(_auth(settings, write=False))]
    write = [Depends(_auth(settings, write=True))]
    r = APIRouter(responses=_ERRORS)
    col_path = "/collections/{c}"

    def col(c: str) -> Collection:
        return library.collection(c)

    def info(c: Collection) -> dict[str, Any]:
        i = c.info
        return {"name": i.name, "model": i.model, "dim": i.dim, "created": i.created,
                "count": c.count()}

    # health / collections -----------------------------------------------------------------
    @r.get("/health", tags=["health"], summary="Liveness, version and request limits")
    def health() -> dict[str, Any]:
        return {"ok": True, "version": __version__,
                "limits": {"max_upload_bytes": settings.max_upload_bytes,
                           "max_request_bytes": settings.max_request_bytes,
                           "max_batch": settings.max_batch, "max_page": MAX_PAGE},
                "auth": {"writes": settings.api_key is not None,
                         "reads": settings.protect_reads}}

    @r.get("/collections", tags=["collections"],
           **_out(CollectionsOut), summary="List collections", dependencies=read)
    def list_collections() -> dict[str, Any]:
        return {"collections": [info(col(i.name)) for i in library.collections()]}

    @r.post("/collections", tags=["collections"],
            **_out(CollectionOut, 201), summary="Create a collection",
            status_code=201, dependencies=write)
    def create_collection(body: CollectionIn) -> dict[str, Any]:
        return info(library.create_collection(body.name, model=body.model))

    @r.get(col_path, tags=["collections"], summary="Collection info and index state",
           dependencies=read)
    def get_collection(c: str) -> dict[str, Any]:
        collection = col(c)
        return {**info(collection), "index": collection.index_info()}

    @r.delete(col_path, tags=["collections"], summary="Drop a collection and all its items",
              dependencies=write)
    def drop_collection(c: str) -> dict[str, Any]:
        col(c)  # NotFound for a name that does not exist
        library.drop_collection(c)
        return {"dropped": c}

    # items: reads ---------------------------------------------------------------------------
    @r.get(col_path + "/items", tags=["items"],
           **_out(ItemsOut), summary="List items (paged, filtered)",
           dependencies=read)
    def list_items(c: str, limit: int = Query(50, ge=0, le=MAX_PAGE),
                   offset: int = Query(0, ge=0),
                   where: str | None = Query(None, description="filter as a JSON object")
                   ) -> dict[str, Any]:
        collection, flt = col(c), _where(where)
        items = collection.items(where=flt, limit=limit, offset=offset) if limit else []
        return {"items": [it.to_dict() for it in items], "total": collection.count(flt)}

    @r.get(col_path + "/items/{item_id}", tags=["items"],
           **_out(Item), summary="Get one item",
           dependencies=read)
    def get_item(c: str, item_id: str, vector: bool = False) -> dict[str, Any]:
        collection = col(c)
        out = collection.get(item_id).to_dict()
        if vector:
            out["vector"] = collection.vector(item_id).tolist()
        return out

    @r.get(col_path + "/items/{item_id}/image", tags=["items"], dependencies=read,
           summary="The original image bytes", response_class=Response)
    def get_image(c: str, item_id: str) -> Response:
        collection = col(c)
        item = collection.get(item_id)
        mime = Image.MIME.get((item.format or "").upper(), "application/octet-stream")
        return Response(collection.image(item_id), media_type=mime,
                        headers={"X-Content-Type-Options": "nosniff"})

    @r.get(col_path + "/items/{item_id}/thumbnail", tags=["items"], dependencies=read,
           summary="A small preview (JPEG, 256 px)", response_class=Response)
    def get_thumbnail(c: str, item_id: str) -> Response:
        data = col(c).thumbnail(item_id)
        mime = "image/jpeg" if data[:2] == b"\xff\xd8" else "image/webp"
        return Response(data, media_type=mime, headers={"X-Content-Type-Options": "nosniff",
                                                        "Cache-Control": "private, max-age=60"})

    @r.get(col_path + "/items/{item_id}/metadata", tags=["items"], dependencies=read,
           summary="The item's user metadata")
    def get_metadata(c: str, item_id: str) -> dict[str, Any]:
        return col(c).get(item_id).metadata

    @r.get(col_path + "/fields", tags=["items"], dependencies=read,
           summary="Filterable keys seen in the collection, with sample values")
    def fields(c: str) -> dict[str, Any]:
        return {"fields": _fields(col(c).items(limit=FIELDS_SAMPLE))}

    # items: writes --------------------------------------------------------------------------
    @r.post(col_path + "/items", tags=["items"],
            **_out(AddedOut, 201), status_code=201, dependencies=write,
            summary="Add one image (multipart file, or JSON url / path / image_b64)",
            openapi_extra=_body_doc(multipart={"file": "binary", "metadata": "string",
                                               "id": "string"},
                                    json_props={"url": "string", "path": "string",
                                                "image_b64": "string", "metadata": "object",
                                                "id": "string"}))
    async def add_item(c: str, request: Request) -> dict[str, Any]:
        entry = (await _read_single(request, settings))
        collection = col(c)
        image = _image_from(entry, settings)

        def work() -> dict[str, Any]:
            item_id = collection.insert(image, metadata=entry.get("metadata"),
                                        id=entry.get("id"))
            return {"id": item_id, "item": collection.get(item_id).to_dict()}
        return await run_in_threadpool(work)

    @r.post(col_path + "/items/batch", tags=["items"],
            **_out(ResultsOut), dependencies=write,
            summary="Add many images; one result per item, 200 even if some failed",
            openapi_extra=_body_doc(multipart={"files": "binary"},
                                    json_props={"items": "array"}))
    async def add_items(c: str, request: Request) -> dict[str, Any]:
        entries = await _read_batch(request, settings)
        collection = col(c)
        return {"results": await run_in_threadpool(
            _per_item, entries, settings,
            lambda good: collection.insert_batch(
                [{"image": img, "metadata": e.get("metadata"), "id": e.get("id")}
                 for e, img in good]))}

    @r.post(col_path + "/items/update", tags=["items"],
            **_out(ResultsOut), dependencies=write,
            summary="Update many items (image and/or metadata); one result per item")
    async def update_items(c: str, request: Request) -> dict[str, Any]:
        body = await _read_json(request)
        entries = _list_field(body, "items", settings)
        collection = col(c)

        def to_update(e: dict[str, Any], img: Any) -> dict[str, Any]:
            return {"id": e.get("id"), "image": img, "metadata": e.get("metadata"),
                    "merge": e.get("merge", False)}
        return {"results": await run_in_threadpool(
            _per_item, entries, settings,
            lambda good: collection.update_batch([to_update(e, img) for e, img in good]),
            True)}

    @r.patch(col_path + "/items/{item_id}", tags=["items"],
             **_out(Item), dependencies=write,
             summary="Replace an item's image and/or metadata (merge=true merges keys)",
             openapi_extra=_body_doc(multipart={"file": "binary", "metadata": "string",
                                                "merge": "boolean"},
                                     json_props={"metadata": "object", "merge": "boolean",
                                                 "url": "string", "image_b64": "string"}))
    async def update_item(c: str, item_id: str, request: Request) -> dict[str, Any]:
        entry = await _read_single(request, settings, need_image=False)
        collection = col(c)
        image = _image_from(entry, settings) if _has_image(entry) else None
        return (await run_in_threadpool(
            lambda: collection.update(item_id, image, entry.get("metadata"),
                                      merge=_bool(entry.get("merge", False))))).to_dict()

    async def write_metadata(c: str, item_id: str, request: Request, merge: bool) -> Any:
        body = await _read_json(request)
        collection = col(c)
        return (await run_in_threadpool(
            lambda: collection.set_metadata(item_id, body, merge=merge))).metadata

    @r.put(col_path + "/items/{item_id}/metadata", tags=["items"], dependencies=write,
           summary="Replace the item's user metadata",
           openapi_extra=_body_doc(json_props={}))
    async def put_metadata(c: str, item_id: str, request: Request) -> dict[str, Any]:
        return await write_metadata(c, item_id, request, merge=False)

    @r.patch(col_path + "/items/{item_id}/metadata", tags=["items"], dependencies=write,
             summary="Merge keys into the item's user metadata",
             openapi_extra=_body_doc(json_props={}))
    async def patch_metadata(c: str, item_id: str, request: Request) -> dict[str, Any]:
        return await write_metadata(c, item_id, request, merge=True)

    @r.delete(col_path + "/items/{item_id}", tags=["items"], dependencies=write,
              summary="Delete one item (404 if absent)")
    def delete_item(c: str, item_id: str) -> dict[str, Any]:
        col(c).delete(item_id)
        return {"deleted": item_id}

    @r.post(col_path + "/items/delete", tags=["items"],
            **_out(ResultsOut), dependencies=write,
            summary="Delete many items; one result per id")
    def delete_items(c: str, body: IdsIn) -> dict[str, Any]:
        if len(body.ids) > settings.max_batch:
            raise InvalidInput(f"at most {settings.max_batch} ids per request")
        return {"results": [x.to_dict() for x in col(c).delete_batch(body.ids)]}

    @r.delete(col_path + "/items", tags=["items"], dependencies=write,
              summary="Delete every item of the collection")
    def clear(c: str) -> dict[str, Any]:
        return {"deleted": col(c).clear()}

    # search ---------------------------------------------------------------------------------
    @r.post(col_path + "/search", tags=["search"],
            **_out(HitsOut), dependencies=read,
            summary="Top-k by text, image (file / url / base64), vector or like=<id>",
            openapi_extra=_body_doc(multipart={"file": "binary", "k": "integer",
                                               "where": "string"},
                                    json_props={"text": "string", "vector": "array",
                                                "like": "string", "url": "string",
                                                "image_b64": "string", "k": "integer",
                                                "where": "object"}))
    async def search(c: str, request: Request) -> dict[str, Any]:
        body = await _read_single(request, settings, need_image=False)
        collection = col(c)
        query = _query(body, settings)
        k, where = _k(body.get("k", 10)), _where(body.get("where"))

        def work() -> dict[str, Any]:
            t0 = time.perf_counter()
            hits = collection.search_batch([query], k=k, where=where)[0]
            return {"hits": [h.to_dict() for h in hits],
                    "took_ms": round((time.perf_counter() - t0) * 1000, 3)}
        return await run_in_threadpool(work)

    @r.post(col_path + "/search/batch", tags=["search"],
            **_out(HitListsOut), dependencies=read,
            summary="Many queries at once; one list of hits per query")
    def search_batch(c: str, body: SearchBatchIn) -> dict[str, Any]:
        if len(body.queries) > settings.max_batch:
            raise InvalidInput(f"at most {settings.max_batch} queries per request")
        queries = [_query(q.model_dump(exclude_none=True), settings) for q in body.queries]
        hits = col(c).search_batch(queries, k=_k(body.k), where=_where(body.where))
        return {"results": [[h.to_dict() for h in hs] for hs in hits]}

    @r.get(col_path + "/text-search", tags=["search"],
           **_out(HitsOut), dependencies=read,
           summary="Full-text search over path, user metadata and EXIF")
    def text_search(c: str, q: str, k: int = 10, where: str | None = None) -> dict[str, Any]:
        hits = col(c).text_search(q, k=k, where=_where(where))
        return {"hits": [h.to_dict() for h in hits]}

    @r.get(col_path + "/duplicates", tags=["search"],
           **_out(GroupsOut), dependencies=read,
           summary="Groups of exact and near-duplicate images")
    def duplicates(c: str, threshold: float = 0.95) -> dict[str, Any]:
        return {"groups": [g.to_dict() for g in col(c).duplicates(threshold)]}

    # health / rebuild / jobs ----------------------------------------------------------------
    @r.get(col_path + "/health", tags=["health"], dependencies=read,
           summary="Store and vector index health")
    def collection_health(c: str) -> dict[str, Any]:
        return col(c).check()

    @r.post(col_path + "/rebuild", tags=["health"], dependencies=write,
            summary="Rebuild the derived indexes from the stored rows")
    def rebuild(c: str) -> dict[str, Any]:
        return col(c).rebuild()

    @r.post(col_path + "/jobs/index", tags=["jobs"],
            **_out(JobOut, 202), status_code=202, dependencies=write,
            summary="Index server-side folders/files (inside --allow-path) in the background")
    def start_index(c: str, body: IndexJobIn) -> dict[str, Any]:
        paths = [body.path] if isinstance(body.path, str) else body.path
        if not paths:
            raise InvalidInput("give at least one path to index")
        resolved = [str(_allowed(p, settings)) for p in paths]
        return jobs.start(col(c), resolved, recursive=body.recursive,
                          skip_duplicates=body.skip_duplicates,
                          remove_missing=body.remove_missing,
                          guard=lambda: _check_tree(resolved, body.recursive, settings)
                          ).to_dict()

    @r.get("/jobs/{job_id}", tags=["jobs"],
           **_out(JobOut), dependencies=read, summary="Index job status")
    def job_status(job_id: str) -> dict[str, Any]:
        return jobs.get(job_id).to_dict()

    @r.delete("/jobs/{job_id}", tags=["jobs"],
              **_out(JobOut), dependencies=write,
              summary="Cancel an index job (it commits the batch in flight, then stops)")
    def cancel_job(job_id: str) -> dict[str, Any]:
        return jobs.cancel(job_id).to_dict()

    return r


def _mount_ui(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def index() -> Response:
        page = STATIC_DIR / "index.html"
        if not page.is_file():
            raise NotFound("the web UI files are missing from this install "
                           "(imgfind/server/static/index.html); the API is under /api")
        return FileResponse(page, media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")


# -- request parsing --------------------------------------------------------------------------

async def _read_json(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput(f"request body is not valid JSON ({e})") from None


def _is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def _read_upload(upload: UploadFile, settings: Settings) -> bytes:
    if upload.size is not None and upload.size > settings.max_upload_bytes:
        raise ImageTooLarge(f"{upload.filename or 'upload'} is {upload.size} bytes; this "
                            f"server takes images up to {settings.max_upload_bytes} bytes")
    return await upload.read()


def _form_json(value: Any, name: str) -> Any:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"form field {name!r} must be text (a JSON string)")
    try:
        return json.loads(value)
    except ValueError as e:
        raise InvalidInput(f"form field {name!r} is not valid JSON ({e})") from None


async def _read_single(request: Request, settings: Settings, *,
                       need_image: bool = True) -> dict[str, Any]:
    """One entry from multipart (file + JSON-string fields) or a JSON object."""
    if _is_multipart(request):
        async with request.form(max_files=1, max_fields=16) as form:
            upload = form.get("file")
            entry: dict[str, Any] = {
                k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
            if isinstance(upload, UploadFile):
                entry["bytes"] = await _read_upload(upload, settings)
            elif upload is not None:
                raise InvalidInput("form field 'file' must be a file upload")
        for name in ("metadata", "where"):
            if name in entry:
                entry[name] = _form_json(entry[name], name)
        if "k" in entry:
            entry["k"] = _int(entry["k"], "k")
        if "merge" in entry:
            entry["merge"] = _bool(entry["merge"])
    else:
        entry = await _read_json(request)
        if not isinstance(entry, dict):
            raise InvalidInput("request body must be a JSON object")
    if need_image and not _has_image(entry):
        raise InvalidInput("no image: send a multipart 'file', or JSON with 'url', 'path' "
                           "or 'image_b64'")
    return entry


async def _read_batch(request: Request, settings: Settings) -> list[Any]:
    """Batch entries from multipart ``files`` (many) or JSON ``{"items": [...]}``."""
    if _is_multipart(request):
        async with request.form(max_files=settings.max_batch, max_fields=16) as form:
            uploads = form.getlist("files") + form.getlist("file")
            entries = []
            for up in uploads:
                if not isinstance(up, UploadFile):
                    raise InvalidInput("form field 'files' must hold file uploads")
                entries.append({"bytes": await _read_upload(up, settings)})
        if not entries:
            raise InvalidInput("no files: send one or more multipart 'files' fields")
        return entries
    return _list_field(await _read_json(request), "items", settings)


def _list_field(body: Any, name: str, settings: Settings) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get(name), list):
        raise InvalidInput(f"request body must be a JSON object with a {name!r} list")
    if len(body[name]) > settings.max_batch:
        raise InvalidInput(f"at most {settings.max_batch} {name} per request; split the batch")
    return body[name]


def _has_image(entry: dict[str, Any]) -> bool:
    return any(entry.get(k) is not None for k in ("bytes", "url", "path", "image_b64"))


def _image_from(entry: dict[str, Any], settings: Settings) -> Any:
    """The library image argument for an entry: bytes, a checked URL or an allowed path."""
    given = [k for k in ("bytes", "url", "path", "image_b64") if entry.get(k) is not None]
    if len(given) != 1:
        raise InvalidInput("give exactly one image: a file, 'url', 'path' or 'image_b64'")
    kind, value = given[0], entry[given[0]]
    if kind == "bytes":
        return value
    if kind == "url":
        return _url(value)
    if kind == "path":
        return _allowed(value, settings)
    return _b64(value, settings)


def _per_item(entries: list[Any], settings: Settings,
              run: Callable[[list[tuple[dict[str, Any], Any]]], list[Result]],
              image_optional: bool = False) -> list[dict[str, Any]]:
    """Convert each entry's image, run the good ones as one library batch, keep the order.

    An entry that cannot even be converted (bad base64, refused path) fails
    alone, as the library does for an undecodable image.
    """
    results: list[Result | None] = [None] * len(entries)
    good: list[tuple[int, dict[str, Any], Any]] = []
    for i, e in enumerate(entries):
        try:
            if not isinstance(e, dict):
                raise InvalidInput("each item must be a JSON object")
            img = _image_from(e, settings) if (_has_image(e) or not image_optional) else None
            good.append((i, e, img))
        except ImgfindError as err:
            item_id = e.get("id") if isinstance(e, dict) else None
            results[i] = Result(id=item_id if isinstance(item_id, str) else None,
                                error=err.message, code=err.code)
    if good:
        for (i, _, _), res in zip(good, run([(e, img) for _, e, img in good])):
            results[i] = res
    return [r.to_dict() for r in results]  # type: ignore[union-attr]


def _query(body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A library query dict from a request's text / vector / like / url / image."""
    q: dict[str, Any] = {}
    if body.get("text") is not None:
        if not isinstance(body["text"], str) or not body["text"].strip():
            raise InvalidInput("'text' must be a non-empty string")
        q["text"] = body["text"]
    if body.get("vector") is not None:
        v = body["vector"]
        if not isinstance(v, list) or not v or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            raise InvalidInput("'vector' must be a non-empty list of numbers")
        q["vector"] = v
    if body.get("like") is not None:
        if not isinstance(body["like"], str):
            raise InvalidInput("'like' must be an item id (a string)")
        q["like"] = body["like"]
    if body.get("url") is not None:
        q["url"] = _url(body["url"])
    if body.get("image_b64") is not None:
        q["image"] = _b64(body["image_b64"], settings)
    if body.get("bytes") is not None:
        q["image"] = body["bytes"]
    if len(q) != 1:
        raise InvalidInput("a search needs exactly one of: text, vector, like, url, "
                           "image_b64 or a multipart file")
    return q


def _url(value: Any) -> str:
    # Only http(s): anything else (file:, ftp:, a bare path) would read the server's disk.
    if not isinstance(value, str) or not value.lower().startswith(("http://", "https://")):
        raise InvalidInput("'url' must be an http:// or https:// URL")
    return value


def _allowed(path: Any, settings: Settings) -> Path:
    if not isinstance(path, str) or not path:
        raise InvalidInput("'path' must be a non-empty string")
    if not settings.allow_paths:
        raise PathNotAllowed("server-side paths are disabled on this server; upload the "
                             "image instead, or start it with --allow-path DIR")
    return Path(sources.resolve_allowed(path, settings.allow_paths))


def _check_tree(targets: list[str], recursive: bool, settings: Settings) -> None:
    """Refuse a job whose folders reach outside the allowed roots.

    The target itself was checked, but the indexer follows symlinks inside a
    folder and reads the paths a CSV lists: every file it would read must lie
    inside a root too (URLs listed in a CSV go through the bounded fetcher).
    """
    for target in targets:
        for src in sources.iter_sources(target, recursive=recursive):
            if src.kind in ("file", "archive"):
                _allowed(src.ref.split("!", 1)[0] if src.kind == "archive" else src.ref,
                         settings)


def _b64(value: Any, settings: Settings) -> bytes:
    if not isinstance(value, str):
        raise InvalidInput("'image_b64' must be a base64 string")
    if value.startswith("data:") and "," in value:  # a data: URL from a browser
        value = value.split(",", 1)[1]
    too_large = ImageTooLarge(f"image is over this server's limit of "
                              f"{settings.max_upload_bytes} bytes")
    if len(value) > settings.max_upload_bytes * 4 // 3 + 4:
        raise too_large  # refuse before decoding a huge string
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("'image_b64' is not valid base64") from None
    if len(data) > settings.max_upload_bytes:
        raise too_large
    return data


def _where(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise InvalidFilter(f"'where' is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise InvalidFilter('\'where\' must be a JSON object, e.g. {"format": "JPEG"}')
    return value


def _k(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("k must be an integer from 1 to 10000")
    return value


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no", ""):
        return value.lower() in ("true", "1", "yes")
    raise InvalidInput("merge must be true or false")


def _body_doc(*, multipart: dict[str, str] | None = None,
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


def _fields(items: list[Any]) -> list[dict[str, Any]]:
    """Filter keys seen in ``items`` with a few sample values (for the UI's filter picker)."""
    seen: dict[str, dict[str, Any]] = {}

    def note(key: str, value: Any) -> None:
        if isinstance(value, bool):
            kind = "boolean"
        elif isinstance(value, (int, float)):
            kind = "number"
        elif isinstance(value, str):
            kind = "string"
        else:
            return  # nested objects and lists: their own keys are listed, not them
        f = seen.setdefault(key, {"key": key, "type": kind, "values": []})
        if value not in f["values"] and len(f["values"]) < 10:
            f["values"].append(value)

    for it in items:
        for key in ("format", "width", "height", "taken", "stored"):
            if getattr(it, key) is not None:
                note(key, getattr(it, key))
        for k, v in it.metadata.items():
            note(f"metadata.{k}", v)
        for k, v in it.exif.items():
            note(f"exif.{k}", v)
        for k, v in it.file.items():
            note(f"file.{k}", v)
    return [f for key, f in sorted(seen.items()) if _filterable(key)]


def _filterable(key: str) -> bool:
    try:
        compile_filter({key: {"$exists": True}})
        return True
    except ImgfindError:
        return False

