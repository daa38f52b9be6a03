"""Items of a collection: list, get, image, thumbnail, metadata, fields; add, update, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from PIL import Image

from ...errors import ImgfindError, InvalidInput, from_code
from ...filters import parse as parse_filter
from ...query import check_sort
from ...types import Item
from ..deps import READ, WRITE, LibraryDep, SettingsDep
from ..parsing import (
    has_image,
    image_from,
    list_field,
    parse_bool,
    parse_where,
    per_item,
    read_batch,
    read_json,
    read_single,
)
from ..schemas import ERRORS, AddedOut, IdsIn, ItemsOut, ResultsOut, body_doc, out
from ..settings import FIELDS_SAMPLE, MAX_OFFSET, MAX_PAGE

router = APIRouter(responses=ERRORS, tags=["items"])
ITEMS = "/collections/{c}/items"

#: Body fields of one new item (JSON, or multipart beside ``file``), and of one update.
ADD_FIELDS = ("url", "path", "image_b64", "metadata", "id", "name")
KeepDuplicates = Annotated[bool, Query(
    description="store an image even when the same bytes are stored already (default: "
                "answer with the stored item and duplicate=true)")]
UPDATE_FIELDS = ("id", "url", "path", "image_b64", "metadata", "merge", "name")


# -- reads ------------------------------------------------------------------------------------

@router.get(ITEMS, **out(ItemsOut), summary="List items (paged, filtered)", dependencies=READ)
def list_items(c: str, library: LibraryDep, limit: int = Query(50, ge=0, le=MAX_PAGE),
               offset: int = Query(0, ge=0, le=MAX_OFFSET),
               where: str | None = Query(None, description="filter as a JSON object"),
               sort: str | None = Query(None, description=(
                   "taken, -taken (newest first by date taken, else date added), added, "
                   "-added; default insertion order"))
               ) -> dict[str, Any]:
    collection, flt = library.collection(c), parse_where(where)
    order = None if sort is None else check_sort(sort, listing=True)
    items = collection.items(where=flt, limit=limit, offset=offset,
                             sort=order) if limit else []  # type: ignore[arg-type]
    return {"items": [it.to_dict() for it in items], "total": collection.count(flt)}


@router.get(ITEMS + "/{item_id}", **out(Item), summary="Get one item", dependencies=READ)
def get_item(c: str, item_id: str, library: LibraryDep,
             vector: bool = False) -> dict[str, Any]:
    collection = library.collection(c)
    result = collection.get(item_id).to_dict()
    if vector:
        result["vector"] = collection.vector(item_id).tolist()
    return result


@router.get(ITEMS + "/{item_id}/image", dependencies=READ,
            summary="The original image bytes", response_class=Response)
def get_image(c: str, item_id: str, library: LibraryDep) -> Response:
    collection = library.collection(c)
    item = collection.get(item_id)
    mime = Image.MIME.get((item.format or "").upper(), "application/octet-stream")
    return Response(collection.image(item_id), media_type=mime,
                    headers={"X-Content-Type-Options": "nosniff"})


@router.get(ITEMS + "/{item_id}/thumbnail", dependencies=READ,
            summary="A small preview (JPEG, 256 px)", response_class=Response)
def get_thumbnail(c: str, item_id: str, library: LibraryDep) -> Response:
    data = library.collection(c).thumbnail(item_id)
    mime = "image/jpeg" if data[:2] == b"\xff\xd8" else "image/webp"
    return Response(data, media_type=mime, headers={"X-Content-Type-Options": "nosniff",
                                                    "Cache-Control": "private, max-age=60"})


@router.get(ITEMS + "/{item_id}/metadata", dependencies=READ,
            summary="The item's user metadata")
def get_metadata(c: str, item_id: str, library: LibraryDep) -> dict[str, Any]:
    return library.collection(c).get(item_id).metadata


@router.get("/collections/{c}/fields", dependencies=READ,
            summary="Filterable keys seen in the collection, with sample values")
def fields(c: str, library: LibraryDep) -> dict[str, Any]:
    return {"fields": _fields(library.collection(c).items(limit=FIELDS_SAMPLE))}


# -- writes -----------------------------------------------------------------------------------

@router.post(ITEMS, **out(AddedOut, 201), status_code=201, dependencies=WRITE,
             summary="Add one image (multipart file, or JSON url / path / image_b64); the same "
                     "bytes again answer 200 with the stored item and duplicate=true",
             openapi_extra=body_doc(multipart={"file": "binary", "metadata": "string",
                                               "id": "string", "name": "string"},
                                    json_props={"url": "string", "path": "string",
                                                "image_b64": "string", "metadata": "object",
                                                "id": "string", "name": "string"}))
async def add_item(c: str, request: Request, response: Response, library: LibraryDep,
                   settings: SettingsDep, keep_duplicates: KeepDuplicates = False
                   ) -> dict[str, Any]:
    entry = await read_single(request, settings, ADD_FIELDS)
    collection = library.collection(c)
    image = image_from(entry, settings)

    def work() -> dict[str, Any]:
        result = collection.insert_batch(
            [{"image": image, "metadata": entry.get("metadata"), "id": entry.get("id"),
              "name": entry.get("name")}], keep_duplicates=keep_duplicates)[0]
        if result.error is not None:
            raise from_code(result.code, result.error)
        if result.duplicate:
            response.status_code = 200  # nothing was created
        return {"id": result.id, "item": collection.get(result.id).to_dict(),  # type: ignore[arg-type]
                "duplicate": result.duplicate}
    return await run_in_threadpool(work)


@router.post(ITEMS + "/batch", **out(ResultsOut), dependencies=WRITE,
             summary="Add many images; one result per item, 200 even if some failed",
             openapi_extra=body_doc(multipart={"files": "binary"},
                                    json_props={"items": "array"}))
async def add_items(c: str, request: Request, library: LibraryDep, settings: SettingsDep,
                    keep_duplicates: KeepDuplicates = False) -> dict[str, Any]:
    entries = await read_batch(request, settings)
    collection = library.collection(c)
    return {"results": await run_in_threadpool(
        per_item, entries, settings, ADD_FIELDS,
        lambda good: collection.insert_batch(
            [{"image": img, "metadata": e.get("metadata"), "id": e.get("id"),
              "name": e.get("name")} for e, img in good], keep_duplicates=keep_duplicates))}


@router.post(ITEMS + "/update", **out(ResultsOut), dependencies=WRITE,
             summary="Update many items (image and/or metadata); one result per item")
async def update_items(c: str, request: Request, library: LibraryDep,
                       settings: SettingsDep) -> dict[str, Any]:
    body = await read_json(request)
    entries = list_field(body, "items", settings)
    collection = library.collection(c)

    def to_update(e: dict[str, Any], img: Any) -> dict[str, Any]:
        return {"id": e.get("id"), "image": img, "metadata": e.get("metadata"),
                "merge": e.get("merge", False), "name": e.get("name")}
    return {"results": await run_in_threadpool(
        per_item, entries, settings, UPDATE_FIELDS,
        lambda good: collection.update_batch([to_update(e, img) for e, img in good]),
        True)}


@router.patch(ITEMS + "/{item_id}", **out(Item), dependencies=WRITE,
              summary="Replace an item's image and/or metadata (merge=true merges keys)",
              openapi_extra=body_doc(multipart={"file": "binary", "metadata": "string",
                                                "merge": "boolean"},
                                     json_props={"metadata": "object", "merge": "boolean",
                                                 "url": "string", "image_b64": "string"}))
async def update_item(c: str, item_id: str, request: Request, library: LibraryDep,
                      settings: SettingsDep) -> dict[str, Any]:
    entry = await read_single(request, settings, UPDATE_FIELDS[1:], need_image=False)
    collection = library.collection(c)
    image = image_from(entry, settings) if has_image(entry) else None
    merge = parse_bool(entry.get("merge", False))
    return (await run_in_threadpool(
        lambda: collection.update(item_id, image, entry.get("metadata"), merge=merge,
                                  name=entry.get("name")))).to_dict()


async def _write_metadata(c: str, item_id: str, request: Request, library: LibraryDep,
                          merge: bool) -> dict[str, Any]:
    body = await read_json(request)
    collection = library.collection(c)
    return (await run_in_threadpool(
        lambda: collection.set_metadata(item_id, body, merge=merge))).metadata


@router.put(ITEMS + "/{item_id}/metadata", dependencies=WRITE,
            summary="Replace the item's user metadata", openapi_extra=body_doc(json_props={}))
async def put_metadata(c: str, item_id: str, request: Request,
                       library: LibraryDep) -> dict[str, Any]:
    return await _write_metadata(c, item_id, request, library, merge=False)


@router.patch(ITEMS + "/{item_id}/metadata", dependencies=WRITE,
              summary="Merge keys into the item's user metadata",
              openapi_extra=body_doc(json_props={}))
async def patch_metadata(c: str, item_id: str, request: Request,
                         library: LibraryDep) -> dict[str, Any]:
    return await _write_metadata(c, item_id, request, library, merge=True)


@router.delete(ITEMS + "/{item_id}", dependencies=WRITE, summary="Delete one item (404 if absent)")
def delete_item(c: str, item_id: str, library: LibraryDep) -> dict[str, Any]:
    library.collection(c).delete(item_id)
    return {"deleted": item_id}


@router.post(ITEMS + "/delete", **out(ResultsOut), dependencies=WRITE,
             summary="Delete many items; one result per id")
def delete_items(c: str, body: IdsIn, library: LibraryDep,
                 settings: SettingsDep) -> dict[str, Any]:
    if len(body.ids) > settings.max_batch:
        raise InvalidInput(f"at most {settings.max_batch} ids per request")
    return {"results": [x.to_dict() for x in library.collection(c).delete_batch(body.ids)]}


@router.delete(ITEMS, dependencies=WRITE, summary="Delete every item of the collection")
def clear(c: str, library: LibraryDep) -> dict[str, Any]:
    return {"deleted": library.collection(c).clear()}


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
        parse_filter({key: {"$exists": True}})
        return True
    except ImgfindError:
        return False

