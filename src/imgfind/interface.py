"""The one Collection interface: what the library's and the HTTP client's collections share.

:class:`CollectionAPI` is the contract both :class:`imgfind.Collection` and
:class:`imgfind.client.RemoteCollection` satisfy (mypy checks it: see the end
of ``client.py``), so code written against it runs in-process or over HTTP
unchanged. This module is light (no faiss, no ONNX Runtime): the HTTP client
imports it without the engine.

>>> def tag_all(col: CollectionAPI, tag: str) -> None:               # doctest: +SKIP
...     for item in col.items(limit=1000):
...         col.set_metadata(item.id, {"tag": tag}, merge=True)
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np
from PIL import Image

from .errors import InvalidArgument, InvalidInput, SourceError, from_code
from .types import DuplicateGroup, Hit, IndexReport, Item, Result

if TYPE_CHECKING:
    from . import sources
    from .query import ListSort, Mode, Query, Sort
    from .review import ResolveReport

#: What an image argument may be: a path, an http(s) URL, raw bytes or a PIL image.
ImageLike = str | Path | bytes | Image.Image
#: What a query may be: an ImageLike, a text string, or a vector.
QueryLike = str | Path | bytes | Image.Image | np.ndarray

DEFAULT_COLLECTION = "default"

_C = TypeVar("_C", bound=type)


@runtime_checkable
class CollectionAPI(Protocol):
    """A collection of images with one model, local or remote (see the module docstring).

    The methods mean what :class:`imgfind.Collection`'s docstrings say; the
    remote one raises the same typed errors. A change to either signature must
    change this too (``mypy src`` fails otherwise).
    """

    @property
    def name(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def dim(self) -> int: ...
    def __len__(self) -> int: ...

    def insert(self, image: ImageLike, metadata: dict[str, Any] | None = None,
               id: str | None = None, *, name: str | None = None,
               keep_duplicates: bool = False) -> str: ...
    def insert_batch(self, items: Iterable[ImageLike | dict[str, Any]], *,
                     keep_duplicates: bool = False) -> list[Result]: ...
    def update(self, id: str, image: ImageLike | None = None,
               metadata: dict[str, Any] | None = None, *, merge: bool = False,
               name: str | None = None) -> Item: ...
    def update_batch(self, items: Iterable[dict[str, Any]]) -> list[Result]: ...
    def set_metadata(self, id: str, metadata: dict[str, Any], *,
                     merge: bool = False) -> Item: ...
    def delete(self, id: str) -> None: ...
    def delete_batch(self, ids: Sequence[str]) -> list[Result]: ...
    def clear(self) -> int: ...
    def add(self, *targets: str | Path, recursive: bool = True, skip_duplicates: bool = True,
            remove_missing: bool = True, cancel: threading.Event | None = None
            ) -> IndexReport: ...

    def get(self, id: str) -> Item: ...
    def items(self, where: dict | None = None, limit: int = 100, offset: int = 0, *,
              sort: ListSort | None = None) -> list[Item]: ...
    def image(self, id: str) -> bytes: ...
    def thumbnail(self, id: str) -> bytes: ...
    def vector(self, id: str) -> np.ndarray: ...
    def count(self, where: dict | None = None) -> int: ...

    def search(self, query: QueryLike | Query | dict[str, Any] | None = None, k: int = 10,
               where: dict | None = None, *, like: str | Sequence[str] | None = None,
               positive: Sequence[Any] | None = None, negative: Sequence[Any] | None = None,
               weights: Sequence[float] | None = None, min_score: float | None = None,
               sort: Sort = "score", mode: Mode | None = None) -> list[Hit]: ...
    def search_batch(self, queries: Sequence[QueryLike | Query | dict[str, Any]], k: int = 10,
                     where: dict | None = None, *, min_score: float | None = None,
                     sort: Sort = "score", mode: Mode | None = None) -> list[list[Hit]]: ...
    def text_search(self, q: str, k: int = 10, where: dict | None = None, *,
                    sort: Sort = "score") -> list[Hit]: ...
    def duplicates(self, threshold: float = 0.95) -> list[DuplicateGroup]: ...
    def resolve_duplicates(self, groups: Sequence[Any] | None = None, *,
                           threshold: float = 0.95, tiers: Sequence[str] | None = None,
                           dry_run: bool = True, expect: int | None = None
                           ) -> ResolveReport: ...
    def check(self) -> dict[str, Any]: ...
    def rebuild(self) -> dict[str, Any]: ...


def typed_calls(cls: _C) -> _C:
    """Make every public method raise :class:`InvalidArgument` (a typed error that is still
    a ``TypeError``) for an argument it does not take, instead of Python's bare TypeError."""
    for name, fn in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(fn):
            continue
        setattr(cls, name, _bind_checked(fn))
    return cls


