"""The one protocol every embedder follows.

Indexing splits embedding in two so decoding and preprocessing can run in
worker processes while the model runs in the main one:
``preprocessor()`` returns a picklable callable (PIL image -> float32 array)
and ``embed_pixels`` turns a stacked batch of those arrays into unit vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

Preprocessor = Callable[[Image.Image], np.ndarray]


@runtime_checkable
class Embedder(Protocol):
    #: identity recorded in a collection, e.g. ``"ViT-B-32__openai"`` or ``"phash"``
    name: str
    #: length of the vectors produced
    dim: int
    #: whether ``embed_texts`` works (CLIP family: yes; perceptual hash: no)
    supports_text: bool

    def preprocessor(self) -> Preprocessor:
        """A picklable callable: RGB PIL image -> float32 array ready for ``embed_pixels``."""
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
