"""`imgfind ocr`: read (or resume reading) the text inside a collection's images.

``imgfind create NAME --ocr`` makes a collection that reads text; ``imgfind index`` runs
this pass after embedding (``--no-ocr`` defers it); ``imgfind ocr`` resumes it.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .app import (
    EXIT_INTERRUPTED,
    CollectionOpt,
    HomeOpt,
    JsonOpt,
    app,
    err,
    out,
    print_json,
    progress_bar,
    settings,
)

if TYPE_CHECKING:
    from ..api import Collection


@app.command()
def ocr(ctx: typer.Context,
        limit: Annotated[int | None, typer.Option(
            min=1, help="Read at most this many images now (the rest stay pending).")] = None,
        workers: Annotated[int | None, typer.Option(
            min=1, help="OCR threads (one engine each; default: up to 4 by CPU count).")] = None,
        status: Annotated[bool, typer.Option(
            "--status", help="Only print how many images are read and pending.")] = False,
        home: HomeOpt = None, collection: CollectionOpt = None,
        as_json: JsonOpt = False) -> None:
    """Read the text inside images that OCR has not read yet (resumes where it stopped)."""
    col = settings(ctx).collection(home, collection, None)
    if status:
        st = col.ocr_status()
        if as_json:
            print_json(st)
        else:
            out.print(f"OCR {'on' if st['enabled'] else 'off'}: {st['done']} read "
                      f"({st['with_text']} with text), {st['pending']} pending")
        return
    report = run_with_progress(col, limit=limit, workers=workers, quiet=as_json)
    if as_json:
        print_json(report)
    else:
        out.print(f"OCR read {report['read']} ({report['with_text']} with text), "
                  f"errors {len(report['errors'])}, pending {report['pending']} "
                  f"in {report['seconds']:.1f} s")
        for e in report["errors"][:20]:
            err.print(f"  [red]error[/red] {e['id']}: {e['error']}", markup=True,
                      highlight=False)


def run_with_progress(col: Collection, *, limit: int | None = None,
                      workers: int | None = None, quiet: bool = False) -> dict[str, Any]:
    """Run the pass with a progress bar on a terminal; Ctrl-C keeps what was read."""
    show = not quiet and sys.stderr.isatty()
    try:
        with progress_bar("reading text", console=err) if show else nullcontext() as tick:
            return col.run_ocr(limit=limit, workers=workers, progress=tick).to_dict()
    except KeyboardInterrupt:
        st = col.ocr_status()
        err.print(f"interrupted: {st['done']} images read, {st['pending']} pending; run "
                  "`imgfind ocr` to resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def after_index(col: Collection, skip: bool, quiet: bool) -> dict[str, Any] | None:
    """The OCR pass ``imgfind index`` runs after embedding, for OCR collections."""
    if skip or not col.ocr:
        return None
    return run_with_progress(col, quiet=quiet)
