"""Background indexing of server-side folders: ``/collections/{c}/jobs/index``, ``/jobs/{id}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ...errors import InvalidInput
from ..deps import READ, WRITE, JobsDep, LibraryDep, SettingsDep
from ..parsing import allowed_path, check_tree
from ..schemas import ERRORS, IndexJobIn, JobOut, out

router = APIRouter(responses=ERRORS, tags=["jobs"])


@router.post("/collections/{c}/jobs/index",
             **out(JobOut, 202), status_code=202, dependencies=WRITE,
             summary="Index server-side folders/files (inside --allow-path) in the background")
def start_index(c: str, body: IndexJobIn, library: LibraryDep, settings: SettingsDep,
                jobs: JobsDep) -> dict[str, Any]:
    paths = [body.path] if isinstance(body.path, str) else body.path
    if not paths:
        raise InvalidInput("give at least one path to index")
    resolved = [str(allowed_path(p, settings)) for p in paths]
    return jobs.start(library.collection(c), resolved, recursive=body.recursive,
                      skip_duplicates=body.skip_duplicates,
                      remove_missing=body.remove_missing,
                      guard=lambda: check_tree(resolved, body.recursive, settings)
                      ).to_dict()


@router.get("/jobs/{job_id}", **out(JobOut), dependencies=READ, summary="Index job status")
def job_status(job_id: str, jobs: JobsDep) -> dict[str, Any]:
    return jobs.get(job_id).to_dict()


@router.delete("/jobs/{job_id}", **out(JobOut), dependencies=WRITE,
               summary="Cancel an index job (it commits the batch in flight, then stops)")
def cancel_job(job_id: str, jobs: JobsDep) -> dict[str, Any]:
    return jobs.cancel(job_id).to_dict()
