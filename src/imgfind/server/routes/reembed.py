"""Changing a collection's model in the background: ``/collections/{c}/jobs/reembed`` and
``/collections/{c}/reembed`` (status, abort). Progress is the job's (``/jobs/{id}``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from ...errors import InvalidInput
from ..deps import READ, WRITE, JobsDep, LibraryDep, SettingsDep
from ..parsing import allowed_path
from ..schemas import ERRORS, JobOut, Strict, out
from .collections import _check_model

router = APIRouter(responses=ERRORS, tags=["jobs"])


class ReembedJobIn(Strict):
    model: str | None = Field(None, description="model preset or hub name to switch to")
    model_path: str | None = Field(None, description="server-side model folder inside an "
                                                     "--allow-path root")
    delete_unreadable: bool = Field(False, description="delete items whose image can no "
                                                       "longer be read instead of stopping")
    batch_size: int = Field(32, ge=1, le=4096)


class ReembedJobOut(JobOut):
    model: str | None = None
    dim: int | None = None
    previous_model: str | None = None
    embedded: int = 0
    deleted: int = 0
    switched: bool = False
    cancelled: bool = False


@router.post("/collections/{c}/jobs/reembed", **out(ReembedJobOut, 202), status_code=202,
             dependencies=WRITE,
             summary="Re-embed a collection with another model in the background; searches "
                     "use the old model until one transaction switches")
def start_reembed(c: str, body: ReembedJobIn, library: LibraryDep, settings: SettingsDep,
                  jobs: JobsDep) -> dict[str, Any]:
    if (body.model is None) == (body.model_path is None):
        raise InvalidInput("give exactly one of 'model' or 'model_path'")
    col = library.collection(c)
    path = str(allowed_path(body.model_path, settings)) if body.model_path else None
    if body.model is not None:
        _check_model(body.model, settings)   # downloads only with --allow-model-download

    def work(progress: Any, cancel: Any) -> Any:
        return col.reembed(body.model, model_path=path, batch_size=body.batch_size,
                           progress=progress, cancel=cancel,
                           delete_unreadable=body.delete_unreadable)

    return jobs.start(col, [], work=work, kind="reembed").to_dict()


@router.get("/collections/{c}/reembed", dependencies=READ,
            summary="The re-embed in progress (model, dim, staged, total), or null")
def reembed_status(c: str, library: LibraryDep) -> dict[str, Any]:
    col = library.collection(c)
    return {"collection": col.name, "model": col.model, "dim": col.dim,
            "reembed": col.reembed_status()}


@router.delete("/collections/{c}/reembed", dependencies=WRITE,
               summary="Drop the work of an unfinished re-embed (stop its job first)")
def abort_reembed(c: str, library: LibraryDep) -> dict[str, Any]:
    return {"aborted": library.collection(c).abort_reembed()}
