"""HTTP client for an imgfind server, with the same Collection API as the library.

Methods take the same arguments and return the same types (``Item``, ``Hit``,
``Result``, ``IndexReport``, ``DuplicateGroup``) as :class:`imgfind.Collection`,
and errors come back as the same typed exceptions (``NotFound``,
``InvalidInput``, ...). Local files, bytes and PIL images are uploaded; URLs
are fetched by the server; ``add`` indexes *server-side* folders as a
background job.

>>> import imgfind
>>> client = imgfind.Client("http://127.0.0.1:8000", api_key="s3cret")   # doctest: +SKIP
>>> photos = client.collection("default")                               # doctest: +SKIP
>>> photos.insert("cat.jpg", metadata={"pet": "cat"})                   # doctest: +SKIP
'3f9c0e1d2a4b5c6d'
>>> [h.id for h in photos.search("a sleeping cat", k=3)]               # doctest: +SKIP
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

import httpx
import numpy as np
from PIL import Image

from .errors import AlreadyExists, ImgfindError, InvalidInput, SourceError, from_code
from .interface import DEFAULT_COLLECTION, CollectionAPI, ImageLike, QueryLike, SingleItemCalls
from .interface import to_source as _to_source
from .query import Example, ListSort, Mode, Query, Sort, check_sort, text_example
from .review import ResolveReport
from .types import CollectionInfo, DuplicateGroup, Hit, IndexReport, Item, ReembedReport, Result

__all__ = ["Client", "RemoteCollection"]

#: Items per request in batch calls (a request carries their images, base64).
BATCH_ITEMS = 32
#: Base64 bytes after which a batch request is sent early.
BATCH_BYTES = 24 << 20
#: Times a request refused as busy (503 + Retry-After) is sent again.
BUSY_RETRIES = 5
#: Largest page the server hands out (see GET /api/health limits.max_page).
PAGE = 1000


class Client:
    """A connection to an imgfind server (``imgfind serve``).

    >>> with imgfind.Client("http://127.0.0.1:8000") as client:        # doctest: +SKIP
    ...     print([c.name for c in client.collections()])
    """

    def __init__(self, url: str = "http://127.0.0.1:8000", api_key: str | None = None,
                 timeout: float = 120.0):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)
        self._max_batch: int | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"<imgfind.Client {self.url}>"

    # -- transport ----------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request to ``/api<path>``; an error answer raises its typed exception.

        A 503 with ``Retry-After`` (the server's memory budget is in use) is
        retried after that many seconds, up to :data:`BUSY_RETRIES` times.
        """
        for attempt in range(BUSY_RETRIES + 1):
            try:
                resp = self._http.request(method, "/api" + path, **kwargs)
            except httpx.HTTPError as e:
                raise ImgfindError(f"cannot reach the imgfind server at {self.url} ({e}); is "
                                   "`imgfind serve` running there?") from None
            wait = resp.headers.get("retry-after", "")
            if resp.status_code != 503 or not wait.isdigit() or attempt == BUSY_RETRIES:
                break
            time.sleep(min(int(wait), 30))
        if resp.status_code >= 400:
            try:
                err = resp.json()["error"]
                code, message = err["code"], err["message"]
            except (ValueError, KeyError, TypeError):
                code, message = None, f"HTTP {resp.status_code}: {resp.text[:300]}"
            raise from_code(code, message)
        return resp

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Like :meth:`request`, returning the decoded JSON answer."""
        return self.request(method, path, **kwargs).json()

    # -- collections --------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return self.call("GET", "/health")

    @property
    def max_batch(self) -> int:
        """Items per batch request: ``BATCH_ITEMS``, or less if the server takes fewer."""
        if self._max_batch is None:
            limit = self.health().get("limits", {}).get("max_batch", BATCH_ITEMS)
            self._max_batch = max(1, min(BATCH_ITEMS, int(limit)))
        return self._max_batch

    def collections(self) -> list[CollectionInfo]:
        """The server's collections (as ``Library.collections()``)."""
        return [_info(d) for d in self.call("GET", "/collections")["collections"]]

    def collection(self, name: str = DEFAULT_COLLECTION) -> RemoteCollection:
        """An existing collection; ``NotFound`` if there is none of that name."""
        return RemoteCollection(self, _info(self.call("GET", f"/collections/{_seg(name)}")))

    def create_collection(self, name: str, model: str | None = None, *,
                          exist_ok: bool = False, ocr: bool = False) -> RemoteCollection:
        """Create a collection bound to ``model`` (omitted: the server's default model);
        ``ocr=True``: the server also reads the text inside its images."""
        try:
            info = self.call("POST", "/collections", json={"name": name, "model": model,
                                                           "ocr": ocr})
        except AlreadyExists:
            if not exist_ok:
                raise
            return self.collection(name)
        return RemoteCollection(self, _info(info))

    def drop_collection(self, name: str) -> None:
        self.call("DELETE", f"/collections/{_seg(name)}")

    # -- jobs ---------------------------------------------------------------------------------
    def job(self, job_id: str) -> dict[str, Any]:
        """Status of an index job: ``{"id", "state", "done", "total", "indexed", ...}``."""
        return self.call("GET", f"/jobs/{_seg(job_id)}")

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self.call("DELETE", f"/jobs/{_seg(job_id)}")


