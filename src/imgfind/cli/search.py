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
           text: Annotated[str | None, typer.Argument(
               help="What to look for, in words (or the path of an image file).")] = None,
           image: Annotated[list[str] | None, typer.Option(
               "--image", "-i", help="Search by an image file or http(s) URL (repeatable).")]
           = None,
           like: Annotated[list[str] | None, typer.Option(
               help="Search like an item already in the collection, by id (repeatable).")]
           = None,
           add: Annotated[list[str] | None, typer.Option(
               "--add", help="Also look like this text (repeatable).")] = None,
           add_image: Annotated[list[str] | None, typer.Option(
               "--add-image", help="Also look like this image file or URL (repeatable).")]
           = None,
           sub: Annotated[list[str] | None, typer.Option(
               "--sub", help="Look unlike this text (repeatable).")] = None,
           sub_image: Annotated[list[str] | None, typer.Option(
               "--sub-image", help="Look unlike this image file or URL (repeatable).")]
           = None,
           unlike: Annotated[list[str] | None, typer.Option(
               "--unlike", help="Look unlike this item, by id (repeatable).")] = None,
           weights: Annotated[str | None, typer.Option(
               help="One weight per example, comma-separated, in the order TEXT, --image, "
                    "--like, --add, --add-image, then --sub, --sub-image, --unlike "
                    "(default 1 for each positive, 0.5 for each negative).")] = None,
           k: Annotated[int, typer.Option("-k", "--k", help="How many hits.")] = 10,
           where: Annotated[str | None, typer.Option(
               help='Metadata filter as JSON, e.g. \'{"format": "JPEG"}\'.')] = None,
           min_score: Annotated[float | None, typer.Option(
               "--min-score", help="Only hits with at least this score (cosine; see "
                                   "docs/search.md for a starting value per model).")] = None,
           sort: Annotated[str, typer.Option(
               help="Order of the hits: score, taken, -taken, added, -added.")] = "score",
           mode: Annotated[str | None, typer.Option(
               help="How a text ranks: vector, text or hybrid (default for text).")] = None,
           home: HomeOpt = None, collection: CollectionOpt = None,
           model_path: ModelPathOpt = None, as_json: JsonOpt = False) -> None:
    """Find images by text, example images or indexed items; --add/--sub examples
    steer the search towards or away from more examples."""
    from ..errors import InvalidInput
    from ..query import Query

    def image_arg(value: str) -> dict[str, Any]:
        if not value.lower().startswith(("http://", "https://")) \
                and not os.path.isfile(value):
            raise InvalidInput(f"no such image file: {value}")
        return {"image": value}

    positive: list[Any] = [text] if text else []
    positive += [image_arg(i) for i in image or ()]
    positive += [{"like": i} for i in like or ()]
    positive += [{"text": t} for t in add or ()]
    positive += [image_arg(i) for i in add_image or ()]
    negative: list[Any] = [{"text": t} for t in sub or ()]
    negative += [image_arg(i) for i in sub_image or ()]
    negative += [{"like": i} for i in unlike or ()]
    if not positive:
        raise InvalidInput("give what to look for: TEXT, --image PATH/URL or --like ID")
    ws: list[float] | None = None
    if weights is not None:
        try:
            ws = [float(w) for w in weights.split(",")]
        except ValueError:
            raise InvalidInput(f"--weights must be numbers separated by commas; got "
                               f"{weights!r}") from None
    query = Query.build(positive=positive, negative=negative, weights=ws, k=k,
                        where=parse_where(where), min_score=min_score, sort=sort, mode=mode)
    col = settings(ctx).collection(home, collection, model_path)
    hits = col.search(query)
    if as_json:
        print_json([h.to_dict() for h in hits])
        return
    hits_table(hits)


@app.command("text")
def text_search(ctx: typer.Context,
                query: Annotated[str, typer.Argument(
                    help="Words to find in paths, metadata, EXIF and OCR text.")],
                k: Annotated[int, typer.Option("-k", "--k", help="How many hits.")] = 10,
                where: Annotated[str | None, typer.Option(
                    help="Metadata filter as JSON.")] = None,
                sort: Annotated[str, typer.Option(
                    help="Order of the hits: score, taken, -taken, added, -added.")]
                = "score",
                home: HomeOpt = None, collection: CollectionOpt = None,
                as_json: JsonOpt = False) -> None:
    """Full-text search over file paths, user metadata, EXIF and text read in images."""
    col = settings(ctx).collection(home, collection, None)
    hits = col.text_search(query, k=k, where=parse_where(where),
                           sort=sort)  # type: ignore[arg-type]
    if as_json:
        print_json([h.to_dict() for h in hits])
    else:
        hits_table(hits)
