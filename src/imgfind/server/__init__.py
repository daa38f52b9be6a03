"""The imgfind HTTP server: REST API under ``/api``, OpenAPI docs at ``/docs``, web UI at ``/``.

>>> import imgfind
>>> from imgfind.server import serve
>>> serve(imgfind.open("~/.imgfind"), port=8000, api_key="s3cret")  # doctest: +SKIP
"""

from __future__ import annotations

import sys
from typing import Any

from ..api import Library
from .app import create_app
from .background import BackgroundServer

__all__ = ["BackgroundServer", "create_app", "serve"]

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def serve(library: Library, host: str = "127.0.0.1", port: int = 8000, *,
          log_level: str = "info", **options: Any) -> None:
    """Serve ``library`` over HTTP until interrupted (Ctrl-C).

    Binds 127.0.0.1 unless told otherwise; ``options`` are those of
    :func:`create_app` (``api_key``, ``protect_reads``, ``allow_paths``,
    ``max_upload_bytes``, ``allow_model_download``, ...). Binding a host other
    than loopback without an ``api_key`` prints a warning.

    >>> serve(imgfind.open(), host="0.0.0.0", port=8080, api_key="s3cret",
    ...       allow_paths=["/srv/photos"])                             # doctest: +SKIP
    """
    import uvicorn

    app = create_app(library, **options)
    if host not in _LOOPBACK and not options.get("api_key"):
        # Printed, not only logged: nothing may have configured logging yet.
        print(f"warning: serving on {host} without --api-key: anyone who can reach this "
              "port can add and delete images (set --api-key or IMGFIND_API_KEY)",
              file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
