"""The ``imgfind`` command line.

    imgfind index ~/Pictures
    imgfind search "a dog on a beach" -k 5
    imgfind search --image query.jpg --where '{"format": "JPEG"}' --json
    imgfind serve --port 8000

Every command takes ``--home`` (or ``IMGFIND_HOME``) and ``--collection``
(default ``default``), before or after the command name. User errors print
one line without a traceback and exit non-zero.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from .api import Collection, Library

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="imgfind: find images by example image, by text and by metadata.")
# Piped output keeps whole lines (full paths), a terminal gets tables fitted to its width.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 4096)
err = Console(stderr=True)

HomeOpt = Annotated[Path | None, typer.Option(
    "--home", envvar="IMGFIND_HOME", help="Library folder (default ~/.imgfind).")]
CollectionOpt = Annotated[str | None, typer.Option(
    "--collection", "-c", help="Collection name (default 'default').")]
ModelPathOpt = Annotated[Path | None, typer.Option(
    "--model-path", envvar="IMGFIND_MODEL_PATH",
    help="Local model folder (ONNX CLIP layout); needed offline.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


class Settings:
    def __init__(self, home: Path | None, collection: str | None, model_path: Path | None):
        self.home, self.collection_opt, self.model_path = home, collection, model_path
        self._lib: Library | None = None

    def library(self, home: Path | None = None, model_path: Path | None = None) -> Library:
        from .api import open as open_library

        if self._lib is None:
            self._lib = open_library(home or self.home, model_path=model_path or self.model_path)
        return self._lib

    def collection(self, ctx_home: Path | None, name: str | None,
                   model_path: Path | None, *, create: bool = False,
                   model: str | None = None) -> Collection:
        lib = self.library(ctx_home, model_path)
        name = name or self.collection_name
        if create and name not in {c.name for c in lib.collections()}:
            return lib.create_collection(name, model=model,
                                         model_path=model_path or self.model_path)
        return lib.collection(name)

    def close(self) -> None:
        """Close the library: stores save their vector index, so the next run starts warm."""
        if self._lib is not None:
            self._lib.close()
            self._lib = None

    @property
    def collection_name(self) -> str:
        return self.collection_opt or "default"


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj


@app.callback()
def root(ctx: typer.Context, home: HomeOpt = None, collection: CollectionOpt = None,
         model_path: ModelPathOpt = None) -> None:
    ctx.obj = Settings(home, collection, model_path)
    ctx.call_on_close(ctx.obj.close)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def _parse_where(where: str | None) -> dict | None:
    from .errors import InvalidFilter

    if not where:
        return None
    try:
        parsed = json.loads(where)
    except json.JSONDecodeError as e:
        raise InvalidFilter(f"--where is not valid JSON: {e.msg} at column {e.colno}") from None
    if not isinstance(parsed, dict):
        raise InvalidFilter("--where must be a JSON object, e.g. '{\"format\": \"JPEG\"}'")
    return parsed


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
    col = _settings(ctx).collection(home, collection, model_path, create=True, model=model)
    report = col.add(*paths, recursive=not no_recursive, skip_duplicates=not keep_duplicates,
                     remove_missing=not keep_missing, workers=workers,
                     show_progress=not as_json and sys.stderr.isatty())
    if as_json:
        _print_json(report.to_dict())
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
    from .errors import InvalidInput

    given = [x for x in (text, image, like) if x]
    if len(given) != 1:
        raise InvalidInput("give exactly one of: TEXT, --image PATH/URL, --like ID")
    col = _settings(ctx).collection(home, collection, model_path)
    if like:
        query: Any = {"like": like}
    elif image:
        if not image.startswith(("http://", "https://")) and not os.path.isfile(image):
            raise InvalidInput(f"no such image file: {image}")
        query = {"image": image}
    else:
        query = {"text": text}
    hits = col.search_batch([query], k=k, where=_parse_where(where))[0]
    if as_json:
        _print_json([h.to_dict() for h in hits])
        return
    _hits_table(hits)


def _hits_table(hits: list) -> None:
    if not hits:
        out.print("no matches")
        return
    table = Table(box=None, header_style="bold")
    for name in ("#", "score", "id", "source"):
        table.add_column(name, no_wrap=name != "source", overflow="fold")
    for n, h in enumerate(hits, 1):
        table.add_row(str(n), f"{h.score:.4f}", h.id, h.source)
    out.print(table)


@app.command("text")
def text_search(ctx: typer.Context,
                query: Annotated[str, typer.Argument(
                    help="Words to find in paths, metadata, EXIF.")],
                k: Annotated[int, typer.Option("-k", "--k")] = 10,
                where: Annotated[str | None, typer.Option()] = None,
                home: HomeOpt = None, collection: CollectionOpt = None,
                as_json: JsonOpt = False) -> None:
    """Full-text search over file paths, user metadata and EXIF (not pixels)."""
    col = _settings(ctx).collection(home, collection, None)
    hits = col.text_search(query, k=k, where=_parse_where(where))
    if as_json:
        _print_json([h.to_dict() for h in hits])
    else:
        _hits_table(hits)


@app.command()
def get(ctx: typer.Context, id: Annotated[str, typer.Argument(help="Item id.")],
        vector: Annotated[bool, typer.Option("--vector", help="Include the vector.")] = False,
        home: HomeOpt = None, collection: CollectionOpt = None,
        as_json: JsonOpt = False) -> None:
    """Show everything stored about one item."""
    col = _settings(ctx).collection(home, collection, None)
    data = col.get(id).to_dict()
    if vector:
        data["vector"] = [round(float(x), 6) for x in col.vector(id)]
    if as_json:
        _print_json(data)
        return
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
    col = _settings(ctx).collection(home, collection, None)
    results = col.delete_batch(ids)
    if as_json:
        _print_json([r.to_dict() for r in results])
    else:
        for r in results:
            (err if r.error else out).print(r.error or f"deleted {r.id}", highlight=False)
    if any(r.error for r in results):
        raise typer.Exit(1)


@app.command()
def meta(ctx: typer.Context, id: Annotated[str, typer.Argument(help="Item id.")],
         data: Annotated[str, typer.Argument(help='JSON object, e.g. \'{"album": "Rome"}\'.')],
         replace: Annotated[bool, typer.Option(
             "--replace", help="Replace all user metadata instead of merging.")] = False,
         home: HomeOpt = None, collection: CollectionOpt = None) -> None:
    """Set user metadata on an item (merged into what is there unless --replace)."""
    from .errors import InvalidInput

    try:
        parsed = json.loads(data)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"metadata is not valid JSON: {e.msg}") from None
    col = _settings(ctx).collection(home, collection, None)
    _print_json(col.set_metadata(id, parsed, merge=not replace).metadata)


@app.command()
def collections(ctx: typer.Context, home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List the collections in the library."""
    lib = _settings(ctx).library(home)
    rows = [{"name": c.name, "model": c.model, "dim": c.dim,
             "count": lib.collection(c.name).count()} for c in lib.collections()]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print(f"no collections in {lib.home}; create one with `imgfind index PATH`")
        return
    table = Table(box=None, header_style="bold")
    for name in ("name", "model", "dim", "count"):
        table.add_column(name)
    for r in rows:
        table.add_row(r["name"], r["model"], str(r["dim"]), str(r["count"]))
    out.print(table)


