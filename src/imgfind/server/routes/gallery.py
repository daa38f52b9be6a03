"""What the web gallery needs beyond the item routes: the field catalog behind its
filter picker, tags and album edits of a selection, a ZIP of a selection, and the
server's folders and models for its indexing and new-collection dialogs.

>>> httpx.post(f"{url}/api/collections/photos/items/metadata",          # doctest: +SKIP
...            json={"ids": ["a1", "b2"], "add_tags": ["beach"], "set": {"album": "2024"}})
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ...errors import ImgfindError, InvalidInput
from ...types import Item
from ..catalog import Catalogs
from ..deps import READ, WRITE, LibraryDep, SettingsDep
from ..schemas import ERRORS, IdsIn
from ..settings import Settings

router = APIRouter(responses=ERRORS, tags=["gallery"])
ITEMS = "/collections/{c}/items"
#: Bytes of a ZIP kept in memory before it spills to a temporary file.
ZIP_IN_MEMORY = 32 << 20


class MetadataEditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str] = Field(description="items to change")
    set: dict[str, Any] = Field(default_factory=dict,
                                description="metadata keys to set, e.g. {\"album\": \"2024\"}")
    unset: list[str] = Field(default_factory=list, description="metadata keys to remove")
    add_tags: list[str] = Field(default_factory=list, description="tags added to `tags`")
    remove_tags: list[str] = Field(default_factory=list, description="tags removed from `tags`")


def _bounded(ids: list[str], settings: Settings) -> list[str]:
    if not ids:
        raise InvalidInput("give at least one item id")
    if len(ids) > settings.max_batch:
        raise InvalidInput(f"at most {settings.max_batch} ids per request")
    return ids


@router.get("/collections/{c}/catalog", dependencies=READ,
            summary="Every filterable field of the collection, with type, count and samples")
def catalog(c: str, request: Request, library: LibraryDep) -> dict[str, Any]:
    catalogs = getattr(request.app.state, "catalogs", None)
    if catalogs is None:
        catalogs = request.app.state.catalogs = Catalogs()
    return catalogs.get(library.collection(c))


def edited(metadata: dict[str, Any], body: MetadataEditIn) -> dict[str, Any]:
    """``metadata`` after ``body``'s edit; tags keep their order and never repeat."""
    out = {**metadata, **body.set}
    for key in body.unset:
        out.pop(key, None)
    if body.add_tags or body.remove_tags:
        old = out.get("tags")
        tags = [t for t in old if isinstance(t, str)] if isinstance(old, list) else []
        for t in body.add_tags:
            if t.strip() and t.strip() not in tags:
                tags.append(t.strip())
        gone = {t.strip() for t in body.remove_tags}
        out["tags"] = [t for t in tags if t not in gone]
    return out


@router.post(ITEMS + "/metadata", dependencies=WRITE,
             summary="Edit the metadata of many items: set/unset keys, add/remove tags")
def edit_metadata(c: str, body: MetadataEditIn, library: LibraryDep,
                  settings: SettingsDep) -> dict[str, Any]:
    collection = library.collection(c)
    results: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for item_id in _bounded(body.ids, settings):
        try:
            item = collection.get(item_id)
            items.append(collection.set_metadata(item_id, edited(item.metadata, body)).to_dict())
            results.append({"id": item_id})
        except ImgfindError as e:
            results.append({"id": item_id, "error": str(e), "code": e.code})
    return {"results": results, "updated": len(items), "items": items}


def _name(item: Item, used: set[str]) -> str:
    """A file name for ``item`` inside the ZIP, unique within it."""
    raw = (item.file or {}).get("name") or item.source.removeprefix("upload:")
    name = PurePath(str(raw).replace("\\", "/")).name or item.id
    stem, dot, ext = name.rpartition(".")
    stem, ext = (stem, f".{ext}") if dot else (name, "")
    candidate, n = name, 1
    while candidate.lower() in used:
        n += 1
        candidate = f"{stem} ({n}){ext}"
    used.add(candidate.lower())
    return candidate


@router.post(ITEMS + "/zip", dependencies=READ, response_class=StreamingResponse,
             summary="The original images of many items as one ZIP file")
def zip_items(c: str, body: IdsIn, library: LibraryDep, settings: SettingsDep
              ) -> StreamingResponse:
    collection = library.collection(c)
    ids = _bounded(body.ids, settings)
    spool = tempfile.SpooledTemporaryFile(max_size=ZIP_IN_MEMORY)  # noqa: SIM115 (streamed, closed below)
    used: set[str] = set()
    failed: list[str] = []
    # JPEG, PNG and WebP are compressed already: stored, not deflated again.
    with zipfile.ZipFile(spool, "w", zipfile.ZIP_STORED) as zf:
        for item, item_id in zip(collection.get_many(ids), ids, strict=True):
            if item is None:
                failed.append(f"{item_id}: no such item")
                continue
            try:
                zf.writestr(_name(item, used), collection.image(item_id))
            except ImgfindError as e:
                failed.append(f"{item_id}: {e}")
        if failed:
            zf.writestr("NOT-INCLUDED.txt", "\n".join(failed) + "\n")
    spool.seek(0)

    def chunks() -> Iterator[bytes]:
        with spool:
            while block := spool.read(1 << 20):
                yield block

    return StreamingResponse(chunks(), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{c}.zip"'})


@router.get("/gallery/config", dependencies=READ,
            summary="Folders this server may index (--allow-path) and the models it knows")
def config(library: LibraryDep, settings: SettingsDep) -> dict[str, Any]:
    from ...embedders.registry import DEFAULT_MODEL, list_models

    return {"allow_paths": list(settings.allow_paths),
            "models": [m.name for m in list_models()],
            "default_model": None if library.model_path else DEFAULT_MODEL}
