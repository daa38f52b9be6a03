"""Route dependencies: the app's library, settings and jobs, and API-key checks.

Routers are module-level and shared by every app :func:`create_app` builds, so
a route reaches its app's state through these (``request.app.state``), never
through globals.

>>> @router.get("/collections/{c}/things", dependencies=READ)        # doctest: +SKIP
... def things(collection: CollectionDep) -> dict: ...
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..api import Collection, Library
from ..errors import Unauthorized, UnknownField
from .jobs import JobManager
from .settings import Settings

#: cookie the web UI sets so image tags can load when reads need the key
KEY_COOKIE = "imgfind_key"

_BEARER = HTTPBearer(auto_error=False, description="the server's --api-key")


def get_library(request: Request) -> Library:
    return request.app.state.library  # type: ignore[no-any-return]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_jobs(request: Request) -> JobManager:
    return request.app.state.jobs  # type: ignore[no-any-return]


LibraryDep = Annotated[Library, Depends(get_library)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]


def _query_names(route: APIRoute) -> frozenset[str]:
    names: frozenset[str] | None = getattr(route, "_imgfind_query_names", None)
    if names is None:
        found: set[str] = set()
        todo = [route.dependant]
        while todo:  # the route's own parameters and those of its dependencies
            dependant = todo.pop()
            found.update(p.alias for p in dependant.query_params)
            todo.extend(dependant.dependencies)
        names = frozenset(found)
        route._imgfind_query_names = names  # type: ignore[attr-defined]  # cached per route
    return names


async def reject_unknown_query(request: Request) -> None:
    """An app-wide dependency: a query parameter the route does not declare is a 422
    ``unknown_field``, not silently ignored (``?limt=5`` must not mean the default)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route)
    unknown = [name for name in request.query_params if name not in known]
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise UnknownField(f"unknown query parameter {', '.join(map(repr, unknown))} "
                           f"(this route takes: {takes})")


def collection(request: Request, c: str) -> Collection:
    """The collection named by the route's ``{c}`` (NotFound if there is none)."""
    return get_library(request).collection(c)


def _check_key(request: Request, cred: HTTPAuthorizationCredentials | None, *,
               write: bool) -> None:
    settings = get_settings(request)
    if settings.api_key is None or not (write or settings.protect_reads):
        return
    given = cred.credentials.encode() if cred else b""
    if not given and not write:
        # <img> tags cannot send a header: the web UI mirrors the key into a
        # SameSite=Strict cookie, honoured for reads only (writes need the header,
        # so a forged cross-site request can never write).
        given = unquote(request.cookies.get(KEY_COOKIE, "")).encode()
    # Constant time: the comparison must not leak how much of a guess was right.
    if not hmac.compare_digest(given, settings.api_key.encode()):
        raise Unauthorized("this request needs the API key: send "
                           "'Authorization: Bearer <key>' (the server's --api-key)")


def require_read(request: Request,
                 cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
                 ) -> None:
    """Reads need the key only when the server protects reads (``--protect-reads``)."""
    _check_key(request, cred, write=False)


def require_write(request: Request,
                  cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
                  ) -> None:
    """Writes need ``Authorization: Bearer <key>`` whenever the server has a key."""
    _check_key(request, cred, write=True)


#: ``dependencies=`` for read and write routes
READ = [Depends(require_read)]
WRITE = [Depends(require_write)]
