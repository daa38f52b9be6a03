"""Perceptual hash (pHash) as an embedder: weight-free, for duplicate finding.

The classic DCT pHash: grayscale, resize to 32x32 (Lanczos), 2-D DCT-II, keep
the 8x8 lowest frequencies, one bit per coefficient: above the block's median
or not. The 64 bits become a vector of +-1/8, a unit vector for which

    cosine(a, b) = 1 - 2 * hamming(a, b) / 64

so the same vector search that serves CLIP finds near-duplicates: identical,
resized and re-encoded copies of an image stay within a few bits.

>>> emb = PHashEmbedder()
>>> v = emb.embed_images([Image.new("RGB", (64, 48), "white")])
>>> v.shape, float(np.linalg.norm(v))
((1, 64), 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from ..errors import InvalidInput

HASH_SIZE = 8  # 8x8 = 64 bits
IMG_SIZE = 32  # DCT input, 4x the hash size as in the original pHash


def _dct_matrix(n: int) -> np.ndarray:
    # DCT-II basis; the missing constant factors scale every coefficient alike,
    # which a median comparison ignores.
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return np.cos(np.pi * k * (2 * i + 1) / (2 * n))


_DCT = _dct_matrix(IMG_SIZE)[:HASH_SIZE]  # only the low-frequency rows are needed


class PHashPreprocessor:
    """Picklable: PIL image -> (32, 32) float32 grayscale pixels.

    >>> PHashPreprocessor()(Image.new("RGB", (300, 200))).shape
    (32, 32)
    """

    def pixels(self, image: Image.Image) -> np.ndarray:
        """(32, 32) uint8 grayscale."""
        gray = image.convert("L").resize((IMG_SIZE, IMG_SIZE), Image.Resampling.LANCZOS)
        return np.asarray(gray, dtype=np.uint8)

    def pixels_and_preview(self, image: Image.Image,
                           side: int) -> tuple[np.ndarray, Image.Image]:
        """:meth:`pixels`, and ``image`` itself: 32 px is too small for any thumbnail."""
        return self.pixels(image), image

    def finish(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(batch, dtype=np.float32)

    def __call__(self, image: Image.Image) -> np.ndarray:
        return self.finish(self.pixels(image))

    def __repr__(self) -> str:
        return "PHashPreprocessor()"


def hash_bits(pixels: np.ndarray) -> np.ndarray:
    """(N, 32, 32) grayscale pixels -> (N, 64) booleans, the pHash bits."""
    x = np.asarray(pixels, dtype=np.float64)
    low = _DCT @ x @ _DCT.T  # (N, 8, 8): the lowest frequencies
    flat = low.reshape(len(x), -1)
    return flat > np.median(flat, axis=1, keepdims=True)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance(s) between pHash vectors made by ``PHashEmbedder``.

    >>> e = PHashEmbedder(); v = e.embed_images([Image.new("RGB", (8, 8))])
    >>> int(hamming(v[0], v[0]))
    0
    """
    return np.sum((np.asarray(a) > 0) != (np.asarray(b) > 0), axis=-1)


class PHashEmbedder:
    """64-bit DCT perceptual hash as a 64-d unit vector; no text.

    >>> PHashEmbedder().name, PHashEmbedder().dim
    ('phash', 64)
    """

    name = "phash"
    dim = HASH_SIZE * HASH_SIZE
    supports_text = False
    device = "cpu"
    #: no ONNX Runtime involved; for ``imgfind models``
    providers: tuple[str, ...] = ()
    #: only this many pixels are needed, so JPEGs may be decoded in draft mode
    image_size = IMG_SIZE

    def preprocessor(self) -> PHashPreprocessor:
        return PHashPreprocessor()

    def embed_pixels(self, batch: np.ndarray) -> np.ndarray:
        """(N, 32, 32) pixels from ``preprocessor()`` -> (N, 64) unit vectors."""
        batch = np.asarray(batch)
        if batch.ndim != 3 or batch.shape[1:] != (IMG_SIZE, IMG_SIZE):
            raise InvalidInput(f"pixels must have shape (N, {IMG_SIZE}, {IMG_SIZE}); "
                               f"got {batch.shape}")
        bits = hash_bits(batch)
        return np.where(bits, 1.0, -1.0).astype(np.float32) / np.float32(HASH_SIZE)

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        pre = PHashPreprocessor()
        return self.embed_pixels(pre.finish(np.stack([pre.pixels(im) for im in images])))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise InvalidInput("the 'phash' model has no text tower: search by image, or use a "
                           "collection with a CLIP model for text search")

    def __repr__(self) -> str:
        return "<PHashEmbedder 'phash' dim=64>"
