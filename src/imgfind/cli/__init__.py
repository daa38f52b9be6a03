"""The ``imgfind`` command line.

    imgfind index ~/Pictures
    imgfind search "a dog on a beach" -k 5
    imgfind search --image query.jpg --where '{"format": "JPEG"}' --json
    imgfind serve --port 8000

Every command takes ``--home`` (or ``IMGFIND_HOME``) and ``--collection``
(default ``default``), before or after the command name. User errors print
one line without a traceback; exit codes are listed in ``app.py`` and the README.

Layout: ``app.py`` holds the typer ``app``, the global options, ``Settings`` and the
error handling in ``main()``; each other module holds the commands for one job.

Adding a command: create ``cli/<feature>.py``::

    from typing import Annotated
    import typer
    from .app import CollectionOpt, HomeOpt, JsonOpt, app, print_json, settings

    @app.command()
    def frob(ctx: typer.Context,
             n: Annotated[int, typer.Option(help="How many.")] = 1,   # every option has help
             home: HomeOpt = None, collection: CollectionOpt = None,
             as_json: JsonOpt = False) -> None:
        \"\"\"One line that `imgfind --help` shows.\"\"\"
        col = settings(ctx).collection(home, collection, None)
        ...

then add its module to the one import line below. Raise ``imgfind.errors`` types for
user errors (main() prints them as one line, exit 1) and ``typer.Exit(code)`` for
other exit codes; never ``sys.exit`` inside a command (the library must close).
"""

from __future__ import annotations

from . import (  # noqa: F401  (registers commands)
    collections,
    dedupe,
    index,
    items,
    ls,
    ocr,
    portable,
    reembed,
    search,
    serve,
    watch,
)
from .app import app, main

__all__ = ["app", "main"]
