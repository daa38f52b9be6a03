"""`imgfind export` and `imgfind import`: a collection as one portable file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import HomeOpt, JsonOpt, app, err, out, print_json, settings


@app.command("export")
def export_(ctx: typer.Context,
            name: Annotated[str, typer.Argument(help="Collection to export.")],
            file: Annotated[Path, typer.Argument(
                help="File to write (.tar; .tar.gz or .tgz compresses).")],
            home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Write a collection (items, vectors, thumbnails, stored originals) to one file."""
    from ..portable import export_collection

    col = settings(ctx).library(home).collection(name)
    report = export_collection(col, file, progress=_progress(as_json, "exporting"))
    if as_json:
        print_json(report)
    else:
        out.print(f"exported {report['items']} items of {name!r} ({col.model}) to {file} "
                  f"({report['bytes']:,} bytes)", highlight=False)


@app.command("import")
def import_(ctx: typer.Context,
            file: Annotated[Path, typer.Argument(help="A file written by `imgfind export`.")],
            as_name: Annotated[str | None, typer.Option(
                "--as", help="Name of the new collection (default: the exported name).")]
            = None,
            model: Annotated[str | None, typer.Option(
                help="Embed the images again with this model instead of the exported one.")]
            = None,
            model_path: Annotated[Path | None, typer.Option(
                "--model-path", help="Embed the images again with this model folder.")]
            = None,
            home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Create a collection from an export file (ids, metadata and vectors as they were)."""
    from ..portable import import_collection

    lib = settings(ctx).library(home)
    report = import_collection(lib, file, name=as_name, model=model, model_path=model_path,
                               progress=_progress(as_json, "importing"))
    if as_json:
        print_json(report)
    else:
        how = "embedded again with" if report["reembedded"] else "with"
        out.print(f"imported {report['items']} items into {report['collection']!r}, {how} "
                  f"{report['model']!r} ({report['dim']}-d)", highlight=False)


def _progress(as_json: bool, what: str):  # type: ignore[no-untyped-def]
    if as_json or not sys.stderr.isatty():
        return None

    def show(done: int, total: int | None) -> None:
        err.print(f"\r{what} {done}/{total or '?'}", end="", highlight=False)

    return show