class RemoteCollection(SingleItemCalls):
    """A collection on an imgfind server; the same methods as :class:`imgfind.Collection`.

    >>> col = imgfind.Client().collection("default")                   # doctest: +SKIP
    >>> col.search(like=col.items(limit=1)[0].id, k=5)                 # doctest: +SKIP
    """

    def __init__(self, client: Client, info: CollectionInfo):
        self.client = client
        self.info = info
        self._base = f"/collections/{_seg(info.name)}"

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def model(self) -> str:
        return self.info.model

    @property
    def dim(self) -> int:
        return self.info.dim

    def __repr__(self) -> str:
        return f"<RemoteCollection {self.name!r} model={self.model!r} at {self.client.url}>"

    def __len__(self) -> int:
        return self.count()

    def _call(self, method: str, path: str = "", **kwargs: Any) -> Any:
        return self.client.call(method, self._base + path, **kwargs)

    # -- writes -------------------------------------------------------------------------------
    def insert_batch(self, items: Iterable[ImageLike | dict[str, Any]], *,
                     keep_duplicates: bool = False) -> list[Result]:
        """Insert many images; one ``Result`` per item, in order (a bad item fails alone).

        Local files keep their names; bytes already stored answer with the stored
        item's id and ``duplicate=True`` unless ``keep_duplicates``.
        """
        entries = [it if isinstance(it, dict) else {"image": it} for it in items]

        def wire(e: dict[str, Any]) -> dict[str, Any]:
            image = _wire_image(e.get("image"))
            if e.get("name") is not None:
                image["name"] = e["name"]
            return {"metadata": e.get("metadata"), "id": e.get("id"), **image}
        return self._batched("/items/batch", entries, wire,
                             params={"keep_duplicates": "true"} if keep_duplicates else None)

    def update_batch(self, items: Iterable[dict[str, Any]]) -> list[Result]:
        """Update many items: dicts with ``id`` and ``image`` and/or ``metadata``."""
        def wire(e: dict[str, Any]) -> dict[str, Any]:
            out = {"id": e.get("id"), "metadata": e.get("metadata"),
                   "merge": bool(e.get("merge"))}
            if e.get("image") is not None:
                out.update(_wire_image(e["image"]))
            return out
        return self._batched("/items/update", list(items), wire)

    def set_metadata(self, id: str, metadata: dict[str, Any], *, merge: bool = False) -> Item:
        """Replace (or merge into) the user metadata of one item."""
        self._call("PATCH" if merge else "PUT", f"/items/{_seg(id)}/metadata",
                   content=json.dumps(metadata), headers={"content-type": "application/json"})
        return self.get(id)

    def delete(self, id: str) -> None:
        """Delete one item; ``NotFound`` if it does not exist."""
        self._call("DELETE", f"/items/{_seg(id)}")

    def delete_batch(self, ids: Sequence[str]) -> list[Result]:
        """Delete many items; one Result per id (``error`` for ids that did not exist)."""
        ids = list(ids)
        out: list[Result] = []
        step = self.client.max_batch
        for i in range(0, len(ids), step):
            out += [Result.from_dict(r) for r in self._call(
                "POST", "/items/delete", json={"ids": ids[i:i + step]})["results"]]
        return out

    def clear(self) -> int:
        """Delete every item; returns how many were deleted."""
        return self._call("DELETE", "/items")["deleted"]

    def add(self, *targets: str | Path, recursive: bool = True, skip_duplicates: bool = True,
            remove_missing: bool = True, progress: Callable[[int, int | None], None] | None = None,
            cancel: threading.Event | None = None, poll: float = 0.5) -> IndexReport:
        """Index *server-side* folders/files (inside the server's --allow-path) and wait.

        Runs as a background job on the server; ``progress(done, total)`` is
        called as it advances and setting ``cancel`` cancels the job.

        >>> col.add("/srv/photos/2024")                                # doctest: +SKIP
        IndexReport(indexed=812, updated=0, skipped=0, removed=0, errors=[])
        """
        if not targets:
            raise InvalidInput("add() needs at least one folder, file, glob, URL or CSV")
        job = self._call("POST", "/jobs/index", json={
            "path": [str(t) for t in targets], "recursive": recursive,
            "skip_duplicates": skip_duplicates, "remove_missing": remove_missing})
        return IndexReport.from_dict(self._wait(job, progress, cancel, poll))

    def reembed(self, model: str | None = None, *, model_path: str | None = None,
                batch_size: int = 32, progress: Callable[[int, int | None], None] | None = None,
                cancel: threading.Event | None = None, delete_unreadable: bool = False,
                poll: float = 0.5) -> ReembedReport:
        """Switch the collection to another model on the server, without downtime, and wait.

        ``model_path`` is a *server-side* folder inside the server's --allow-path.

        >>> col.reembed(model="MobileCLIP-B__datacompdr")              # doctest: +SKIP
        ReembedReport(model='MobileCLIP-B__datacompdr', dim=512, switched=True, ...)
        """
        job = self._call("POST", "/jobs/reembed", json={
            "model": model, "model_path": None if model_path is None else str(model_path),
            "batch_size": batch_size, "delete_unreadable": delete_unreadable})
        report = ReembedReport.from_dict(self._wait(job, progress, cancel, poll))
        if report.switched:
            self.info = replace(self.info, model=report.model, dim=report.dim)
        return report

    def reembed_status(self) -> dict[str, Any] | None:
        """The re-embed in progress (model, dim, staged, total), or None."""
        status: dict[str, Any] | None = self._call("GET", "/reembed")["reembed"]
        return status

    def abort_reembed(self) -> bool:
        """Drop the vectors of an unfinished re-embed; False if none was in progress."""
        return bool(self._call("DELETE", "/reembed")["aborted"])

    def _wait(self, job: dict[str, Any], progress: Callable[[int, int | None], None] | None,
              cancel: threading.Event | None, poll: float) -> dict[str, Any]:
        """Follow a server job to its end (cancelling it when ``cancel`` is set)."""
        cancelled = False
        while job["state"] == "running":
            if progress:
                progress(job["done"], job["total"])
            if cancel is not None and cancel.is_set() and not cancelled:
                job, cancelled = self.client.cancel_job(job["id"]), True
                continue
            time.sleep(poll)
            job = self.client.job(job["id"])
        if job["state"] == "failed":
            err = job.get("error") or {}
            raise from_code(err.get("code"), err.get("message", f"{job.get('kind')} job failed"))
        if progress:
            progress(job["done"], job["total"])
        return job

    # -- reads --------------------------------------------------------------------------------
    def get(self, id: str) -> Item:
        """Everything known about one item; ``NotFound`` if absent."""
        return Item.from_dict(self._call("GET", f"/items/{_seg(id)}"))

    def items(self, where: dict | None = None, limit: int = 100, offset: int = 0, *,
              sort: ListSort | None = None) -> list[Item]:
        """Items in insertion order or a date ``sort``, optionally filtered, for listing
        and paging (as :meth:`imgfind.Collection.items`)."""
        if sort is not None:
            check_sort(sort, listing=True)
        out: list[Item] = []
        while limit > 0:
            page = self._call("GET", "/items", params=_params(
                where=where, limit=min(limit, PAGE), offset=offset, sort=sort))["items"]
            out += [Item.from_dict(d) for d in page]
            if len(page) < min(limit, PAGE):
                break
            limit, offset = limit - len(page), offset + len(page)
        return out

    def image(self, id: str) -> bytes:
        """The original image bytes."""
        return self.client.request("GET", f"{self._base}/items/{_seg(id)}/image").content

    def thumbnail(self, id: str) -> bytes:
        """A small JPEG preview of the item (longest side 256 px)."""
        return self.client.request("GET", f"{self._base}/items/{_seg(id)}/thumbnail").content

    def vector(self, id: str) -> np.ndarray:
        """The stored unit vector of one item."""
        d = self._call("GET", f"/items/{_seg(id)}", params={"vector": "true"})
        return np.asarray(d["vector"], dtype=np.float32)

    def count(self, where: dict | None = None) -> int:
        return self._call("GET", "/items", params=_params(where=where, limit=0))["total"]

    # -- search -------------------------------------------------------------------------------
    def search(self, query: QueryLike | Query | dict[str, Any] | None = None, k: int = 10,
               where: dict | None = None, *, like: str | Sequence[str] | None = None,
               positive: Sequence[Any] | None = None, negative: Sequence[Any] | None = None,
               weights: Sequence[float] | None = None, min_score: float | None = None,
               sort: Sort = "score", mode: Mode | None = None) -> list[Hit]:
        """Top-``k`` items for a query, as :meth:`imgfind.Collection.search` (same arguments,
        checked here by the same :class:`~imgfind.query.Query` before anything is sent)."""
        if isinstance(query, Query):
            if (k, where, like, positive, negative, weights, min_score, sort, mode) != (
                    10, None, None, None, None, None, None, "score", None):
                raise InvalidInput("pass a Query on its own, without other search arguments")
            q = query
        else:
            q = Query.build(query, like=like, positive=positive, negative=negative,
                            weights=weights, k=k, where=where, min_score=min_score,
                            sort=sort, mode=mode)
        hits = self._call("POST", "/search", json=q.to_wire(_wire_example))["hits"]
        return [Hit.from_dict(h) for h in hits]

    def search_batch(self, queries: Sequence[QueryLike | Query | dict[str, Any]], k: int = 10,
                     where: dict | None = None, *, min_score: float | None = None,
                     sort: Sort = "score", mode: Mode | None = None) -> list[list[Hit]]:
        """Run many queries at once (in requests of the server's batch size)."""
        if isinstance(queries, (str, bytes)) or not isinstance(queries, Sequence):
            raise InvalidInput("search_batch needs a list of queries")
        wire = [(q if isinstance(q, Query) else
                 Query.build(q, k=k, where=where, min_score=min_score, sort=sort, mode=mode)
                 ).to_wire(_wire_example) for q in queries]
        out: list[list[Hit]] = []
        step = self.client.max_batch
        for i in range(0, len(wire), step):
            res = self._call("POST", "/search/batch", json={"queries": wire[i:i + step]})
            out += [[Hit.from_dict(h) for h in hs] for hs in res["results"]]
        return out

    def text_search(self, q: str, k: int = 10, where: dict | None = None, *,
                    sort: Sort = "score") -> list[Hit]:
        """Full-text search over path, user metadata and EXIF (not the pixels)."""
        query = Query.of([text_example(q)], k=k, where=where, sort=sort, mode="text")
        res = self._call("GET", "/text-search", params=_params(
            q=q, k=query.k, where=query.where, sort=None if sort == "score" else sort))
        return [Hit.from_dict(h) for h in res["hits"]]

    @property
    def ocr(self) -> bool:
        """Whether this collection reads the text inside its images."""
        return self.info.ocr

    def ocr_status(self) -> dict[str, Any]:
        """``{"enabled", "done", "pending", "with_text"}``, as the library's (the server's
        background worker does the reading)."""
        res = self._call("GET", "/ocr")
        return {k: res[k] for k in ("enabled", "done", "pending", "with_text")}

    def duplicates(self, threshold: float = 0.95) -> list[DuplicateGroup]:
        """Groups of exact copies and of near-duplicates (cosine >= threshold)."""
        groups = self._call("GET", "/duplicates", params={"threshold": threshold})["groups"]
        return [DuplicateGroup.from_dict(g) for g in groups]

    def resolve_duplicates(self, groups: Sequence[Any] | None = None, *,
                           threshold: float = 0.95, tiers: Sequence[str] | None = None,
                           dry_run: bool = True, expect: int | None = None) -> ResolveReport:
        """Keep one image per duplicate group, delete the others (as the library's)."""
        body: dict[str, Any] = {"threshold": threshold, "dry_run": dry_run}
        if groups is not None:
            body["groups"] = [{"keep": g.ids[0], "ids": g.ids} if isinstance(g, DuplicateGroup)
                              else g for g in groups]
        if tiers is not None:
            body["tiers"] = tiers
        if expect is not None:
            body["expect"] = expect
        return ResolveReport.from_dict(self._call("POST", "/duplicates/resolve", json=body))

    def check(self) -> dict[str, Any]:
        """Health of the store and its vector index: ``{"ok": bool, ...}``."""
        return self._call("GET", "/health")

    def rebuild(self) -> dict[str, Any]:
        """Rebuild the derived indexes on the server."""
        return self._call("POST", "/rebuild")

    # -- internals ----------------------------------------------------------------------------
    def _batched(self, path: str, entries: list[dict[str, Any]],
                 wire: Callable[[dict[str, Any]], dict[str, Any]],
                 params: dict[str, str] | None = None) -> list[Result]:
        """Send entries in bounded requests; an entry that fails locally fails alone."""
        results: list[Result | None] = [None] * len(entries)
        chunk: list[tuple[int, dict[str, Any]]] = []
        size = 0

        def flush() -> None:
            nonlocal size
            if chunk:
                res = self._call("POST", path, json={"items": [w for _, w in chunk]},
                                 params=params)
                for (i, _), r in zip(chunk, res["results"]):
                    results[i] = Result.from_dict(r)
            chunk.clear()
            size = 0

        for i, e in enumerate(entries):
            try:
                w = wire(e)
            except ImgfindError as err:
                item_id = e.get("id")
                results[i] = Result(id=item_id, error=err.message, code=err.code)
                continue
            chunk.append((i, w))
            size += len(w.get("image_b64") or "")
            if len(chunk) >= self.client.max_batch or size >= BATCH_BYTES:
                flush()
        flush()
        return results  # type: ignore[return-value]


