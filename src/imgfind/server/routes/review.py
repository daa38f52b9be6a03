"""Duplicate review: ``POST /collections/{c}/duplicates/resolve`` keeps one image per group.

The groups themselves come from ``GET /collections/{c}/duplicates`` (routes/search.py).
A dry run (the default) only counts; see :mod:`imgfind.review`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ..deps import WRITE, LibraryDep
from ..schemas import ERRORS, Strict, out

router = APIRouter(responses=ERRORS, tags=["search"])


class ResolveIn(Strict):
    groups: list[Any] | None = Field(None, description=(
        'groups to resolve, each {"keep": id, "ids": [ids of the group]}; omitted = every '
        "group of `tiers` at `threshold`, keeping each group's first (likely original)"))
    threshold: Any = Field(0.95, description="duplicate threshold, as GET /duplicates")
    tiers: list[Any] | None = Field(None, description='tiers resolved in bulk (default '
                                                      '["exact", "near"])')
    dry_run: Any = Field(True, description="true (default): count only, delete nothing")
    expect: Any = Field(None, description="the dry run's count: refuse if it changed")


class ResolveOut(BaseModel):
    dry_run: bool
    groups: int = Field(description="groups resolved")
    keep: list[str] = Field(description="the id kept in each group")
    delete: list[str] = Field(description="ids deleted (or, in a dry run, to delete)")
    count: int = Field(description="len(delete)")
    errors: list[dict[str, str]] = Field(description="ids that could not be deleted")


@router.post("/collections/{c}/duplicates/resolve", **out(ResolveOut), dependencies=WRITE,
             summary="Keep one image per duplicate group, delete the others (dry run first)")
async def resolve(c: str, body: ResolveIn, library: LibraryDep) -> dict[str, Any]:
    collection = library.collection(c)

    def work() -> dict[str, Any]:
        return collection.resolve_duplicates(
            body.groups, threshold=body.threshold, tiers=body.tiers, dry_run=body.dry_run,
            expect=body.expect).to_dict()
    return await run_in_threadpool(work)
