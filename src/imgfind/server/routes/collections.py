"""Liveness and collections: ``/health``, ``/collections``, ``/collections/{c}``."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter

from ... import __version__
from ...api import Collection
from ...errors import NotAllowed
from ..deps import READ, WRITE, LibraryDep, SettingsDep
from ..schemas import ERRORS, CollectionIn, CollectionOut, CollectionsOut, out
from ..settings import MAX_PAGE, Settings

router = APIRouter(responses=ERRORS)


def info(c: Collection) -> dict[str, Any]:
    i = c.info
    return {"name": i.name, "model": i.model, "dim": i.dim, "created": i.created,
            "count": c.count(), "ocr": i.ocr}


@router.get("/health", tags=["health"], summary="Liveness, version and request limits")
def health(settings: SettingsDep) -> dict[str, Any]:
    return {"ok": True, "version": __version__,
            "limits": {"max_upload_bytes": settings.max_upload_bytes,
                       "max_request_bytes": settings.max_request_bytes,
                       "max_batch": settings.max_batch, "max_page": MAX_PAGE},
            "auth": {"writes": settings.api_key is not None,
                     "reads": settings.protect_reads}}


@router.get("/collections", tags=["collections"],
            **out(CollectionsOut), summary="List collections", dependencies=READ)
def list_collections(library: LibraryDep) -> dict[str, Any]:
    return {"collections": [
        info(library.collection(i.name)) if not i.problem else
        {"name": i.name, "model": i.model, "dim": i.dim, "created": i.created, "count": None,
         "ocr": i.ocr,
         "problem": i.problem}
        for i in library.collections()]}


@router.post("/collections", tags=["collections"],
             **out(CollectionOut, 201), summary="Create a collection",
             status_code=201, dependencies=WRITE)
def create_collection(body: CollectionIn, library: LibraryDep,
                      settings: SettingsDep) -> dict[str, Any]:
    if body.model is not None:
        _check_model(body.model, settings)
    return info(library.create_collection(body.name, model=body.model, ocr=body.ocr))


def _check_model(model: str, settings: Settings) -> None:
    """A valid model name, and one this server has (or may download)."""
    from ...embedders import MODEL_PATH_ENV, folder_name
    from ...embedders.registry import is_cached, resolve

    name, repo = resolve(model)  # InvalidInput for "", "../../x", non-ASCII
    env_path = os.environ.get(MODEL_PATH_ENV)
    if settings.allow_model_download or model == "phash" or (
            env_path and model == folder_name(env_path)) or is_cached(repo):
        return
    raise NotAllowed(
        f"model {name!r} is not on this server and it downloads models only when started "
        "with --allow-model-download; use a model it has (GET /api/collections shows "
        "them) or ask its operator")


@router.get("/collections/{c}", tags=["collections"],
            summary="Collection info and index state", dependencies=READ)
def get_collection(c: str, library: LibraryDep) -> dict[str, Any]:
    collection = library.collection(c)
    return {**info(collection), "index": collection.index_info()}


@router.delete("/collections/{c}", tags=["collections"],
               summary="Drop a collection and all its items", dependencies=WRITE)
def drop_collection(c: str, library: LibraryDep) -> dict[str, Any]:
    library.collection(c)  # NotFound for a name that does not exist
    library.drop_collection(c)
    return {"dropped": c}


@router.get("/collections/{c}/health", tags=["health"], dependencies=READ,
            summary="Store and vector index health")
def collection_health(c: str, library: LibraryDep) -> dict[str, Any]:
    return library.collection(c).check()


@router.post("/collections/{c}/rebuild", tags=["health"], dependencies=WRITE,
             summary="Rebuild the derived indexes from the stored rows")
def rebuild(c: str, library: LibraryDep) -> dict[str, Any]:
    return library.collection(c).rebuild()
