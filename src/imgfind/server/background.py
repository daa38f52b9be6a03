"""Run the server in a background thread (tests, notebooks, embedding in another program).

>>> with BackgroundServer(imgfind.open("/tmp/lib")) as srv:          # doctest: +SKIP
...     imgfind.Client(srv.url).collections()
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Self

import uvicorn

from ..api import Library
from ..errors import ImgfindError
from .app import create_app


class BackgroundServer:
    """Serves ``library`` on ``host`` and a free port, in a daemon thread, until ``stop()``.

    ``options`` are those of :func:`imgfind.server.create_app`. The socket is
    bound before the thread starts, so ``url`` is valid as soon as this returns.
    """

    def __init__(self, library: Library, host: str = "127.0.0.1", port: int = 0,
                 **options: Any):
        self.app = create_app(library, **options)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]},
                                        name="imgfind-server", daemon=True)

    def start(self, timeout: float = 30.0) -> Self:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ImgfindError(f"the server on {self.url} did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