# -- helpers ----------------------------------------------------------------------------------

def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _info(d: dict[str, Any]) -> CollectionInfo:
    return CollectionInfo(name=d["name"], model=d["model"], dim=int(d["dim"]),
                          created=d.get("created"), ocr=bool(d.get("ocr", False)))


def _params(**kw: Any) -> dict[str, Any]:
    return {k: json.dumps(v) if k == "where" else v for k, v in kw.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _wire_image(image: Any) -> dict[str, str]:
    """What the server needs for an image argument: a URL to fetch, or the bytes
    (with the file's name for a local file).

    Uses the library's own reading of the argument, so a missing file or an
    unusable type fails here exactly as it fails in the library.
    """
    src = _to_source(image)
    if src.kind == "url":
        return {"url": src.ref}
    if src.data is not None:
        return {"image_b64": _b64(src.data)}
    path = Path(src.ref)
    return {"image_b64": _b64(_read_file(path)), "name": path.name}


def _wire_example(e: Example) -> dict[str, Any]:
    """One query example as JSON: images are uploaded (base64) or passed as URLs."""
    if e.kind == "text":
        return {"text": e.value}
    if e.kind == "like":
        return {"like": e.value}
    if e.kind == "vector":
        return {"vector": [float(x) for x in np.asarray(e.value, dtype=np.float32).ravel()]}
    value = e.value
    if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
        return {"url": value}
    if isinstance(value, Image.Image):
        buf = io.BytesIO()
        value.save(buf, format="PNG")  # lossless: the server sees the same pixels
        return {"image_b64": _b64(buf.getvalue())}
    if isinstance(value, (bytes, bytearray)):
        return {"image_b64": _b64(bytes(value))}
    return {"image_b64": _b64(_read_file(Path(value).expanduser()))}


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror}") from None


if TYPE_CHECKING:  # mypy proves both collections satisfy the one interface
    from .api import Collection

    def _one_interface(local: Collection, remote: RemoteCollection) -> list[CollectionAPI]:
        return [local, remote]