@app.command()
def create(ctx: typer.Context, name: Annotated[str, typer.Argument()],
           model: Annotated[str | None, typer.Option(
               help="Model preset or 'phash' (see `imgfind models`).")] = None,
           home: HomeOpt = None, model_path: ModelPathOpt = None) -> None:
    """Create an empty collection bound to a model."""
    s = _settings(ctx)
    col = s.library(home, model_path).create_collection(
        name, model=model, model_path=model_path or s.model_path if not model else None)
    out.print(f"created {col.name!r} with model {col.model!r} ({col.dim}-d)")


@app.command()
def drop(ctx: typer.Context, name: Annotated[str, typer.Argument()],
         yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
         home: HomeOpt = None) -> None:
    """Delete a collection and everything in it."""
    if not yes and sys.stdin.isatty():
        typer.confirm(f"drop collection {name!r} and all its items?", abort=True)
    _settings(ctx).library(home).drop_collection(name)
    out.print(f"dropped {name!r}")


@app.command()
def dupes(ctx: typer.Context,
          threshold: Annotated[float, typer.Option(help="Cosine similarity for near-duplicates.")]
          = 0.95,
          home: HomeOpt = None, collection: CollectionOpt = None, as_json: JsonOpt = False) -> None:
    """List groups of exact copies and near-duplicates."""
    col = _settings(ctx).collection(home, collection, None)
    groups = col.duplicates(threshold)
    if as_json:
        _print_json([g.to_dict() for g in groups])
        return
    if not groups:
        out.print("no duplicates")
    items = {it.id: it for it in col.get_many([i for g in groups for i in g.ids]) if it}
    for g in groups:
        kind = "exact" if g.exact else f"near ({g.score:.3f})"
        out.print(f"[bold]{kind}[/bold]: {len(g.ids)} images")
        for i in g.ids:
            out.print(f"  {i}  {items[i].source if i in items else '?'}", highlight=False)


