"""`imgfind index`: add folders, files, URLs, CSVs and archives to a collection."""

from __future__ import annotations

import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from .app import (
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    CollectionOpt,
    HomeOpt,
    JsonOpt,
    ModelPathOpt,
    app,
    err,
    out,
    print_json,
    settings,
)
from .ocr import after_index

if TYPE_CHECKING:
    from ..ray_pipeline import RayOptions


@contextmanager
def _ctrl_c_cancels() -> Iterator[threading.Event]:
    """The first Ctrl-C asks the indexer to stop after the batch in flight (so it is saved);
    a second one interrupts at once."""
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return

    def on_sigint(signum: int, frame: object) -> None:
        cancel.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command()
def index(ctx: typer.Context,
          paths: Annotated[list[str], typer.Argument(
              help="Folders, files, globs, http(s) URLs (also of archives), CSVs or archives.")],
          home: HomeOpt = None, collection: CollectionOpt = None, model_path: ModelPathOpt = None,
          model: Annotated[str | None, typer.Option(
              help="Model preset for a new collection (see `imgfind models`); "
                   "an existing collection must already use it.")] = None,
          no_recursive: Annotated[bool, typer.Option(
              "--no-recursive", help="Only the top level of each folder.")] = False,
          keep_duplicates: Annotated[bool, typer.Option(
              "--keep-duplicates", help="Index exact copies too.")] = False,
          keep_missing: Annotated[bool, typer.Option(
              "--keep-missing", help="Keep items whose files are gone.")] = False,
          workers: Annotated[int | None, typer.Option(
              help="Decode threads (default: CPU count, 2 to 8).")] = None,
          ray: Annotated[str | None, typer.Option(
              "--ray", metavar="ADDRESS|local",
              help="Decode and embed on Ray: 'local' starts one here, else a cluster address "
                   "(ray://HOST:10001 or auto).")] = None,
          ray_actors: Annotated[int | None, typer.Option(
              "--ray-actors", min=1, help="Embedding actors (default: one per Ray CPU).")] = None,
          ray_gpus: Annotated[float, typer.Option(
              "--ray-gpus", min=0, help="GPUs per Ray actor (needs --ray).")] = 0,
          no_ocr: Annotated[bool, typer.Option(
              "--no-ocr", help="Do not read text now in an OCR collection (`imgfind ocr` "
                               "does it later).")] = False,
          as_json: JsonOpt = False) -> None:
    """Index images; re-running only processes new or changed files.

    Exits 0 when every item was indexed, 3 when some items failed (listed), 130 on Ctrl-C
    (what was indexed is kept; run again to resume).
    """
    executor = _ray_options(ray, ray_actors, ray_gpus)
    col = settings(ctx).collection(home, collection, model_path, create=True, model=model)
    with _ctrl_c_cancels() as cancel:
        report = col.add(*paths, recursive=not no_recursive,
                         skip_duplicates=not keep_duplicates,
                         remove_missing=not keep_missing, workers=workers, executor=executor,
                         cancel=cancel, show_progress=not as_json and sys.stderr.isatty())
    # an interrupted run stops here; the OCR pass resumes with the next index or `imgfind ocr`
    read = None if cancel.is_set() else after_index(col, skip=no_ocr, quiet=as_json)
    if as_json:
        print_json(report.to_dict() | ({"ocr": read} if read is not None else {}))
    else:
        out.print(f"indexed {report.indexed}, updated {report.updated}, "
                  f"skipped {report.skipped} (unchanged), duplicates {report.duplicates}, "
                  f"removed {report.removed}, ignored {len(report.ignored)}, "
                  f"errors {len(report.errors)}"
                  f" -> collection {col.name!r} ({col.count()} items)")
        for e in report.errors[:20]:
            err.print(f"  [red]error[/red] {e['source']}: {e['error']}", markup=True,
                      highlight=False)
        if len(report.errors) > 20:
            err.print(f"  ... and {len(report.errors) - 20} more (use --json for all)")
        if report.ignored:
            reasons = Counter(i["reason"] for i in report.ignored)
            err.print("  ignored: " + ", ".join(f"{n} {why}" for why, n in reasons.most_common())
                      + " (--json lists them)", highlight=False, markup=False)
        if read is not None:
            out.print(f"OCR read {read['read']} ({read['with_text']} with text), "
                      f"pending {read['pending']}")
    if cancel.is_set():
        err.print(f"interrupted: {report.indexed + report.updated} items saved; "
                  "run again to resume", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    if report.errors:
        raise typer.Exit(EXIT_PARTIAL)


def _ray_options(address: str | None, actors: int | None, gpus: float) -> RayOptions | None:
    if address is None:
        if actors is not None or gpus:
            raise typer.BadParameter("--ray-actors and --ray-gpus need --ray ADDRESS|local")
        return None
    from ..ray_pipeline import RayOptions

    return RayOptions(address=address, actors=actors, gpus_per_actor=gpus)
