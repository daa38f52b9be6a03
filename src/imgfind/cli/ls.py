"""`imgfind ls`: list a collection's items, newest first by default (as the gallery)."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import CollectionOpt, HomeOpt, JsonOpt, app, out, parse_where, print_json, settings


@app.command("ls")
def list_items(ctx: typer.Context,
               sort: Annotated[str, typer.Option(
                   help="Order: -taken (newest first by date taken, else date added), taken, "
                        "added, -added, or insertion.")] = "-taken",
               where: Annotated[str | None, typer.Option(
                   help='Metadata filter as JSON, e.g. \'{"album": "Rome"}\'.')] = None,
               limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100_000,
                                                  help="How many items.")] = 50,
               offset: Annotated[int, typer.Option(min=0, help="Skip this many first.")] = 0,
               home: HomeOpt = None, collection: CollectionOpt = None,
               as_json: JsonOpt = False) -> None:
    """List items in date order (or insertion order), optionally filtered."""
    col = settings(ctx).collection(home, collection, None)
    items = col.items(parse_where(where), limit=limit, offset=offset,
                      sort=None if sort == "insertion" else sort)  # type: ignore[arg-type]
    if as_json:
        print_json([it.to_dict() for it in items])
        return
    if not items:
        out.print("no items")
        return
    from rich.table import Table  # (rich loads only to print a table)

    table = Table(box=None, header_style="bold")
    for name in ("date", "id", "source"):
        table.add_column(name, no_wrap=name != "source", overflow="fold")
    for it in items:
        table.add_row((it.taken or it.added or "")[:19], it.id, it.source)
    out.print(table)
