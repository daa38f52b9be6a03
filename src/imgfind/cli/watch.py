"""`imgfind watch`: keep a collection in step with folders until stopped."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from .app import CollectionOpt, HomeOpt, JsonOpt, ModelPathOpt, app, err, out, settings


@app.command()
def watch(ctx: typer.Context,
          paths: Annotated[list[str], typer.Argument(help="Folders to watch (recursively).")],
          home: HomeOpt = None, collection: CollectionOpt = None, model_path: ModelPathOpt = None,
          model: Annotated[str | None, typer.Option(
              help="Model preset for a new collection (see `imgfind models`).")] = None,
          settle: Annotated[float, typer.Option(
              help="Seconds a new or changed file must stay unchanged before it is indexed.")]
          = 1.0,
          rescan: Annotated[float, typer.Option(
              help="Seconds between full rescans, which catch changes events missed "
                   "(network filesystems, inotify limits); 0 rescans only on start.")] = 300.0,
          polling: Annotated[bool, typer.Option(
              "--polling", help="Poll for changes instead of using OS notifications.")] = False,
          as_json: JsonOpt = False) -> None:
    """Index folders, then keep indexing their new, changed, moved and deleted files.

    Runs until Ctrl-C or SIGTERM, then prints what it did and exits 0.
    """
    from ..errors import SourceError
    from ..watch import Watcher, WatchStats

    for p in paths:   # before a collection is created for nothing
        if not Path(p).expanduser().is_dir():
            raise SourceError(f"cannot watch {p}: not a folder")
    col = settings(ctx).collection(home, collection, model_path, create=True, model=model)

    def report(stats: WatchStats) -> None:
        if as_json:
            _json_line({"event": "batch", **stats.to_dict()})
            return
        out.print(f"indexed {stats.indexed}, updated {stats.updated}, moved {stats.moved}, "
                  f"removed {stats.removed}, errors {len(stats.errors)} "
                  f"-> {col.count()} items", highlight=False)
        for e in stats.errors[:20]:
            err.print(f"  error {e['source']}: {e['error']}", markup=False, highlight=False)

    stop = threading.Event()

    def on_term(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    watcher = Watcher(col, paths, settle=settle, rescan=rescan or None, polling=polling,
                      on_batch=report)
    if not as_json:
        err.print(f"watching {', '.join(watcher.roots)} -> collection {col.name!r} "
                  "(Ctrl-C stops)", highlight=False)
    watcher.start()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()
        signal.signal(signal.SIGTERM, previous)
    if as_json:
        _json_line({"event": "stopped", **watcher.stats.to_dict()})
    else:
        s = watcher.stats
        err.print(f"stopped: indexed {s.indexed}, updated {s.updated}, moved {s.moved}, "
                  f"removed {s.removed}, errors {len(s.errors)}", highlight=False)


def _json_line(data: dict[str, Any]) -> None:
    """One JSON object per line, flushed: a script reads events as they happen."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()