def _bind_checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TypeError:
            try:
                sig.bind(*args, **kwargs)
            except TypeError as e:  # the call itself was wrong, not something inside it
                raise InvalidArgument(f"{fn.__name__}(): {e}; see help({fn.__qualname__})"
                                      ) from None
            raise

    return call


@typed_calls
class SingleItemCalls:
    """``insert`` and ``update`` of one item in terms of the batch calls.

    Shared by :class:`Collection` and the HTTP client's collection, so both turn a
    failed item into the same typed error.
    """

    def insert_batch(self, items: Iterable[ImageLike | dict[str, Any]], *,
                     keep_duplicates: bool = False) -> list[Result]:
        raise NotImplementedError

    def update_batch(self, items: Iterable[dict[str, Any]]) -> list[Result]:
        raise NotImplementedError

    def get(self, id: str) -> Item:
        raise NotImplementedError

    def insert(self, image: ImageLike, metadata: dict[str, Any] | None = None,
               id: str | None = None, *, name: str | None = None,
               keep_duplicates: bool = False) -> str:
        """Embed and store one image; returns its id. Raises a typed error for bad input.

        Files are referenced in place; URLs, bytes and PIL images are stored.
        ``name`` is the file name to record (``file.name``; uploads have no
        other). The same bytes as a stored item return that item's id and store
        nothing, as ``index`` does, unless ``keep_duplicates`` (or a new ``id``
        is given).

        >>> col.insert("https://example.com/dog.jpg",
        ...            metadata={"breed": "labrador"})                 # doctest: +SKIP
        '3f9c0e1d2a4b5c6d'
        """
        result = self.insert_batch([{"image": image, "metadata": metadata, "id": id,
                                     "name": name}], keep_duplicates=keep_duplicates)[0]
        if result.error is not None:
            raise from_code(result.code, result.error)
        return result.id  # type: ignore[return-value]

    def update(self, id: str, image: ImageLike | None = None,
               metadata: dict[str, Any] | None = None, *, merge: bool = False,
               name: str | None = None) -> Item:
        """Replace an item's image and/or its user metadata (``merge=True`` merges keys);
        ``name`` names a new image as ``insert``'s does."""
        result = self.update_batch([{"id": id, "image": image, "metadata": metadata,
                                     "merge": merge, "name": name}])[0]
        if result.error is not None:
            raise from_code(result.code, result.error)
        return self.get(id)


def to_source(image: Any) -> sources.Source:
    """The :class:`~imgfind.sources.Source` for an image argument (path, URL, bytes, PIL);
    the library and the HTTP client read arguments the same way through this.

    >>> to_source(b"...").kind
    'bytes'
    >>> to_source("HTTPS://example.com/a.jpg").kind
    'url'
    """
    # sources (archives, zip, tar, csv) loads on first use: a text search never needs it
    from . import sources

    if image is None:
        raise InvalidInput("no image given")
    if isinstance(image, sources.Source):
        return image
    if isinstance(image, (bytes, bytearray)):
        data = bytes(image)
        return sources.Source(ref=f"upload:{hashlib.sha256(data).hexdigest()[:16]}",
                              kind="bytes", data=data)
    if isinstance(image, Image.Image):
        import io
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return to_source(buf.getvalue())
    if isinstance(image, str) and image[:8].lower().startswith(("http://", "https://")):
        return sources.Source(ref=image, kind="url")
    if isinstance(image, (str, Path)):
        path = Path(image).expanduser()
        if path.is_dir():
            raise SourceError(f"{path} is a directory, not an image file; index a folder "
                              "with add() / `imgfind index`")
        if not path.is_file():
            raise SourceError(f"no such file: {path}")
        return sources.Source(ref=str(path.resolve()), kind="file")
    raise InvalidInput(f"cannot read an image from a {type(image).__name__}")
