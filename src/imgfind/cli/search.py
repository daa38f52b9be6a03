"""`imgfind search` and `imgfind text`: find images by text, image, item or words."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from .app import (
    CollectionOpt,
    HomeOpt,
    JsonOpt,
    ModelPathOpt,
    app,
    hits_table,
    parse_where,
    print_json,
    settings,
)


@app.command()
def search(ctx: typer.Context,
           text: Annotated[str | None, typer.Argument(help="What to look for, in words.")]
           = None,
           image: Annotated[str | None, typer.Option(
               "--image", "-i", help="Search by an image file or http(s) URL.")] = None,
           like: Annotated[str | None, typer.Option(
               help="Search by an item already in the collection (its id).")] = None,
           k: Annotated[int, typer.Option("-k", "--k", help="How many hits.")] = 10,
           where: Annotated[str | None, typer.Option(
               help='Metadata filter as JSON, e.g. \'{"format": "JPEG"}\'.')] = None,
           home: HomeOpt = None, collection: CollectionOpt = None,
           model_path: ModelPathOpt = None, as_json: JsonOpt = False) -> None:
    """Find images by text, by an example image, or like an indexed item."""
    from ..errors import InvalidInput

    given = [x for x in (text, image, like) if x]
    if len(given) != 1:
        raise InvalidInput("give exactly one of: TEXT, --image PATH/URL, --like ID")
    col = settings(ctx).collection(home, collection, model_path)
    if like:
        query: Any = {"like": like}
    elif image:
        if not image.startswith(("http://", "https://")) and not os.path.isfile(image):
            raise InvalidInput(f"no such image file: {image}")
        query = {"image": image}
    else:
        query = {"text": text}
    hits = col.search_batch([query], k=k, where=parse_where(where))[0]
    if as_json:
        print_json([h.to_dict() for h in hits])
        return
    hits_table(hits)


@app.command("text")
def text_search(ctx: typer.Context,
                query: Annotated[str, typer.Argument(
                    help="Words to find in paths, metadata, EXIF.")],
                k: Annotated[int, typer.Option("-k", "--k")] = 10,
                where: Annotated[str | None, typer.Option()] = None,
                home: HomeOpt = None, collection: CollectionOpt = None,
                as_json: JsonOpt = False) -> None:
    """Full-text search over file paths, user metadata and EXIF (not pixels)."""
    col = settings(ctx).collection(home, collection, None)
    hits = col.text_search(query, k=k, where=parse_where(where))
    if as_json:
        print_json([h.to_dict() for h in hits])
    else:
        hits_table(hits)
