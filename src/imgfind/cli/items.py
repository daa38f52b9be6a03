"""Commands on single items: `get`, `rm`, `meta`, and `dupes` over a collection's items."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .app import (
    CollectionOpt,
    HomeOpt,
    JsonOpt,
    app,
    err,
    out,
    print_json,
    settings,
)


@app.command()
def get(ctx: typer.Context, id: Annotated[str, typer.Argument(help="Item id.")],
        vector: Annotated[bool, typer.Option("--vector", help="Include the vector.")] = False,
        home: HomeOpt = None, collection: CollectionOpt = None,
        as_json: JsonOpt = False) -> None:
    """Show everything stored about one item."""
    col = settings(ctx).collection(home, collection, None)
    data = col.get(id).to_dict()
    if vector:
        data["vector"] = [round(float(x), 6) for x in col.vector(id)]
    if as_json:
        print_json(data)
        return
    from rich.table import Table  # (rich loads only to print a table)

    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in data.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False) if value else "-"
        table.add_row(key, "-" if value is None else str(value))
    out.print(table)


@app.command()
def rm(ctx: typer.Context, ids: Annotated[list[str], typer.Argument(help="Item ids.")],
       home: HomeOpt = None, collection: CollectionOpt = None, as_json: JsonOpt = False) -> None:
    """Delete items by id."""
    col = settings(ctx).collection(home, collection, None)
    results = col.delete_batch(ids)
    if as_json:
        print_json([r.to_dict() for r in results])
    else:
        for r in results:
            (err if r.error else out).print(f"error: {r.error}" if r.error else f"deleted {r.id}",
                                            highlight=False, markup=False)
    if any(r.error for r in results):
        raise typer.Exit(1)


@app.command()
def meta(ctx: typer.Context, id: Annotated[str, typer.Argument(help="Item id.")],
         data: Annotated[str, typer.Argument(help='JSON object, e.g. \'{"album": "Rome"}\'.')],
         replace: Annotated[bool, typer.Option(
             "--replace", help="Replace all user metadata instead of merging.")] = False,
         home: HomeOpt = None, collection: CollectionOpt = None) -> None:
    """Set user metadata on an item (merged into what is there unless --replace)."""
    from ..errors import InvalidInput

    try:
        parsed = json.loads(data)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"metadata is not valid JSON: {e.msg}") from None
    col = settings(ctx).collection(home, collection, None)
    print_json(col.set_metadata(id, parsed, merge=not replace).metadata)


@app.command()
def dupes(ctx: typer.Context,
          threshold: Annotated[float, typer.Option(
              help="Cosine of the model's vectors for the 'similar' tier (edited copies are "
                   "proven by keypoints whatever it is).")]
          = 0.95,
          home: HomeOpt = None, collection: CollectionOpt = None, as_json: JsonOpt = False) -> None:
    """List groups of exact copies and near-duplicates."""
    col = settings(ctx).collection(home, collection, None)
    groups = col.duplicates(threshold)
    if as_json:
        print_json([g.to_dict() for g in groups])
        return
    if not groups:
        out.print("no duplicates")
    items = {it.id: it for it in col.get_many([i for g in groups for i in g.ids]) if it}
    for g in groups:
        kind = "exact" if g.exact else f"{g.tier} ({g.score:.3f})"
        out.print(f"[bold]{kind}[/bold]: {len(g.ids)} images")
        for i in g.ids:
            how = f"  [{g.edits[i] or g.tier}]" if i in g.edits else "  [first]"
            out.print(f"  {i}  {items[i].source if i in items else '?'}{how}", highlight=False)
