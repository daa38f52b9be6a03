"""Request parsing shared by the routers: bodies (JSON or multipart), images, queries.

Routes that take an image parse their body here rather than through a pydantic
model, because one route takes a multipart file or a JSON body with ``url`` /
``path`` / ``image_b64``; every value is checked and bounded before the library
sees it, and a bad one is a typed :mod:`imgfind.errors` error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile

from .. import sources
from ..errors import (
    ImageTooLarge,
    ImgfindError,
    InvalidFilter,
    InvalidInput,
    PathNotAllowed,
    UnknownField,
)
from ..query import Query
from ..types import Result
from .settings import Settings

#: Key of a batch entry that already failed while the request was read (never a JSON key:
#: only :func:`read_batch` sets it).
FAILED = "\0failed"


async def read_json(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInput(f"request body is not valid JSON ({e})") from None


def is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith("multipart/form-data")


async def read_upload(upload: UploadFile, settings: Settings) -> bytes:
    if upload.size is not None and upload.size > settings.max_upload_bytes:
        raise ImageTooLarge(f"{upload.filename or 'upload'} is {upload.size} bytes; this "
                            f"server takes images up to {settings.max_upload_bytes} bytes")
    return await upload.read()


def form_json(value: Any, name: str) -> Any:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"form field {name!r} must be text (a JSON string)")
    try:
        return json.loads(value)
    except ValueError as e:
        raise InvalidInput(f"form field {name!r} is not valid JSON ({e})") from None


async def read_single(request: Request, settings: Settings, fields: Iterable[str], *,
                      need_image: bool = True) -> dict[str, Any]:
    """One entry from multipart (file + JSON-string fields) or a JSON object.

    ``fields``: the names the route takes (besides the multipart ``file``); any
    other is an :class:`UnknownField` error.
    """
    if is_multipart(request):
        async with request.form(max_files=1, max_fields=16) as form:
            check_fields(form.keys(), {*fields, "file"}, "form field")
            upload = form.get("file")
            entry: dict[str, Any] = {
                k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
            if isinstance(upload, UploadFile):
                entry["bytes"] = await read_upload(upload, settings)
                if upload.filename and "name" in fields:
                    entry.setdefault("name", upload.filename)
            elif upload is not None:
                raise InvalidInput("form field 'file' must be a file upload")
        for name in ("metadata", "where"):
            if name in entry:
                entry[name] = form_json(entry[name], name)
        if "k" in entry:
            entry["k"] = parse_int(entry["k"], "k")
        if "merge" in entry:
            entry["merge"] = parse_bool(entry["merge"])
    else:
        entry = await read_json(request)
        if not isinstance(entry, dict):
            raise InvalidInput("request body must be a JSON object")
        check_fields(entry, fields, "field")
    if need_image and not has_image(entry):
        raise InvalidInput("no image: send a multipart 'file', or JSON with 'url', 'path' "
                           "or 'image_b64'")
    return entry


async def read_batch(request: Request, settings: Settings) -> list[Any]:
    """Batch entries from multipart ``files`` (many) or JSON ``{"items": [...]}``."""
    if is_multipart(request):
        async with request.form(max_files=settings.max_batch, max_fields=16) as form:
            check_fields(form.keys(), ("files", "file"), "form field")
            uploads = form.getlist("files") + form.getlist("file")
            entries = []
            for up in uploads:
                if not isinstance(up, UploadFile):
                    raise InvalidInput("form field 'files' must hold file uploads")
                entry: dict[str, Any] = {"name": up.filename} if up.filename else {}
                try:
                    entry["bytes"] = await read_upload(up, settings)
                except ImageTooLarge as e:  # this file fails alone, like a JSON entry
                    entry[FAILED] = e
                entries.append(entry)
        if not entries:
            raise InvalidInput("no files: send one or more multipart 'files' fields")
        return entries
    return list_field(await read_json(request), "items", settings)


def check_fields(given: Iterable[str], known: Iterable[str], what: str = "field") -> None:
    """Refuse names outside ``known`` (a typo must not be silently ignored)."""
    known = set(known)
    unknown = sorted({name for name in given if name not in known})
    if unknown:
        raise UnknownField(f"unknown {what} {', '.join(map(repr, unknown))} (known: "
                           f"{', '.join(sorted(known))})")


def list_field(body: Any, name: str, settings: Settings) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get(name), list):
        raise InvalidInput(f"request body must be a JSON object with a {name!r} list")
    check_fields(body, (name,))
    if len(body[name]) > settings.max_batch:
        raise InvalidInput(f"at most {settings.max_batch} {name} per request; split the batch")
    return body[name]


def has_image(entry: dict[str, Any]) -> bool:
    return any(entry.get(k) is not None for k in ("bytes", "url", "path", "image_b64"))


def image_from(entry: dict[str, Any], settings: Settings) -> Any:
    """The library image argument for an entry: bytes, a checked URL or an allowed path."""
    given = [k for k in ("bytes", "url", "path", "image_b64") if entry.get(k) is not None]
    if len(given) != 1:
        raise InvalidInput("give exactly one image: a file, 'url', 'path' or 'image_b64'")
    kind, value = given[0], entry[given[0]]
    if kind == "bytes":
        return value
    if kind == "url":
        return check_url(value)
    if kind == "path":
        return allowed_path(value, settings)
    return decode_b64(value, settings)


def per_item(entries: list[Any], settings: Settings, fields: Iterable[str],
             run: Callable[[list[tuple[dict[str, Any], Any]]], list[Result]],
             image_optional: bool = False) -> list[dict[str, Any]]:
    """Convert each entry's image, run the good ones as one library batch, keep the order.

    An entry that cannot even be converted (bad base64, refused path, a field
    not in ``fields``) fails alone, as the library does for an undecodable image.
    """
    fields = {*fields, "bytes"}
    results: list[Result | None] = [None] * len(entries)
    good: list[tuple[int, dict[str, Any], Any]] = []
    for i, e in enumerate(entries):
        try:
            if not isinstance(e, dict):
                raise InvalidInput("each item must be a JSON object")
            if isinstance(e.get(FAILED), ImgfindError):
                raise e[FAILED]
            check_fields(e, fields)
            img = image_from(e, settings) if (has_image(e) or not image_optional) else None
            good.append((i, e, img))
        except ImgfindError as err:
            item_id = e.get("id") if isinstance(e, dict) else None
            results[i] = Result(id=item_id if isinstance(item_id, str) else None,
                                error=err.message, code=err.code)
    if good:
        for (i, _, _), res in zip(good, run([(e, img) for _, e, img in good])):
            results[i] = res
    return [r.to_dict() for r in results]  # type: ignore[union-attr]


def parse_search(body: dict[str, Any], settings: Settings, *,
                 multipart: bool = False) -> Query:
    """The library's :class:`~imgfind.query.Query` from a search body (JSON, or a
    multipart form's string fields); the Query checks every value, once."""
    if multipart:
        body = dict(body)
        for name in ("positive", "negative", "weights"):
            if name in body:
                body[name] = form_json(body[name], name)
        if "min_score" in body:
            body["min_score"] = parse_float(body["min_score"], "min_score")
    body = {**body, "where": parse_where(body.get("where"))}
    return Query.from_wire(body, lambda b64: decode_b64(b64, settings))


