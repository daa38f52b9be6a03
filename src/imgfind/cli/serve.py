"""`imgfind serve`: the REST API and web UI."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import (
    HomeOpt,
    ModelPathOpt,
    app,
    settings,
)


@app.command()
def serve(ctx: typer.Context, home: HomeOpt = None, model_path: ModelPathOpt = None,
          host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes it.")]
          = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
          api_key: Annotated[str | None, typer.Option(
              envvar="IMGFIND_API_KEY", help="Require this bearer key for writes.")] = None,
          protect_reads: Annotated[bool, typer.Option(
              "--protect-reads", help="Require the API key for reads too.")] = False,
          allow_path: Annotated[list[Path] | None, typer.Option(
              "--allow-path", help="Server-side folder callers may index from (repeat).")]
          = None,
          allow_private_urls: Annotated[bool, typer.Option(
              "--allow-private-urls",
              help="Let callers' image URLs point at loopback/private addresses.")] = False,
          allow_model_download: Annotated[bool, typer.Option(
              "--allow-model-download",
              help="Let callers create collections with models this machine must download "
                   "first (off: 403).")] = False,
          ocr_threads: Annotated[int, typer.Option(
              "--ocr-threads", min=0,
              help="Threads reading text in OCR collections in the background (0: none).")]
          = 1,
          watch: Annotated[list[Path] | None, typer.Option(
              "--watch", help="Folder to keep indexed into --collection while serving, as "
                              "`imgfind watch` does (repeat).")] = None
          ) -> None:
    """Run the REST API and the web UI."""
    from ..server import serve as run_server

    _check_port_free(host, port)
    lib = settings(ctx).library(home, model_path)
    watcher = None
    if watch:
        from ..watch import Watcher

        col = settings(ctx).collection(home, None, model_path, create=True)
        watcher = Watcher(col, watch).start()
    try:
        run_server(lib, host=host, port=port, api_key=api_key, protect_reads=protect_reads,
                   allow_paths=tuple(allow_path or ()), allow_private_urls=allow_private_urls,
                   allow_model_download=allow_model_download, ocr_threads=ocr_threads)
    finally:
        if watcher is not None:
            watcher.stop()


def _check_port_free(host: str, port: int) -> None:
    """Fail with one line naming the port before uvicorn logs its own bind error and exits."""
    import errno
    import socket

    from ..errors import InvalidInput

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise InvalidInput(f"cannot bind to host {host!r}: {e.strerror}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as e:
            why = "is already in use" if e.errno == errno.EADDRINUSE else f"cannot be bound " \
                f"({e.strerror})"
            raise InvalidInput(f"port {port} on {host} {why}; stop the other server or pick "
                               "another port with --port") from None
