"""Commands on collections and models: `collections`, `create`, `drop`, `check`,
`rebuild`, `models`."""

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
    out,
    print_json,
    settings,
)


@app.command()
def collections(ctx: typer.Context, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List the collections in the library."""
    lib = settings(ctx).library(home)
    # A store this imgfind cannot open (written by a newer one) is listed with its problem.
    rows = [{"name": c.name, "model": c.model, "dim": c.dim,
             "count": None if c.problem else lib.collection(c.name).count(),
             **({"problem": c.problem} if c.problem else {})} for c in lib.collections()]
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print(f"no collections in {lib.home}; create one with `imgfind index PATH`")
        return
    from rich.table import Table  # (rich loads only to print a table)

    table = Table(box=None, header_style="bold")
    for name in ("name", "model", "dim", "count"):
        table.add_column(name)
    for r in rows:
        table.add_row(str(r["name"]), str(r["model"]), str(r["dim"]),
                      "?" if r["count"] is None else str(r["count"]))
    out.print(table)
    for r in rows:
        if "problem" in r:
            out.print(f"{r['name']}: {r['problem']}")


@app.command()
def create(ctx: typer.Context,
           name: Annotated[str, typer.Argument(help="Name of the new collection.")],
           model: Annotated[str | None, typer.Option(
               help="Model preset or 'phash' (see `imgfind models`).")] = None,
           ocr: Annotated[bool, typer.Option(
               "--ocr", help="Also read the text inside images (a pass after embedding).")]
           = False,
           home: HomeOpt = None, model_path: ModelPathOpt = None) -> None:
    """Create an empty collection bound to a model."""
    s = settings(ctx)
    col = s.library(home, model_path).create_collection(
        name, model=model, model_path=model_path or s.model_path if not model else None,
        ocr=ocr)
    out.print(f"created {col.name!r} with model {col.model!r} ({col.dim}-d)")


@app.command()
def drop(ctx: typer.Context,
         name: Annotated[str, typer.Argument(help="Collection to delete.")],
         yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
         home: HomeOpt = None) -> None:
    """Delete a collection and everything in it."""
    if not yes and sys.stdin.isatty():
        typer.confirm(f"drop collection {name!r} and all its items?", abort=True)
    settings(ctx).library(home).drop_collection(name)
    out.print(f"dropped {name!r}")


@app.command()
def check(ctx: typer.Context, home: HomeOpt = None, collection: CollectionOpt = None,
          as_json: JsonOpt = False) -> None:
    """Check that the store opens and its vector index is in step with it."""
    s = settings(ctx)
    lib = s.library(home)
    names = [collection or s.collection_name] if (collection or s.collection_opt) else \
        [c.name for c in lib.collections()]
    reports = {name: lib.collection(name).check() for name in names}
    ok = all(r.get("ok") for r in reports.values())
    if as_json:
        print_json({"ok": ok, "collections": reports})
    else:
        for name, r in reports.items():
            out.print(f"{name}: {'ok' if r.get('ok') else 'PROBLEMS'} "
                      f"({r.get('items', '?')} items)")
            for p in r.get("problems", []):
                out.print(f"  - {p}")
        if not reports:
            out.print("no collections")
    if not ok:
        raise typer.Exit(1)


@app.command()
def rebuild(ctx: typer.Context, home: HomeOpt = None, collection: CollectionOpt = None,
            as_json: JsonOpt = False) -> None:
    """Rebuild the vector and full-text indexes from the stored items."""
    col = settings(ctx).collection(home, collection, None)
    summary = col.rebuild()
    if as_json:
        print_json(summary)
    else:
        out.print(f"rebuilt {col.name!r}: {summary}")


@app.command()
def models(as_json: JsonOpt = False) -> None:
    """List the model presets (small/fast to large/precise) and what is cached."""
    from dataclasses import asdict, is_dataclass

    from ..embedders.phash import PHashEmbedder
    from ..embedders.registry import DEFAULT_MODEL, list_models

    presets = list_models()
    rows = [asdict(p) if is_dataclass(p) else dict(vars(p)) for p in presets]
    rows.append({"name": PHashEmbedder.name, "dim": PHashEmbedder.dim,
                 "image_size": PHashEmbedder.image_size, "cached": True,
                 "notes": "perceptual hash, built in (no download): duplicates and "
                          "look-alikes only, no text search"})
    if as_json:
        print_json(rows)
        return
    from rich.table import Table  # (rich loads only to print a table)

    table = Table(box=None, header_style="bold")
    for name in ("name", "dim", "image", "ImageNet top-1", "cached", "notes"):
        table.add_column(name)
    for r in rows:
        mark = " (default)" if r["name"] == DEFAULT_MODEL else ""
        top1 = r.get("imagenet_top1")
        table.add_row(r["name"] + mark, str(r.get("dim", "")), str(r.get("image_size", "")),
                      f"{top1:.1f}%" if top1 else "-", "yes" if r.get("cached") else "no",
                      str(r.get("notes", "")))
    out.print(table)
    out.print("Offline? Pass a local model folder with --model-path DIR or IMGFIND_MODEL_PATH.")
