"""`imgfind dedupe`: keep one image of each duplicate group, delete the others (dry run first)."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import CollectionOpt, HomeOpt, JsonOpt, app, out, print_json, settings


@app.command()
def dedupe(ctx: typer.Context,
           threshold: Annotated[float, typer.Option(
               help="Duplicate threshold, as for `dupes`.")] = 0.95,
           tier: Annotated[list[str] | None, typer.Option(
               "--tier", help="Resolve groups of this tier: exact, near, similar "
                              "(repeatable; default exact and near).")] = None,
           yes: Annotated[bool, typer.Option(
               "--yes", help="Delete for real (without it, only count).")] = False,
           home: HomeOpt = None, collection: CollectionOpt = None,
           as_json: JsonOpt = False) -> None:
    """Keep the likely original of each duplicate group and delete the others from the
    collection (files on disk are not touched). Counts only, unless --yes."""
    col = settings(ctx).collection(home, collection, None)
    report = col.resolve_duplicates(threshold=threshold, tiers=tier, dry_run=not yes)
    if as_json:
        print_json(report.to_dict())
    elif report.dry_run:
        out.print(f"would delete {report.count} images in {report.groups} groups, keeping "
                  "one of each; run again with --yes to delete them")
    else:
        out.print(f"deleted {report.count} images in {report.groups} groups")
    if report.errors:
        raise typer.Exit(1)
