"""One JSON shape for every error the server sends, and the request-body size guard.

Every error response is ``{"error": {"code": ..., "message": ...}}`` with a
stable code from :mod:`imgfind.errors`, whether it came from the library
(``ImgfindError``), from request validation, from routing (404/405) or from
the body limit (413); a bug still answers in that shape, with a 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import Busy, ImageTooLarge, ImgfindError, UnknownField

log = logging.getLogger("imgfind.server")

#: Codes for HTTP errors raised by the framework itself (routing, auth headers).
_HTTP_CODES = {401: "unauthorized", 403: "path_not_allowed", 404: "not_found",
               413: "image_too_large"}


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def error_response(err: ImgfindError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    if isinstance(err, Busy):
        headers = {"Retry-After": str(err.retry_after)}
    return JSONResponse(error_body(err.code, err.message), status_code=err.status,
                        headers=headers)


class BodyTooLarge(ImageTooLarge):
    """A request body over the server's limit (raised while it streams in)."""


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception a request can raise to the common JSON error shape."""

    @app.exception_handler(ImgfindError)
    async def _imgfind(request: Request, exc: ImgfindError) -> JSONResponse:
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        unknown = [_loc(e) for e in exc.errors() if e.get("type") == "extra_forbidden"]
        if unknown:
            return error_response(UnknownField(
                f"unknown field {', '.join(map(repr, unknown))} in the request body "
                "(see /docs for the request format)"))
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
        message = "invalid request: " + "; ".join(parts) + " (see /docs for the request format)"
        return JSONResponse(error_body("invalid_input", message), status_code=400)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        status = exc.status_code
        code = _HTTP_CODES.get(status, "invalid_input" if status < 500 else "error")
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if status == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}; see /docs for the API"
        return JSONResponse(error_body(code, message), status_code=status,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # The client went away mid-request (e.g. killed mid-upload): nothing was stored,
        # nobody is left to answer, and it is no server bug worth a traceback.
        log.info("%s %s: the client disconnected before sending its whole body",
                 request.method, request.url.path)
        return JSONResponse(error_body("invalid_input", "client disconnected"),
                            status_code=400)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s crashed", request.method, request.url.path)
        return JSONResponse(error_body("error", f"internal error ({type(exc).__name__}); "
                                                "see the server log"), status_code=500)


class BodyLimitMiddleware:
    """Refuse request bodies over a per-request limit, as they stream in (413).

    A declared ``Content-Length`` over the limit is refused before reading a
    byte; a chunked body is counted and cut off at the limit. Whatever the
    route then tries to answer, the client gets the 413 JSON error.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = content_length(scope)
        if declared is not None and declared > limit:
            await drain(receive)
            await _send_413(send, limit)
            return
        total = 0
        tripped = False
        started = False

        async def limited_receive() -> Message:
            nonlocal total, tripped
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > limit:
                    tripped = True
                    raise BodyTooLarge(_too_large_message(limit))
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if tripped:
                # The route answered after the body was cut off (e.g. a parse error):
                # the caller must see the 413, not a misleading 400.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _send_413(send, limit)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not started:
                await drain(receive)
                await _send_413(send, limit)


#: Most bytes of a refused body read and thrown away before the answer (see :func:`drain`).
DRAIN_BYTES = 512 << 20


async def drain(receive: Receive, limit: int = DRAIN_BYTES) -> None:
    """Read and discard the rest of a refused request's body before answering it.

    A client sends its whole body before it reads the answer; answering and
    closing the socket on unread data makes the OS reset the connection, and the
    client then sees "connection reset" instead of the 413/503. Bytes are thrown
    away as they arrive (no memory held); past ``limit`` the answer goes out anyway.
    """
    seen = 0
    while seen <= limit:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        seen += len(message.get("body", b""))


def _loc(e: dict) -> str:
    return ".".join(str(x) for x in e.get("loc", ()) if x != "body")


def _too_large_message(limit: int) -> str:
    return (f"request body is over this server's limit of {limit} bytes; send a smaller "
            "image or fewer images per request (GET /api/health lists the limits)")


def content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps(error_body("image_too_large", _too_large_message(limit))).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
