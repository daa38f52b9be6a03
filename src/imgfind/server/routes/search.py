"""Search: ``/collections/{c}/search``, ``/search/batch``, ``/text-search``, ``/duplicates``.

Each route only parses the request into a library query and calls the library;
query semantics live in the library.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ...errors import InvalidInput
from ..deps import READ, LibraryDep, SettingsDep
from ..parsing import is_multipart, parse_search, parse_where, read_single
from ..schemas import ERRORS, GroupsOut, HitListsOut, HitsOut, SearchBatchIn, body_doc, out
from ..settings import MAX_K
from ..threads import one_native_thread

router = APIRouter(responses=ERRORS, tags=["search"], dependencies=READ)

#: Body fields of ``POST /search`` (JSON, or multipart beside ``file``).
SEARCH_FIELDS = ("text", "vector", "like", "url", "image_b64", "k", "where", "positive",
                 "negative", "weights", "min_score", "sort", "mode")


@router.post("/collections/{c}/search", **out(HitsOut),
             summary="Top-k by text, image (file / url / base64), vector, like=<id>, or "
                     "positive/negative examples; min_score, sort, mode (docs/search.md)",
             openapi_extra=body_doc(multipart={"file": "binary", "k": "integer",
                                               "where": "string", "min_score": "number",
                                               "sort": "string", "mode": "string",
                                               "positive": "string", "negative": "string",
                                               "weights": "string"},
                                    json_props={"text": "string", "vector": "array",
                                                "like": "string", "url": "string",
                                                "image_b64": "string", "k": "integer",
                                                "where": "object", "positive": "array",
                                                "negative": "array", "weights": "array",
                                                "min_score": "number", "sort": "string",
                                                "mode": "string"}))
async def search(c: str, request: Request, library: LibraryDep, settings: SettingsDep,
                 k: int | None = Query(None, description=(
                     "number of hits (also accepted in the body, which wins)"))
                 ) -> JSONResponse:
    body = await read_single(request, settings, SEARCH_FIELDS, need_image=False)
    collection = library.collection(c)
    if k is not None and "k" not in body:
        body["k"] = k
    query = parse_search(body, settings, multipart=is_multipart(request))

    def work() -> JSONResponse:
        t0 = time.perf_counter()
        one_native_thread()  # one query: the other requests get the other cores
        hits = collection.run([query])[0]
        # The hits are JSON types already: encoded here, off the event loop, without
        # FastAPI's generic (slower) jsonable_encoder pass.
        return JSONResponse({"hits": [h.to_dict() for h in hits],
                             "took_ms": round((time.perf_counter() - t0) * 1000, 3)})
    return await run_in_threadpool(work)


@router.post("/collections/{c}/search/batch", **out(HitListsOut),
             summary="Many queries at once; one list of hits per query")
def search_batch(c: str, body: SearchBatchIn, library: LibraryDep,
                 settings: SettingsDep) -> dict[str, Any]:
    if len(body.queries) > settings.max_batch:
        raise InvalidInput(f"at most {settings.max_batch} queries per request")
    shared = body.model_dump(exclude_none=True, exclude={"queries"})
    queries = [parse_search({**shared, **q.model_dump(exclude_none=True)}, settings)
               for q in body.queries]
    hits = library.collection(c).run(queries)
    return {"results": [[h.to_dict() for h in hs] for hs in hits]}


@router.get("/collections/{c}/text-search", **out(HitsOut),
            summary="Full-text search over path, user metadata and EXIF")
def text_search(c: str, library: LibraryDep, q: str = Query(max_length=1000),
                k: int = Query(10, description=f"number of hits, 1..{MAX_K}"),
                where: str | None = None, sort: str = "score") -> dict[str, Any]:
    hits = library.collection(c).text_search(q, k=k, where=parse_where(where),
                                              sort=sort)  # type: ignore[arg-type]
    return {"hits": [h.to_dict() for h in hits]}


@router.get("/collections/{c}/duplicates", **out(GroupsOut),
            summary="Groups of exact and near-duplicate images")
def duplicates(c: str, library: LibraryDep,
               threshold: float = Query(0.95, ge=-1.0, le=1.0, allow_inf_nan=False)
               ) -> dict[str, Any]:
    return {"groups": [g.to_dict() for g in library.collection(c).duplicates(threshold)]}
