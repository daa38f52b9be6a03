"""`imgfind index`: add folders, files, URLs, CSVs and archives to a collection."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .app import (
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


@app.command()
def index(ctx: typer.Context,
          paths: Annotated[list[str], typer.Argument(
              help="Folders, files, globs, http(s) URLs, CSVs or archives.")],
          home: HomeOpt = None, collection: CollectionOpt = None, model_path: ModelPathOpt = None,
          model: Annotated[str | None, typer.Option(
              help="Model preset for a new collection (see `imgfind models`).")] = None,
          no_recursive: Annotated[bool, typer.Option("--no-recursive")] = False,
          keep_duplicates: Annotated[bool, typer.Option(
              "--keep-duplicates", help="Index exact copies too.")] = False,
          keep_missing: Annotated[bool, typer.Option(
              "--keep-missing", help="Keep items whose files are gone.")] = False,
          workers: Annotated[int | None, typer.Option(help="Decode processes.")] = None,
          as_json: JsonOpt = False) -> None:
    """Index images; re-running only processes new or changed files."""
    col = settings(ctx).collection(home, collection, model_path, create=True, model=model)
    report = col.add(*paths, recursive=not no_recursive, skip_duplicates=not keep_duplicates,
                     remove_missing=not keep_missing, workers=workers,
                     show_progress=not as_json and sys.stderr.isatty())
    if as_json:
        print_json(report.to_dict())
    else:
        out.print(f"indexed {report.indexed}, updated {report.updated}, skipped {report.skipped}"
                  f", removed {report.removed}, errors {len(report.errors)}"
                  f" -> collection {col.name!r} ({col.count()} items)")
        for e in report.errors[:20]:
            err.print(f"  [red]error[/red] {e['source']}: {e['error']}", markup=True,
                      highlight=False)
        if len(report.errors) > 20:
            err.print(f"  ... and {len(report.errors) - 20} more (use --json for all)")
    if report.errors and not (report.indexed or report.updated or report.skipped):
        raise typer.Exit(1)
