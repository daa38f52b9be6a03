"""The one protocol every embedder follows.

Indexing splits embedding in two so decoding and preprocessing can run in
decode threads while the model embeds the previous batch:
``preprocessor()`` returns a picklable :class:`Preprocessor` and
``embed_pixels`` turns a stacked batch of its output into unit vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image


@runtime_checkable
class Preprocessor(Protocol):
    """Picklable image preprocessing, in two steps: per image, then per batch.

    ``pixels`` does the per-image work (resize, crop) and returns the smallest
    array that still holds everything the model needs (uint8 for CLIP: a quarter
    of float32's memory while it waits in the decode window, or goes to another
    process); ``finish`` turns a stacked batch of those into the model's input in
    one vectorized pass.
    ``pre(image)`` is ``pre.finish(pre.pixels(image)[None])[0]``.
    """

    def pixels(self, image: Image.Image) -> np.ndarray:
        """One image -> compact pixels (e.g. uint8 (S, S, 3))."""
        ...

    def pixels_and_preview(self, image: Image.Image,
                           side: int) -> tuple[np.ndarray, Image.Image]:
        """``pixels(image)``, plus the smallest picture made on the way that still
        shows the whole image at least ``side`` px long (``image`` itself if none):
        indexing makes the thumbnail from it, which is cheaper than from ``image``."""
        ...

    def finish(self, batch: np.ndarray) -> np.ndarray:
        """Stacked ``pixels`` outputs (N, ...) -> model input for ``embed_pixels``."""
        ...

    def __call__(self, image: Image.Image) -> np.ndarray:
        """One image -> model input, without the batch axis."""
        ...


@runtime_checkable
class Embedder(Protocol):
    #: identity recorded in a collection, e.g. ``"ViT-B-32__openai"`` or ``"phash"``
    name: str
    #: length of the vectors produced
    dim: int
    #: whether ``embed_texts`` works (CLIP family: yes; perceptual hash: no)
    supports_text: bool

    def preprocessor(self) -> Preprocessor:
        """The picklable preprocessing whose ``finish`` output ``embed_pixels`` takes."""
        ...

    def embed_pixels(self, batch: np.ndarray) -> np.ndarray:
        """Stacked preprocessed images (N, ...) -> (N, dim) float32, L2-normalized."""
        ...

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Convenience: preprocess + embed in one call; (N, dim) float32, L2-normalized."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) float32, L2-normalized. Raises InvalidInput when there is no text tower."""
        ...


def l2_normalize(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)
