"""imgfind: self-hosted image search by example image, by text and by metadata.

>>> import imgfind
>>> lib = imgfind.open("~/.imgfind")                                     # doctest: +SKIP
>>> col = lib.create_collection("photos", model_path="models/ViT-B-32")  # doctest: +SKIP
>>> col.add("~/Pictures")                                                # doctest: +SKIP
>>> col.search("a dog running on a beach", k=5)                          # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

from .errors import ImgfindError
from .types import DuplicateGroup, Hit, IndexReport, Item, Result

if TYPE_CHECKING:
    from .api import Collection, Library, open
    from .client import Client
    from .interface import CollectionAPI

__all__ = [
    "Client",
    "Collection",
    "CollectionAPI",
    "DuplicateGroup",
    "Hit",
    "ImgfindError",
    "IndexReport",
    "Item",
    "Library",
    "Result",
    "open",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Imported on first use: the engine (faiss, stores) only by programs that use it,
    # so `import imgfind.client` stays light; the HTTP client (httpx) likewise; and
    # numpy, which the CLI configures before it loads (see imgfind.cli).
    if name == "CollectionAPI":
        from .interface import CollectionAPI
        return CollectionAPI
    if name in ("Collection", "Library", "open"):
        from . import api
        return getattr(api, name)
    if name == "Client":
        from .client import Client
        return Client
    raise AttributeError(f"module 'imgfind' has no attribute {name!r}")
