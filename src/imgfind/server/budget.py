"""One memory budget for request bodies across all requests in flight.

The per-request limit (:class:`~imgfind.server.errors.BodyLimitMiddleware`)
bounds one body; this bounds their sum, so a handful of concurrent large
batches cannot take the server's memory (three 250 MB JSON batches once took
it from 85 MB to 2.3 GB). A request reserves its declared ``Content-Length``
(or, when chunked, each chunk as it arrives) and gives it back when its
response is sent, because the parsed body lives until then. Past the budget
the answer is 503 with ``Retry-After``; a body larger than the whole budget
could never fit and is a 413.
"""

from __future__ import annotations

import json
import threading

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import content_length, drain, error_body

#: Seconds a refused client is told to wait before retrying.
RETRY_AFTER = 2


class MemoryBudget:
    """Bytes of request bodies held at once, shared by every request of one app."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.limit:
                return False
            self.used += n
            return True

    def give(self, n: int) -> None:
        with self._lock:
            self.used -= n


class _Refused(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class MemoryBudgetMiddleware:
    """Admit a request only while its body fits the shared :class:`MemoryBudget`."""

    def __init__(self, app: ASGIApp, budget: MemoryBudget):
        self.app = app
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = content_length(scope)
        if declared is not None and declared > self.budget.limit:
            await drain(receive)
            await _refuse(send, 413, _over_message(self.budget))
            return
        held = 0
        if declared:
            if not self.budget.take(declared):
                await drain(receive)
                await _refuse(send, 503, _busy_message(self.budget))
                return
            held = declared
        started = False

        async def counted_receive() -> Message:
            nonlocal held
            message = await receive()
            if declared is None and message["type"] == "http.request":
                n = len(message.get("body", b""))
                if held + n > self.budget.limit:
                    raise _Refused(413)  # this body alone could never fit
                if n and not self.budget.take(n):
                    raise _Refused(503)
                held += n
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _Refused as e:
            if not started:
                await drain(receive)
                await _refuse(send, e.status, _busy_message(self.budget) if e.status == 503
                              else _over_message(self.budget))
        finally:
            self.budget.give(held)


def _over_message(budget: MemoryBudget) -> str:
    return (f"request body is over this server's memory budget of {budget.limit} bytes; "
            "send less per request")


def _busy_message(budget: MemoryBudget) -> str:
    return (f"the server is holding its budget of {budget.limit} bytes of request bodies "
            f"for other requests; retry in {RETRY_AFTER} s")


async def _refuse(send: Send, status: int, message: str) -> None:
    code = "busy" if status == 503 else "image_too_large"
    body = json.dumps(error_body(code, message)).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    if status == 503:
        headers.append((b"retry-after", str(RETRY_AFTER).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
