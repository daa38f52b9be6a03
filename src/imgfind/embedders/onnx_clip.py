"""CLIP-family models (CLIP, OpenCLIP, SigLIP) run in ONNX Runtime.

Model folder layout
-------------------
imgfind reads the layout the Immich project publishes on the Hugging Face hub
(``immich-app/<model>``, e.g. ``immich-app/ViT-B-32__openai``), so those
checkpoints work without conversion::

    <model dir>/
      config.json                 open_clip model config: "embed_dim",
                                  "vision_cfg" {"image_size", ...},
                                  "text_cfg" {"context_length", "tokenizer_kwargs", ...};
                                  an optional "name" names the model
      visual/model.onnx           image tower: input "image" float32 (N, 3, H, W)
                                  -> (N, embed_dim)
      visual/preprocess_cfg.json  {"size": 224 | [224, 224], "mean": [r, g, b],
                                   "std": [r, g, b], "interpolation": "bicubic",
                                   "resize_mode": "shortest" | "squash"}
      textual/model.onnx          text tower: input "text" int32 (N, context_length)
                                  -> (N, embed_dim)
      textual/tokenizer.json      Hugging Face ``tokenizers`` file
      textual/tokenizer_config.json   names the "pad_token"
      textual/special_tokens_map.json (optional)

What is read from the files rather than assumed:

* input names and dtypes of both towers come from the ONNX sessions (int32 or
  int64 ids, float32 or float16 pixels; an ``attention_mask`` input is fed when
  a text tower has one);
* the batch axis: Immich exports have a fixed batch of 1, exports made by
  ``python -m imgfind.testing`` have a dynamic one; batches are split to fit;
* padding: ids are padded to ``text_cfg.context_length`` (77 for OpenAI CLIP,
  64 for SigLIP) with the ``pad_token`` of ``tokenizer_config.json``
  (``<|endoftext|>`` for OpenAI CLIP, ``<pad>`` for SigLIP) and truncated to the
  same length, keeping the end-of-text token;
* text cleaning: SigLIP configs set ``text_cfg.tokenizer_kwargs.clean =
  "canonicalize"`` (lower case, punctuation removed), as open_clip does;
* preprocessing: ``resize_mode`` "shortest" resizes the short side to ``size``
  and center-crops (OpenAI CLIP), "squash" resizes both sides (SigLIP); both
  with the configured Pillow interpolation, then RGB scaled to [0, 1] and
  normalized with mean/std.

Example::

    >>> emb = OnnxClipEmbedder("models/ViT-B-32__openai")     # doctest: +SKIP
    >>> emb.embed_texts(["a dog on a beach"]).shape            # doctest: +SKIP
    (1, 512)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import string
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InvalidInput, ModelUnavailable
from .base import l2_normalize

_RESAMPLING = {r.name.lower(): r for r in Image.Resampling}
_ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_REQUIRED = ("config.json", "visual/model.onnx", "visual/preprocess_cfg.json")
_TEXT_REQUIRED = ("textual/model.onnx", "textual/tokenizer.json")
# Hugging Face cache folders look like .../models--owner--name/snapshots/<commit>
_HF_CACHE_DIR = re.compile(r"^models--(?P<owner>[^/]+?)--(?P<name>.+)$")


class ClipPreprocessor:
    """Picklable image preprocessing: RGB PIL image -> float32 (3, size, size).

    Holds only plain settings, so it can be sent to worker processes.

    >>> pre = ClipPreprocessor(224, [0.5] * 3, [0.5] * 3)
    >>> pre(Image.new("RGB", (640, 480))).shape
    (3, 224, 224)
    """

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float],
                 interpolation: str = "bicubic", resize_mode: str = "shortest"):
        if interpolation.lower() not in _RESAMPLING:
            raise ModelUnavailable(f"unknown interpolation {interpolation!r} in preprocess_cfg.json;"
                                   f" use one of {sorted(_RESAMPLING)}")
        if resize_mode not in ("shortest", "squash"):
            raise ModelUnavailable(f"unsupported resize_mode {resize_mode!r} in "
                                   "preprocess_cfg.json; use 'shortest' or 'squash'")
        self.size = int(size)
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.interpolation = interpolation.lower()
        self.resize_mode = resize_mode

    def resize(self, image: Image.Image) -> Image.Image:
        """Resize (+ center crop) an RGB image to ``size`` x ``size`` uint8 pixels."""
        resample = _RESAMPLING[self.interpolation]
        size = self.size
        if self.resize_mode == "squash":
            return image.resize((size, size), resample=resample)
        w, h = image.size
        # Same arithmetic as Hugging Face / torchvision: short side -> size, long side truncated.
        if w <= h:
            new_w, new_h = size, int(size * h / w)
        else:
            new_w, new_h = int(size * w / h), size
        if (new_w, new_h) != (w, h):
            image = image.resize((new_w, new_h), resample=resample)
        left, top = (new_w - size) // 2, (new_h - size) // 2
        return image.crop((left, top, left + size, top + size))

    def __call__(self, image: Image.Image) -> np.ndarray:
        if image.mode != "RGB":
            image = image.convert("RGB")
        pixels = np.asarray(self.resize(image), dtype=np.float32) / np.float32(255.0)
        pixels = (pixels - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

    def __repr__(self) -> str:
        return (f"ClipPreprocessor(size={self.size}, interpolation={self.interpolation!r}, "
                f"resize_mode={self.resize_mode!r})")


def default_threads() -> int:
    """Cores this process may use (respects CPU affinity and container limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def available_providers() -> list[str]:
    """ONNX Runtime execution providers imgfind would use here, best first."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in have]


def name_for_folder(model_dir: Path, config: dict[str, Any]) -> str:
    """The model name recorded for a local folder.

    ``config["name"]`` when present; the hub repo for a Hugging Face cache snapshot
    (``immich-app/X`` -> ``X``); otherwise the folder's name.

    >>> name_for_folder(Path("/models/ViT-B-32__openai"), {})
    'ViT-B-32__openai'
    """
    if isinstance(config.get("name"), str) and config["name"]:
        return config["name"]
    if model_dir.parent.name == "snapshots":
        m = _HF_CACHE_DIR.match(model_dir.parent.parent.name)
        if m:
            owner, name = m["owner"], m["name"]
            return name if owner == "immich-app" else f"{owner}/{name}"
    return model_dir.name


def folder_name(model_dir: str | Path) -> str:
    """The name a model folder's embedder will have, without loading the model."""
    path = check_model_dir(model_dir, text=False).resolve()
    return name_for_folder(path, _read_json(path / "config.json"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelUnavailable(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict):
        raise ModelUnavailable(f"{path} is not a JSON object")
    return data


def check_model_dir(model_dir: str | Path, *, text: bool = True) -> Path:
    """Raise ModelUnavailable (naming what is missing) unless ``model_dir`` has the layout."""
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise ModelUnavailable(f"model folder {str(path)!r} does not exist; pass a folder in the "
                               "Immich CLIP layout (config.json, visual/, textual/)")
    missing = [f for f in _REQUIRED + (_TEXT_REQUIRED if text else ()) if not (path / f).is_file()]
    if missing:
        raise ModelUnavailable(f"model folder {str(path)!r} lacks {', '.join(missing)}; expected "
                               "the Immich CLIP layout (config.json, visual/model.onnx, "
                               "visual/preprocess_cfg.json, textual/model.onnx, "
                               "textual/tokenizer.json)")
    return path


class _Tower:
    """One ONNX session plus what was learned about its inputs."""

    def __init__(self, path: Path, threads: int, providers: list[str]):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as e:  # ORT raises its own untyped errors for bad files
            raise ModelUnavailable(f"ONNX Runtime cannot load {path}: {e}") from e
        self.inputs = self.session.get_inputs()
        first = self.inputs[0]
        self.dtype = _ONNX_DTYPES.get(first.type, np.float32)
        batch = first.shape[0] if first.shape else None
        # A fixed batch axis (Immich exports use 1) means inputs must be fed in that size.
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        out_shape = self.session.get_outputs()[0].shape
        self.out_dim = out_shape[-1] if out_shape and isinstance(out_shape[-1], int) else None

    def run(self, feeds: dict[str, np.ndarray], max_batch: int) -> np.ndarray:
        n = next(iter(feeds.values())).shape[0]
        step = self.fixed_batch or max(1, max_batch)
        outs = []
        for i in range(0, n, step):
            chunk = {k: v[i:i + step] for k, v in feeds.items()}
            outs.append(self.session.run(None, chunk)[0])
        return np.concatenate(outs, axis=0)


class OnnxClipEmbedder:
    """A CLIP-family model from a folder in the Immich layout (see the module docstring).

    The image tower loads at once; the text tower on the first ``embed_texts`` call,
    so indexing never pays for it.

    >>> emb = OnnxClipEmbedder("models/ViT-B-32__openai", threads=2)   # doctest: +SKIP
    >>> emb.embed_images([Image.open("cat.jpg")]).shape                 # doctest: +SKIP
    (1, 512)
    """

    supports_text = True

    def __init__(self, model_dir: str | Path, *, name: str | None = None,
                 threads: int | None = None, providers: Sequence[str] | None = None,
                 batch_size: int = 32):
        self.model_dir = check_model_dir(model_dir).resolve()
        self.config = _read_json(self.model_dir / "config.json")
        self.name = name or name_for_folder(self.model_dir, self.config)
        self.threads = int(threads) if threads else default_threads()
        self.batch_size = batch_size
        self._providers = list(providers) if providers else available_providers()

        pre = _read_json(self.model_dir / "visual" / "preprocess_cfg.json")
        size = pre.get("size", self.config.get("vision_cfg", {}).get("image_size", 224))
        size = size[0] if isinstance(size, (list, tuple)) else size
        try:
            self._preprocessor = ClipPreprocessor(
                int(size), pre["mean"], pre["std"], pre.get("interpolation", "bicubic"),
                # open_clip's default for configs written before resize_mode existed
                pre.get("resize_mode", "shortest"))
        except KeyError as e:
            raise ModelUnavailable(f"{self.model_dir / 'visual/preprocess_cfg.json'} lacks "
                                   f"{e.args[0]!r}") from e
        self.image_size = self._preprocessor.size

        self._visual = _Tower(self.model_dir / "visual" / "model.onnx", self.threads,
                              self._providers)
        dim = self.config.get("embed_dim") or self._visual.out_dim
        if not dim:
            raise ModelUnavailable(f"{self.model_dir / 'config.json'} lacks 'embed_dim'")
        self.dim = int(dim)

        text_cfg = self.config.get("text_cfg", {})
        self.context_length = int(text_cfg.get("context_length", 77))
        kwargs = text_cfg.get("tokenizer_kwargs") or {}
        self._canonicalize = kwargs.get("clean") == "canonicalize"
        self._text: _Tower | None = None
        self._tokenizer: Any = None
        self._text_lock = threading.Lock()

    # -- info -----------------------------------------------------------------
    @property
    def providers(self) -> list[str]:
        """Execution providers the image tower actually runs on."""
        return list(self._visual.session.get_providers())

    @property
    def device(self) -> str:
        """``"cuda"`` when the GPU provider is active, else ``"cpu"``."""
        return "cuda" if self.providers[0] == "CUDAExecutionProvider" else "cpu"

    def __repr__(self) -> str:
        return f"<OnnxClipEmbedder {self.name!r} dim={self.dim} device={self.device}>"

    # -- images ---------------------------------------------------------------
    def preprocessor(self) -> ClipPreprocessor:
        """Picklable callable for worker processes: PIL image -> (3, size, size) float32."""
        return self._preprocessor

    def embed_pixels(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, size, size) preprocessed pixels -> (N, dim) unit vectors."""
        batch = np.asarray(batch)
        expected = (3, self.image_size, self.image_size)
        if batch.ndim != 4 or batch.shape[1:] != expected:
            raise InvalidInput(f"pixels must have shape (N, {', '.join(map(str, expected))}); "
                               f"got {batch.shape}")
        if len(batch) == 0:
            return np.zeros((0, self.dim), np.float32)
        feeds = {self._visual.inputs[0].name: batch.astype(self._visual.dtype, copy=False)}
        return l2_normalize(self._visual.run(feeds, self.batch_size))

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Preprocess + embed; (N, dim) float32 unit vectors."""
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_pixels(np.stack([self._preprocessor(im) for im in images]))

    # -- text -----------------------------------------------------------------
    def _load_text(self) -> _Tower:
        with self._text_lock:
            if self._text is None:
                check_model_dir(self.model_dir, text=True)
                self._tokenizer = self._make_tokenizer()
                self._text = _Tower(self.model_dir / "textual" / "model.onnx", self.threads,
                                    self._providers)
            return self._text

    def _make_tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        folder = self.model_dir / "textual"
        try:
            tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as e:  # tokenizers raises a bare Exception on bad files
            raise ModelUnavailable(f"cannot read {folder / 'tokenizer.json'}: {e}") from e
        pad_token = None
        for fname in ("tokenizer_config.json", "special_tokens_map.json"):
            if (folder / fname).is_file():
                value = _read_json(folder / fname).get("pad_token")
                # special_tokens_map may hold {"content": "<pad>", ...}
                pad_token = value.get("content") if isinstance(value, dict) else value
                if pad_token:
                    break
        pad_id = tok.token_to_id(pad_token) if pad_token else None
        if pad_id is None:
            # open_clip pads with 0 when the tokenizer names no pad token
            pad_token, pad_id = tok.id_to_token(0), 0
        tok.enable_padding(length=self.context_length, pad_id=pad_id, pad_token=pad_token)
        tok.enable_truncation(max_length=self.context_length)
        return tok

    def tokenize(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> (N, context_length) token ids, padded and truncated like open_clip.

        >>> emb.tokenize(["a dog"])[0, :4]        # doctest: +SKIP
        array([49406,   320,  1929, 49407])
        """
        self._load_text()
        cleaned = []
        for t in texts:
            t = " ".join(t.split())
            cleaned.append(t.translate(_PUNCTUATION).lower() if self._canonicalize else t)
        return np.asarray([e.ids for e in self._tokenizer.encode_batch(cleaned)], np.int64)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) float32 unit vectors for ``texts``."""
        if isinstance(texts, str):
            raise InvalidInput("embed_texts takes a list of strings, not a single string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        tower = self._load_text()
        ids = self.tokenize(texts)
        feeds = {}
        for inp in tower.inputs:
            dtype = _ONNX_DTYPES.get(inp.type, np.int64)
            if inp.name == "attention_mask":
                feeds[inp.name] = (ids != self._tokenizer.padding["pad_id"]).astype(dtype)
            else:
                feeds[inp.name] = ids.astype(dtype)
        return l2_normalize(tower.run(feeds, self.batch_size))


def quantize(model_dir: str | Path, out_dir: str | Path) -> Path:
    """Write an int8 copy of a model folder: the image tower dynamically quantized.

    The text tower and settings are copied unchanged (queries are few; their
    precision matters more than their speed).

    >>> quantize("models/ViT-B-32__openai", "models/ViT-B-32__openai-int8")  # doctest: +SKIP
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = check_model_dir(model_dir)
    dst = Path(out_dir).expanduser()
    if dst.exists() and any(dst.iterdir()):
        raise InvalidInput(f"{str(dst)!r} is not empty; pass a new folder")
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("model.onnx*"))
    shutil.copytree(src / "textual", dst / "textual", dirs_exist_ok=True)
    config = _read_json(src / "config.json")
    config["name"] = f"{name_for_folder(src.resolve(), config)}-int8"
    (dst / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    quantize_dynamic(src / "visual" / "model.onnx", dst / "visual" / "model.onnx",
                     weight_type=QuantType.QInt8)
    return dst
