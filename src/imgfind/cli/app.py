"""The CLI's shared parts: the typer app, global options, settings, output helpers,
and ``main()``, which turns every error into a one-line message and a truthful
exit code (see ``EXIT_*`` below and the README's "Exit codes").
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ..api import Collection, Library

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="imgfind: find images by example image, by text and by metadata.")


class LazyConsole:
    """A rich ``Console`` made on first use, so a command that prints only JSON never
    imports rich (~20 ms of a cold ``imgfind search --json``).

    >>> LazyConsole(stderr=True).print("error: ...")     # doctest: +SKIP
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def print(self, *objects: Any, **options: Any) -> None:
        self.console.print(*objects, **options)


# Piped output keeps whole lines (full paths), a terminal gets tables fitted to its width.
out = LazyConsole(soft_wrap=True, width=None if sys.stdout.isatty() else 4096)
err = LazyConsole(stderr=True, soft_wrap=True)  # one error, one line (tests and scripts grep it)

HomeOpt = Annotated[Path | None, typer.Option(
    "--home", envvar="IMGFIND_HOME", help="Library folder (default ~/.imgfind).")]
CollectionOpt = Annotated[str | None, typer.Option(
    "--collection", "-c", help="Collection name (default 'default').")]
ModelPathOpt = Annotated[Path | None, typer.Option(
    "--model-path", envvar="IMGFIND_MODEL_PATH",
    help="Local model folder (ONNX CLIP layout); needed offline.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
StoreOpt = Annotated[str | None, typer.Option(
    "--store", envvar="IMGFIND_STORE",
    help="Store URI: sqlite (default), milvus:///abs/file.db, milvus://HOST:PORT, "
         "milvus+https://HOST:PORT.")]
BlobsOpt = Annotated[str | None, typer.Option(
    "--blobs", envvar="IMGFIND_BLOBS",
    help="Folder or fsspec URL for a Milvus store's thumbnails and originals.")]
#: Global options that may also follow the command name (main() moves them in front).
GLOBAL_AFTER_COMMAND = ("--store", "--blobs")


class Settings:
    def __init__(self, home: Path | None, collection: str | None, model_path: Path | None,
                 store: str | None = None, blobs: str | None = None):
        self.home, self.collection_opt, self.model_path = home, collection, model_path
        self.store, self.blobs = store, blobs
        self._lib: Library | None = None

    def library(self, home: Path | None = None, model_path: Path | None = None) -> Library:
        from ..api import open as open_library

        if self._lib is None:
            self._lib = open_library(home or self.home, model_path=model_path or self.model_path,
                                     store=self.store, blobs=self.blobs)
        return self._lib

    def collection(self, ctx_home: Path | None, name: str | None,
                   model_path: Path | None, *, create: bool = False,
                   model: str | None = None) -> Collection:
        from ..errors import NotFound

        lib = self.library(ctx_home, model_path)
        name = name or self.collection_name
        existing = [c.name for c in lib.collections()]
        if create:
            # exist_ok: an existing collection bound to another --model is a typed error
            return lib.create_collection(name, model=model, exist_ok=True,
                                         model_path=model_path or self.model_path)
        if name not in existing:
            have = ", ".join(repr(n) for n in existing) or "none yet"
            raise NotFound(f"no collection {name!r} in {lib.home} (collections: {have}); "
                           "pick one with --collection NAME, or create it with "
                           "`imgfind index PATH` / `imgfind create NAME`")
        return lib.collection(name)

    def close(self) -> None:
        """Close the library: stores save their vector index, so the next run starts warm."""
        if self._lib is not None:
            self._lib.close()
            self._lib = None

    @property
    def collection_name(self) -> str:
        return self.collection_opt or "default"


def settings(ctx: typer.Context) -> Settings:
    return ctx.obj


@app.callback()
def root(ctx: typer.Context, home: HomeOpt = None, collection: CollectionOpt = None,
         model_path: ModelPathOpt = None, store: StoreOpt = None, blobs: BlobsOpt = None) -> None:
    ctx.obj = Settings(home, collection, model_path, store, blobs)
    ctx.call_on_close(ctx.obj.close)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def parse_where(where: str | None) -> dict | None:
    from ..errors import InvalidFilter

    if not where:
        return None
    try:
        parsed = json.loads(where)
    except json.JSONDecodeError as e:
        raise InvalidFilter(f"--where is not valid JSON: {e.msg} at column {e.colno}") from None
    if not isinstance(parsed, dict):
        raise InvalidFilter("--where must be a JSON object, e.g. '{\"format\": \"JPEG\"}'")
    return parsed


@contextmanager
def progress_bar(label: str, *,
                 console: LazyConsole | None = None
                 ) -> Iterator[Callable[[int, int | None], None]]:
    """A done-of-total bar for a long pass; yields its ``progress(done, total)`` callback.

    >>> with progress_bar("re-embedding") as tick:                    # doctest: +SKIP
    ...     col.reembed(model_path="models/clip", progress=tick)
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                  console=console.console if console else None,
                  transient=False) as bar:
        task = bar.add_task(label, total=None)

        def tick(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield tick


def hits_table(hits: list) -> None:
    from rich.table import Table

    if not hits:
        out.print("no matches")
        return
    table = Table(box=None, header_style="bold")
    for name in ("#", "score", "id", "source"):
        table.add_column(name, no_wrap=name != "source", overflow="fold")
    for n, h in enumerate(hits, 1):
        table.add_row(str(n), f"{h.score:.4f}", h.id, h.source)
    out.print(table)


EXIT_OK = 0
EXIT_ERROR = 1         # a user error (typed ImgfindError), or a missing item
EXIT_USAGE = 2         # bad command line: unknown command/option, bad value, missing argument
EXIT_PARTIAL = 3       # `index` finished but some items failed (the report lists them)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


def _is_click_exception(e: BaseException) -> bool:
    """True for click's usage/parameter errors, whichever click raised them.

    typer >= 0.2x vendors its own click (``typer._click``) whose exception classes are not
    ``click.ClickException``, so we match on the class name along the MRO, which is the same
    in both copies, instead of importing either one.
    """
    return any(c.__name__ == "ClickException" for c in type(e).__mro__)


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move ``--store X`` / ``--blobs=X`` written after the command to the front, where
    the root callback reads them (so they work on either side, like ``--home``).

    >>> hoist_global_options(["search", "dog", "--store", "milvus:///m.db", "-k", "3"])
    ['--store', 'milvus:///m.db', 'search', 'dog', '-k', '3']
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i:])
            break
        if a in GLOBAL_AFTER_COMMAND and i + 1 < len(argv):
            front += argv[i:i + 2]
            i += 2
            continue
        if a.split("=", 1)[0] in GLOBAL_AFTER_COMMAND and "=" in a:
            front.append(a)
        else:
            rest.append(a)
        i += 1
    return front + rest


def main() -> None:
    """Console entry point: user errors become one line on stderr and a truthful exit code."""
    # What is alive at these two points (mostly the imported modules) stays alive
    # until the process ends: the collector need not walk it again, neither during
    # the command nor at exit (where those walks took 0.1-0.2 s each after a text
    # search, over ~60k objects). Objects are still freed when no longer referenced.
    gc.freeze()
    try:
        _main()
    finally:
        gc.freeze()


def _main() -> None:
    from ..errors import ImgfindError

    try:
        # without standalone mode, click returns a command's typer.Exit code instead of raising
        code = app(args=hoist_global_options(sys.argv[1:]), standalone_mode=False)
    except ImgfindError as e:
        err.print(f"error: {e.message}", highlight=False, markup=False)
        sys.exit(EXIT_ERROR)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort as e:
        # click turns Ctrl-C into Abort; a declined confirmation is an Abort too.
        if isinstance(e.__context__, KeyboardInterrupt):
            err.print("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        err.print("aborted")
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as e:
        if _is_click_exception(e):
            e.show()  # type: ignore[attr-defined]
            sys.exit(getattr(e, "exit_code", EXIT_USAGE))
        raise
    sys.exit(code if isinstance(code, int) else EXIT_OK)
