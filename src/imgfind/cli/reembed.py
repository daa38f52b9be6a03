"""`imgfind reembed`: switch a collection to another model without downtime."""

from __future__ import annotations

import sys
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from .app import (
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
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


@app.command()
def reembed(ctx: typer.Context,
            model: Annotated[str | None, typer.Option(
                help="Model preset or hub name to switch to (see `imgfind models`).")] = None,
            model_path: Annotated[Path | None, typer.Option(
                "--model-path", help="Local model folder to switch to.")] = None,
            status: Annotated[bool, typer.Option(
                "--status", help="Only show the re-embed in progress, if any.")] = False,
            abort: Annotated[bool, typer.Option(
                "--abort", help="Drop the work of an unfinished re-embed.")] = False,
            delete_unreadable: Annotated[bool, typer.Option(
                "--delete-unreadable",
                help="Delete items whose image can no longer be read, instead of stopping "
                     "before the switch.")] = False,
            batch_size: Annotated[int, typer.Option(
                min=1, max=4096, help="Images embedded per committed batch.")] = 32,
            workers: Annotated[int | None, typer.Option(help="Decode threads.")] = None,
            home: HomeOpt = None, collection: CollectionOpt = None,
            as_json: JsonOpt = False) -> None:
    """Re-embed a collection with another model; searches use the old one until it is done.

    Resumes where it stopped when run again (after Ctrl-C or a crash).
    Exit 0 when switched, 3 when unreadable items blocked the switch, 130 on Ctrl-C.
    """
    col = settings(ctx).collection(home, collection, None)
    if status or abort:
        if abort:
            dropped = col.abort_reembed()
            if as_json:
                print_json({"aborted": dropped})
            else:
                out.print("re-embed aborted" if dropped else "no re-embed in progress")
            return
        state = col.reembed_status()
        if as_json:
            print_json({"collection": col.name, "model": col.model, "dim": col.dim,
                        "reembed": state})
        elif state is None:
            out.print(f"{col.name!r} uses {col.model!r} ({col.dim}-d); no re-embed in progress")
        else:
            out.print(f"{col.name!r} uses {col.model!r}; re-embedding with {state['model']!r}: "
                      f"{state['staged']} of {state['total']} items done")
        return
    target = model_path or settings(ctx).model_path
    cancel = threading.Event()
    show = not as_json and sys.stderr.isatty()
    try:
        with progress_bar("re-embedding") if show else nullcontext() as tick:
            report = col.reembed(model if target is None else None, model_path=target,
                                 batch_size=batch_size, workers=workers, cancel=cancel,
                                 progress=tick, delete_unreadable=delete_unreadable)
    except KeyboardInterrupt:
        state = col.reembed_status() or {}
        err.print(f"interrupted: {state.get('staged', 0)} of {state.get('total', 0)} items "
                  "re-embedded and saved; run again to resume", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if as_json:
        print_json(report.to_dict())
    elif report.switched:
        out.print(f"switched {col.name!r} from {report.previous_model!r} to {report.model!r} "
                  f"({report.dim}-d): {report.embedded} embedded, {report.deleted} unreadable "
                  "deleted", highlight=False)
    else:
        for e in report.errors[:20]:
            err.print(f"  error {e['source']}: {e['error']}", markup=False, highlight=False)
        err.print(f"{len(report.errors)} items could not be read, so {col.name!r} still uses "
                  f"{report.previous_model!r}; restore or delete them and run again (it "
                  "resumes), or pass --delete-unreadable", highlight=False)
    if not report.switched:
        raise typer.Exit(EXIT_PARTIAL)
