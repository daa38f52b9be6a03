"""OCR status: ``GET /collections/{c}/ocr``. The text itself is in each item's ``ocr``
field; the background worker of ``imgfind serve`` reads new images (see ocr_worker.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ..deps import READ, LibraryDep
from ..schemas import ERRORS, out

router = APIRouter(responses=ERRORS, tags=["collections"])


class OcrStatusOut(BaseModel):
    enabled: bool = Field(description="whether the collection reads text in its images")
    done: int = Field(description="images read (with or without text)")
    pending: int = Field(description="images not read yet")
    with_text: int = Field(description="images where text was found")
    worker: dict[str, Any] | None = Field(description=(
        "the server's background OCR worker: {running, reading, read, errors}; null when "
        "the server runs without one (--ocr-threads 0)"))


@router.get("/collections/{c}/ocr", **out(OcrStatusOut), dependencies=READ,
            summary="How much of a collection OCR has read")
async def ocr_status(c: str, library: LibraryDep, request: Request) -> dict[str, Any]:
    status = await run_in_threadpool(library.collection(c).ocr_status)
    worker = request.app.state.ocr
    if worker is not None and status["pending"]:
        worker.wake()
    return {**status, "worker": worker.state() if worker is not None else None}
