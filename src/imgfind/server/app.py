"""The app factory: FastAPI over the library API (``imgfind.api``), nothing more.

The routes live in :mod:`imgfind.server.routes`, one module per resource (see
that package's docstring to add one); request parsing in
:mod:`~imgfind.server.parsing`, models in :mod:`~imgfind.server.schemas`, the
API-key check and app state in :mod:`~imgfind.server.deps`. Routes that embed
images or text (CPU bound) run in the threadpool, so the event loop never
blocks. The web UI's static files are served from ``server/static``.

>>> import imgfind
>>> from imgfind.server import create_app
>>> app = create_app(imgfind.open("/tmp/lib"), api_key="s3cret")   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from .. import __version__
from ..api import Library
from ..errors import InvalidInput, NotFound
from .budget import MemoryBudget, MemoryBudgetMiddleware
from .deps import KEY_COOKIE, reject_unknown_query
from .errors import BodyLimitMiddleware, install_error_handlers
from .jobs import JobManager
from .ocr_worker import OcrWorker
from .routes import routers
from .schemas import TAGS
from .settings import MAX_PAGE, Settings

__all__ = ["KEY_COOKIE", "MAX_PAGE", "STATIC_DIR", "Settings", "create_app"]

STATIC_DIR = Path(__file__).parent / "static"


def create_app(library: Library, *, api_key: str | None = None, protect_reads: bool = False,
               allow_paths: tuple[str | Path, ...] | list[str | Path] = (),
               max_upload_bytes: int | None = None, max_request_bytes: int = 256 << 20,
               max_batch: int = 256, max_jobs: int = 2, fetch_timeout: float = 20.0,
               allow_private_urls: bool = False, allow_model_download: bool = False,
               max_inflight_bytes: int | None = None, ocr_threads: int = 1) -> FastAPI:
    """The FastAPI app serving ``library`` under ``/api``, with docs and the web UI.

    ``api_key``: writes need ``Authorization: Bearer <key>``; reads too with
    ``protect_reads``. ``allow_paths``: folders whose files callers may name
    by server-side path (none: such paths are refused). ``max_upload_bytes``
    (default: the library's image byte limit) bounds one image;
    ``max_request_bytes`` one batch request; ``max_batch`` its item count.
    Image URLs given by callers are fetched only from public addresses unless
    ``allow_private_urls`` (this sets the library's URL policy). Creating a
    collection with a model that is not on this machine downloads it only with
    ``allow_model_download`` (403 otherwise). ``max_inflight_bytes`` (default: the
    larger of ``max_request_bytes`` and one image request) bounds the request
    bodies held at once across all requests (503 + Retry-After past it).
    ``ocr_threads``: OCR threads of the background worker that reads the text of new
    images in OCR collections (0: no worker; ``imgfind ocr`` then does it).

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
        max_request_bytes=max_request_bytes, max_batch=max_batch, fetch_timeout=fetch_timeout,
        allow_model_download=allow_model_download)
    jobs = JobManager(max_running=max_jobs)

    ocr = OcrWorker(library, threads=ocr_threads) if ocr_threads > 0 else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if ocr is not None:
            ocr.start()
        yield
        if ocr is not None:
            await run_in_threadpool(ocr.stop)
        await run_in_threadpool(jobs.shutdown)

    # Swagger UI and ReDoc assets come from the fastapi-offline package, not a CDN.
    app = FastAPIOffline(
        title="imgfind", version=__version__, lifespan=lifespan, openapi_tags=TAGS,
        dependencies=[Depends(reject_unknown_query)],
        description="Self-hosted image search by example image, text and metadata. Errors "
                    'are `{"error": {"code", "message"}}` with a stable code. See '
                    "docs/rest-api.md for curl examples.")
    app.state.library = library
    app.state.settings = settings
    app.state.jobs = jobs
    app.state.ocr = ocr
    install_error_handlers(app)
    # The last added runs first: one body over its route's limit is a 413 before it
    # reserves any of the budget shared by all requests.
    budget = max_inflight_bytes or max(max_request_bytes, settings.body_limit({"path": "/"}))
    app.add_middleware(MemoryBudgetMiddleware, budget=MemoryBudget(budget))
    app.add_middleware(BodyLimitMiddleware, limit_for=settings.body_limit)
    for router in routers():
        app.include_router(router, prefix="/api")
    _mount_ui(app)
    return app


def _mount_ui(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def index() -> Response:
        page = STATIC_DIR / "index.html"
        if not page.is_file():
            raise NotFound("the web UI files are missing from this install "
                           "(imgfind/server/static/index.html); the API is under /api")
        return FileResponse(page, media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
