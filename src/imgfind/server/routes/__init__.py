"""The REST API's routers, one module per resource; :func:`create_app` mounts each under ``/api``.

Adding a resource is one new module and one line here:

1. ``server/routes/things.py`` defines a module-level ``router = APIRouter(...)``.
   Routes reach the app through dependencies, never globals (routers are shared
   by every app): ``library: LibraryDep``, ``settings: SettingsDep``,
   ``jobs: JobsDep`` and ``dependencies=READ`` / ``WRITE`` for the API key, all
   from :mod:`imgfind.server.deps`; bodies with images go through
   :mod:`imgfind.server.parsing`; errors are raised as :mod:`imgfind.errors`
   types (the app turns them into ``{"error": {"code", "message"}}``)::

       router = APIRouter(responses=ERRORS, tags=["things"])

       @router.get("/collections/{c}/things", dependencies=READ)
       def things(c: str, library: LibraryDep) -> dict[str, Any]:
           return {"things": library.collection(c).things()}

2. Add ``"things",`` to :data:`ROUTERS` below. Order matters only where two
   routes could match one path: a fixed segment (``/items/batch``) must come
   before a parameter at the same place (``/items/{item_id}``) for one method.
"""

from __future__ import annotations

from importlib import import_module

from fastapi import APIRouter

#: Router modules of this package, mounted in this order.
ROUTERS = (
    "collections",
    "items",
    "search",
    "jobs",
    "gallery",
    "review",
    "ocr",
    "reembed",
)


def routers() -> list[APIRouter]:
    """Each module's ``router``, in :data:`ROUTERS` order."""
    return [import_module(f"{__name__}.{name}").router for name in ROUTERS]
