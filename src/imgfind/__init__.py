"""imgfind: self-hosted image search by example image, by text and by metadata.

>>> import imgfind
>>> lib = imgfind.open("~/.imgfind")                                     # doctest: +SKIP
>>> col = lib.create_collection("photos", model_path="models/ViT-B-32")  # doctest: +SKIP
>>> col.add("~/Pictures")                                                # doctest: +SKIP
>>> col.search("a dog running on a beach", k=5)                          # doctest: +SKIP
"""

from .api import Collection, Library, open
from .errors import ImgfindError
from .types import DuplicateGroup, Hit, IndexReport, Item, Result

__all__ = [
    "Client",
    "Collection",
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


def __getattr__(name: str):
    # The HTTP client pulls in httpx; import it only when asked for.
    if name == "Client":
        from .client import Client
        return Client
    raise AttributeError(name)