def check_url(value: Any) -> str:
    # Only http(s): anything else (file:, ftp:, a bare path) would read the server's disk.
    if not isinstance(value, str) or not value.lower().startswith(("http://", "https://")):
        raise InvalidInput("'url' must be an http:// or https:// URL")
    return value


def allowed_path(path: Any, settings: Settings) -> Path:
    if not isinstance(path, str) or not path:
        raise InvalidInput("'path' must be a non-empty string")
    if not settings.allow_paths:
        raise PathNotAllowed("server-side paths are disabled on this server; upload the "
                             "image instead, or start it with --allow-path DIR")
    return Path(sources.resolve_allowed(path, settings.allow_paths))


def check_tree(targets: list[str], recursive: bool, settings: Settings) -> None:
    """Refuse a job whose folders reach outside the allowed roots.

    The target itself was checked, but the indexer follows symlinks inside a
    folder and reads the paths a CSV lists: every file it would read must lie
    inside a root too (URLs listed in a CSV go through the bounded fetcher).
    """
    for target in targets:
        for src in sources.iter_sources(target, recursive=recursive):
            if src.kind in ("file", "archive"):
                allowed_path(src.ref.split("!", 1)[0] if src.kind == "archive" else src.ref,
                         settings)


def decode_b64(value: Any, settings: Settings) -> bytes:
    if not isinstance(value, str):
        raise InvalidInput("'image_b64' must be a base64 string")
    if value.startswith("data:") and "," in value:  # a data: URL from a browser
        value = value.split(",", 1)[1]
    too_large = ImageTooLarge(f"image is over this server's limit of "
                              f"{settings.max_upload_bytes} bytes")
    if len(value) > settings.max_upload_bytes * 4 // 3 + 4:
        raise too_large  # refuse before decoding a huge string
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("'image_b64' is not valid base64") from None
    if len(data) > settings.max_upload_bytes:
        raise too_large
    return data


def parse_where(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise InvalidFilter(f"'where' is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise InvalidFilter('\'where\' must be a JSON object, e.g. {"format": "JPEG"}')
    return value


def parse_float(value: str, name: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a number") from None


def parse_int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer") from None


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no", ""):
        return value.lower() in ("true", "1", "yes")
    raise InvalidInput("merge must be true or false")