@app.command()
def check(ctx: typer.Context, home: HomeOpt = None, collection: CollectionOpt = None,
          as_json: JsonOpt = False) -> None:
    """Check that the store opens and its vector index is in step with it."""
    s = _settings(ctx)
    lib = s.library(home)
    names = [collection or s.collection_name] if (collection or s.collection_opt) else \
        [c.name for c in lib.collections()]
    reports = {name: lib.collection(name).check() for name in names}
    ok = all(r.get("ok") for r in reports.values())
    if as_json:
        _print_json({"ok": ok, "collections": reports})
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
    col = _settings(ctx).collection(home, collection, None)
    summary = col.rebuild()
    if as_json:
        _print_json(summary)
    else:
        out.print(f"rebuilt {col.name!r}: {summary}")


@app.command()
def models(as_json: JsonOpt = False) -> None:
    """List the model presets (small/fast to large/precise) and what is cached."""
    from dataclasses import asdict, is_dataclass

    from .embedders.registry import DEFAULT_MODEL, list_models

    presets = list_models()
    rows = [asdict(p) if is_dataclass(p) else dict(vars(p)) for p in presets]
    if as_json:
        _print_json(rows)
        return
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


@app.command()
def serve(ctx: typer.Context, home: HomeOpt = None, model_path: ModelPathOpt = None,
          host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes it.")]
          = "127.0.0.1",
          port: Annotated[int, typer.Option()] = 8000,
          api_key: Annotated[str | None, typer.Option(
              envvar="IMGFIND_API_KEY", help="Require this bearer key for writes.")] = None,
          protect_reads: Annotated[bool, typer.Option(
              "--protect-reads", help="Require the API key for reads too.")] = False,
          allow_path: Annotated[list[Path] | None, typer.Option(
              "--allow-path", help="Server-side folder callers may index from (repeat).")]
          = None,
          allow_private_urls: Annotated[bool, typer.Option(
              "--allow-private-urls",
              help="Let callers' image URLs point at loopback/private addresses.")] = False
          ) -> None:
    """Run the REST API and the web UI."""
    from .server import serve as run_server

    lib = _settings(ctx).library(home, model_path)
    run_server(lib, host=host, port=port, api_key=api_key, protect_reads=protect_reads,
               allow_paths=tuple(allow_path or ()), allow_private_urls=allow_private_urls)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 1."""
    from .errors import ImgfindError

    try:
        app(standalone_mode=False)
    except ImgfindError as e:
        err.print(f"error: {e.message}", highlight=False, markup=False)
        sys.exit(1)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as e:  # click usage errors carry their own exit code
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise
