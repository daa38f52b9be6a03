"""Embedders: ONNX CLIP-family models and a perceptual hash, behind one protocol.

>>> emb = load_embedder("phash")
>>> emb.name, emb.dim, emb.supports_text
('phash', 64, False)
"""

from __future__ import annotations

import os
from pathlib import Path

from .base import Embedder, l2_normalize
from .onnx_clip import ClipPreprocessor, OnnxClipEmbedder, detect_layout, folder_name
from .phash import PHashEmbedder
from .quantize import quantize
from .registry import DEFAULT_MODEL, PRESETS, ModelInfo, fetch, list_models, resolve

__all__ = [
    "DEFAULT_MODEL", "PRESETS", "ClipPreprocessor", "Embedder", "ModelInfo", "OnnxClipEmbedder",
    "PHashEmbedder", "detect_layout", "fetch", "folder_name", "l2_normalize", "list_models",
    "load_embedder", "quantize", "resolve",
]

MODEL_PATH_ENV = "IMGFIND_MODEL_PATH"


def load_embedder(model: str | None = None, *, model_path: str | Path | None = None,
                  threads: int | None = None, dim: int | None = None) -> Embedder:
    """Load an embedder.

    * ``model="phash"``: the perceptual hash (no weights, no text);
    * ``model_path``: a model folder in the Immich or the transformers.js layout
      (told apart by their files); its name is ``model`` when given, else the
      folder's config ``"name"``, else the folder's name;
    * the ``IMGFIND_MODEL_PATH`` environment variable: such a folder, used when
      ``model`` is None or is that folder's name;
    * otherwise ``model`` (default ``DEFAULT_MODEL``): a preset, an Immich model
      name or a hub repo id (either layout), from the Hugging Face cache or
      downloaded into it.

    ``threads`` sets ONNX Runtime's intra-op threads (default: every core).
    ``dim`` is the expected vector width when known (a collection's), which
    spares loading the image tower to learn it when the folder does not say.
    Raises ``ModelUnavailable`` when the model cannot be found or downloaded.

    >>> load_embedder("phash").name
    'phash'
    >>> load_embedder(model_path="models/tiny-clip").dim    # doctest: +SKIP
    64
    """
    if model == "phash":
        return PHashEmbedder()
    if model_path:
        return OnnxClipEmbedder(model_path, name=model, threads=threads, dim=dim)
    env_path = os.environ.get(MODEL_PATH_ENV)
    if env_path and (model is None or model == folder_name(env_path)):
        return OnnxClipEmbedder(env_path, threads=threads, dim=dim)
    name, folder = fetch(DEFAULT_MODEL if model is None else model)
    return OnnxClipEmbedder(folder, name=name, threads=threads, dim=dim)
