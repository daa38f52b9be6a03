"""CLIP-family models (CLIP, OpenCLIP, SigLIP, MobileCLIP) run in ONNX Runtime.

Model folder layouts
--------------------
imgfind reads the two layouts public ONNX CLIP checkpoints come in, so those
checkpoints work without conversion. The layout is detected from the folder's
contents; both go through the same code, only the files read differ.

**Immich** (``immich-app/<model>`` hub repos, e.g. ``immich-app/ViT-B-32__openai``)::

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

**transformers.js / Optimum** (``Xenova/<model>`` hub repos, e.g.
``Xenova/mobileclip_s2``, ``Xenova/clip-vit-base-patch32``)::

    <model dir>/
      config.json                 Hugging Face model config ("model_type", optional
                                  "projection_dim"); an optional "name" names the model
      preprocessor_config.json    Hugging Face image processor settings: "size"
                                  ({"shortest_edge"} or {"height", "width"}),
                                  "crop_size", "do_center_crop", "do_rescale",
                                  "rescale_factor", "do_normalize", "image_mean",
                                  "image_std", "resample" (a Pillow filter number)
      tokenizer.json              Hugging Face ``tokenizers`` file
      tokenizer_config.json       "pad_token", "model_max_length" (the context length)
      onnx/vision_model.onnx      image tower: input "pixel_values" -> output
                                  "image_embeds" (or "pooler_output" for SigLIP)
      onnx/text_model.onnx        text tower: input "input_ids" (+ "attention_mask")
                                  -> "text_embeds" (or "pooler_output")

What is read from the files rather than assumed:

* input names and dtypes of both towers come from the ONNX sessions (int32 or
  int64 ids, float32 or float16 pixels; an ``attention_mask`` input is fed when
  a text tower has one);
* the output: one named ``*_embeds``, else ``pooler_output``, else the first
  two-dimensional one (transformers.js towers also output ``last_hidden_state``);
  vectors are L2-normalized here, so unnormalized outputs are fine;
* the batch axis: Immich exports have a fixed batch of 1, exports made by
  ``python -m imgfind.testing`` have a dynamic one; batches are split to fit;
* padding: ids are padded to the context length (Immich: ``text_cfg.context_length``,
  transformers.js: ``model_max_length``, or a text tower's fixed sequence axis;
  77 for CLIP and MobileCLIP, 64 for SigLIP) with the ``pad_token`` of
  ``tokenizer_config.json`` (``<|endoftext|>`` for OpenAI CLIP, ``!`` (id 0) for
  MobileCLIP, ``<pad>`` for SigLIP) and truncated to the same length, keeping the
  end-of-text token;
* text cleaning: SigLIP lower-cases and strips punctuation (open_clip's
  "canonicalize"), set by ``text_cfg.tokenizer_kwargs.clean`` in Immich configs and
  by ``model_type: siglip`` in Hugging Face ones;
* preprocessing: "shortest" resizes the short side and center-crops (CLIP,
  MobileCLIP), "squash" resizes both sides (SigLIP); both with the configured
  Pillow filter, then pixels rescaled (1/255) and, when the model wants it,
  normalized with mean/std (MobileCLIP does not normalize).

Example::

    >>> emb = OnnxClipEmbedder("models/ViT-B-32__openai")     # doctest: +SKIP
    >>> emb.embed_texts(["a dog on a beach"]).shape            # doctest: +SKIP
    (1, 512)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import string
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InvalidInput, ModelMismatch, ModelUnavailable
from . import ort_sessions, text_trim
from .base import l2_normalize
from .coalesce import Coalescer
from .layouts import IMMICH, check_model_dir, detect_layout
from .preprocess import ClipPreprocessor, preprocessor_from_hf, preprocessor_from_immich
from .registry import get_preset
from .split_runs import SplitRuns, run_in_steps
from .text_cache import DEFAULT_SIZE as DEFAULT_CACHE_SIZE
from .text_cache import TextVectorCache

log = logging.getLogger(__name__)
_ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}
_PUNCTUATION = str.maketrans("", "", string.punctuation)
# Hugging Face cache folders look like .../models--owner--name/snapshots/<commit>
_HF_CACHE_DIR = re.compile(r"^models--(?P<owner>[^/]+?)--(?P<name>.+)$")
# tokenizer_config.json says "no limit" with a huge model_max_length (int(1e30))
_MAX_SANE_CONTEXT = 100_000


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

    ``config["name"]`` when present; for a Hugging Face cache snapshot, the name of
    the preset with that repo, else the repo (``immich-app/X`` -> ``X``); otherwise
    the folder's name. So a model loaded by preset name and the same download
    passed as a folder record the same name in a collection.

    >>> name_for_folder(Path("/models/ViT-B-32__openai"), {})
    'ViT-B-32__openai'
    >>> name_for_folder(Path("/hf/models--Xenova--mobileclip_s2/snapshots/abc"), {})
    'MobileCLIP-S2__datacompdr'
    """
    if isinstance(config.get("name"), str) and config["name"]:
        return config["name"]
    if model_dir.parent.name == "snapshots":
        m = _HF_CACHE_DIR.match(model_dir.parent.parent.name)
        if m:
            owner, name = m["owner"], m["name"]
            preset = get_preset(f"{owner}/{name}")
            if preset:
                return preset.name
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


def _pick_output(outputs: Sequence[Any]) -> Any:
    """The embedding among a tower's outputs (see the module docstring)."""
    def rank(out: Any) -> int:
        if out.name.endswith("_embeds"):
            return 0
        if out.name == "pooler_output":
            return 1
        return 2 if out.shape is not None and len(out.shape) == 2 else 3
    return min(outputs, key=rank)  # min keeps the first of equals


class _Tower:
    """One ONNX session plus what was learned about its inputs and outputs.

    ``cache_optimized`` loads through :func:`ort_sessions.open_session` (a cached
    optimized copy with memory-mapped weights); ``prepack=False`` skips pre-packing
    the weights there, for a fast first load (see ``OnnxClipEmbedder.embed_texts``).
    ``spin``: idle intra-op threads spin instead of sleeping. Off by default: concurrent
    text queries (a server's) and other work share the cores, and spinning threads burn
    the CPU they need (8 concurrent queries on 2 busy cores: 58 -> 92 q/s without it).
    """

    def __init__(self, path: Path, threads: int, providers: list[str], *, spin: bool = False,
                 cache_optimized: bool = False, prepack: bool = True, split: bool = False,
                 on_start: Callable[[], None] | None = None):
        import onnxruntime as ort

        #: the graph this tower was asked to load (``path`` may be its cached copy)
        self.source = path
        self.prepacked = prepack or not cache_optimized

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            if cache_optimized:
                self.session, self.path = ort_sessions.open_session(
                    path, opts, providers, prepack=prepack, on_start=on_start)
            else:
                if on_start is not None:
                    on_start()
                self.session = ort.InferenceSession(str(path), sess_options=opts,
                                                    providers=providers)
                self.path = path
        except Exception as e:  # ORT raises its own untyped errors for bad files
            raise ModelUnavailable(f"ONNX Runtime cannot load {path}: {e}") from e
        self.inputs = self.session.get_inputs()
        first = self.inputs[0]
        self.dtype = _ONNX_DTYPES.get(first.type, np.float32)
        shape = first.shape or []
        batch = shape[0] if shape else None
        # A fixed batch axis (Immich exports use 1) means inputs must be fed in that size.
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        #: a fixed second axis (a text tower's sequence length), if any
        self.fixed_length = shape[1] if len(shape) > 1 and isinstance(shape[1], int) else None
        self.output = _pick_output(self.session.get_outputs())
        out_shape = self.output.shape
        self.out_dim = out_shape[-1] if out_shape and isinstance(out_shape[-1], int) else None
        #: big batches as one single-threaded run per core (see split_runs); CPU only
        self.split: SplitRuns | None = None
        if split and threads > 1 and self.session.get_providers()[0] == "CPUExecutionProvider":
            def one_thread() -> Any:
                opts.intra_op_num_threads = 1
                return ort.InferenceSession(str(self.path), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
            self.split = SplitRuns(threads, one_thread)

    def run(self, feeds: dict[str, np.ndarray], max_batch: int) -> np.ndarray:
        n = next(iter(feeds.values())).shape[0]
        step = self.fixed_batch or max(1, max_batch)
        if self.split is not None and self.split.parts_for(n) > 1:
            return self.split.run(self.output.name, feeds, step)
        return run_in_steps(self.session, self.output.name, feeds, step)


class OnnxClipEmbedder:
    """A CLIP-family model from a folder in the Immich or transformers.js layout.

    See the module docstring for the layouts. Each tower loads on first use, so
    indexing never pays for the text tower and a text query never loads the image tower.
    ``text_cache``: how many recent query texts keep their vectors (0: none).

    >>> emb = OnnxClipEmbedder("models/ViT-B-32__openai", threads=2)   # doctest: +SKIP
    >>> emb.embed_images([Image.open("cat.jpg")]).shape                 # doctest: +SKIP
    (1, 512)
    """

    supports_text = True

    def __init__(self, model_dir: str | Path, *, name: str | None = None,
                 threads: int | None = None, providers: Sequence[str] | None = None,
                 batch_size: int = 32, dim: int | None = None,
                 text_cache: int = DEFAULT_CACHE_SIZE):
        self.model_dir = check_model_dir(model_dir).resolve()
        self.layout = detect_layout(self.model_dir)
        self.config = _read_json(self.model_dir / "config.json")
        self.name = name or name_for_folder(self.model_dir, self.config)
        self.threads = int(threads) if threads else default_threads()
        self.batch_size = batch_size
        self._providers = list(providers) if providers else available_providers()

        pre_path = self.model_dir / self.layout.preprocess
        if self.layout is IMMICH:
            self._preprocessor = preprocessor_from_immich(_read_json(pre_path), self.config,
                                                          pre_path)
        else:
            self._preprocessor = preprocessor_from_hf(_read_json(pre_path), pre_path)
        self.image_size = self._preprocessor.output_size

        # Towers load on first use: a text query never pays for the image tower.
        self._visual_tower: _Tower | None = None
        self._visual_lock = threading.Lock()
        # ``dim`` is a hint from a collection that already knows its vectors' width:
        # it spares loading the image tower just to learn it (every output is checked).
        dim = self.config.get("embed_dim") or self.config.get("projection_dim") or dim
        if not dim:
            dim = self._visual.out_dim
        if not dim:
            # Neither the config nor the export says: ask the model once.
            blank = np.zeros((1, 3, self.image_size, self.image_size), np.float32)
            dim = self._visual.run({self._visual.inputs[0].name: blank.astype(
                self._visual.dtype)}, 1).shape[-1]
        self.dim = int(dim)

        self.context_length, self._canonicalize = self._text_settings()
        self._text: _Tower | None = None
        self._text_queries = 0
        #: the background proof started by the second query (see _decide_trim)
        self._deciding: threading.Thread | None = None
        #: the background load of a pre-packed text session (see _prepack_text)
        self._packing: threading.Thread | None = None
        self._raw_tokenizer: Any = None
        self._tokenizer_lock = threading.Lock()
        #: whether padding may be dropped: None until decided (see _trimming_is_exact)
        self._trim: bool | None = False
        self._tokenizer: Any = None
        self._text_lock = threading.RLock()  # _load_text re-enters via _encode
        #: vectors of the last ``text_cache`` texts queried (0: none; see text_cache)
        self.text_cache = TextVectorCache(text_cache)
        #: concurrent queries' texts share tower runs (see coalesce)
        self._text_runs: Coalescer[str] = Coalescer(self._run_texts)

    def _text_settings(self) -> tuple[int, bool]:
        """(context length, whether to canonicalize texts) from the folder's settings."""
        if self.layout is IMMICH:
            text_cfg = self.config.get("text_cfg", {})
            kwargs = text_cfg.get("tokenizer_kwargs") or {}
            return int(text_cfg.get("context_length", 77)), kwargs.get("clean") == "canonicalize"
        tok_cfg_path = self.model_dir / self.layout.tokenizer_dir / "tokenizer_config.json"
        tok_cfg = _read_json(tok_cfg_path) if tok_cfg_path.is_file() else {}
        length = tok_cfg.get("model_max_length")
        if not isinstance(length, int) or not 0 < length < _MAX_SANE_CONTEXT:
            length = 77
        # SigLIP was trained on lower-cased text without punctuation (open_clip canonicalizes)
        siglip = str(self.config.get("model_type", "")).startswith("siglip")
        return length, siglip

    @property
    def _visual(self) -> _Tower:
        with self._visual_lock:
            if self._visual_tower is None:
                # Waiting ORT threads sleep instead of spinning: indexing runs
                # decode threads on the same cores, and spinning burns the CPU
                # they need (batch throughput alone is the same either way).
                self._visual_tower = _Tower(self.model_dir / self.layout.image_model,
                                            self.threads, self._providers, spin=False,
                                            split=True)
            return self._visual_tower

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
        return (f"<OnnxClipEmbedder {self.name!r} dim={self.dim} layout={self.layout.name} "
                f"device={self.device}>")

    # -- images ---------------------------------------------------------------
    def preprocessor(self) -> ClipPreprocessor:
        """The two-step, picklable preprocessing (see ``base.Preprocessor``).

        ``pre(image)`` gives one (3, size, size) float32 input; indexing calls
        ``pre.pixels`` per image and ``pre.finish`` per batch.
        """
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
        return self._checked(l2_normalize(self._visual.run(feeds, self.batch_size)))

    def _checked(self, vectors: np.ndarray) -> np.ndarray:
        if vectors.shape[-1] != self.dim:
            raise ModelMismatch(f"model {self.name!r} produced {vectors.shape[-1]}-d vectors, "
                                f"expected {self.dim}-d; is this the collection's model folder?")
        return vectors

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Preprocess + embed; (N, dim) float32 unit vectors."""
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        pre = self._preprocessor
        return self.embed_pixels(pre.finish(np.stack([pre.pixels(im) for im in images])))

    # -- text -----------------------------------------------------------------
    def _load_text(self, on_start: Callable[[], None] | None = None) -> _Tower:
        """The text tower, loaded on first use; ``on_start`` is called once ONNX Runtime
        takes over the load (see warm_text)."""
        if self._text is not None:  # no lock: the proof may hold it for seconds
            return self._text
        with self._text_lock:
            if self._text is None:
                check_model_dir(self.model_dir, text=True)
                path = self.model_dir / self.layout.text_model
                # A verdict cached by an earlier process (see text_trim) settles trimming
                # now, so even a one-off query runs at its own length.
                verdict = text_trim.TrimCache(path).load()
                # Not pre-packed: loads in a fraction of the time, which a one-off query
                # needs; the second query swaps in a pre-packed session (see embed_texts).
                if verdict is not None and verdict.graph is not None:
                    tower = _Tower(verdict.graph, self.threads, self._providers,
                                   cache_optimized=True, prepack=False, on_start=on_start)
                    self.context_length = verdict.fixed_length or self.context_length
                else:
                    tower = _Tower(path, self.threads, self._providers, cache_optimized=True,
                                   prepack=False, on_start=on_start)
                    # A tower exported for one sequence length only takes that length.
                    if tower.fixed_length:
                        self.context_length = tower.fixed_length
                    if verdict is not None and verdict.exact and tower.fixed_length:
                        verdict = None  # a fixed tower's rewritten graph is gone: prove again
                self._tokenizer = self._make_tokenizer()
                self._text = tower
                # Without a verdict, decided on the second query: a one-off query skips it.
                self._trim = verdict.exact if verdict is not None else None
            return self._text

    def warm_text(self) -> threading.Thread | None:
        """Start loading the text tower in the background (ONNX Runtime releases the
        GIL), so a caller can open its index meanwhile; join the thread to wait.
        None when it is loaded already."""
        if self._text is not None:
            return None
        in_ort = threading.Event()

        def load() -> None:
            try:
                with contextlib.suppress(Exception):  # the caller's own load raises it again
                    self._load_text(on_start=in_ort.set)
            finally:
                in_ort.set()

        thread = threading.Thread(target=load, name="imgfind-text-warm", daemon=True)
        thread.start()
        # Parsing the tokenizer holds the GIL: first let the loader reach ONNX Runtime
        # (which releases it), so the two run side by side.
        in_ort.wait(timeout=5)
        with contextlib.suppress(Exception):
            self._read_tokenizer()
        return thread

    def _decide_trim(self) -> None:
        try:
            exact = self._trimming_is_exact()
        except Exception:  # a failed proof must never fail the queries: keep full length
            log.exception("text tower trim probe failed; queries keep their full length")
            exact = False
        self._trim = exact

    def _trimming_is_exact(self) -> bool:
        """Whether the tower may run at the query's token length (see ``text_trim``);
        a fixed-length tower proven exact is swapped for its rewritten graph."""
        original = self._load_text()
        path = self.model_dir / self.layout.text_model
        rewritten: list[_Tower] = []

        def load_rewritten(graph: Path) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
            tower = _Tower(graph, self.threads, self._providers)
            if tower.fixed_length is not None:
                raise ValueError("the rewritten graph still has a fixed sequence axis")
            rewritten.append(tower)
            return lambda ids, mask: self._run_text(ids, mask, tower)

        verdict = text_trim.decide(path, original.fixed_length, self._encode,
                                   lambda ids, mask: self._run_text(ids, mask, original),
                                   load_rewritten)
        if verdict.exact and rewritten:
            with self._text_lock:  # (a pre-packing swap checks the tower under it)
                self._text = rewritten[0]
        return verdict.exact

    def _prepack_text(self) -> None:
        """Swap the text tower for a session of the same graph with pre-packed weights:
        slower to load, faster per query (~2x for a short query on the CPU)."""
        old = self._text
        if old is None or old.prepacked:
            return
        try:
            tower = _Tower(old.source, self.threads, self._providers, cache_optimized=True)
        except Exception:  # the loaded tower keeps answering
            log.exception("loading a pre-packed text tower failed; keeping the loaded one")
            return
        with self._text_lock:
            if self._text is old:  # not replaced meanwhile (e.g. by a rewritten graph)
                self._text = tower

    def _run_text(self, ids: np.ndarray, mask: np.ndarray,
                  tower: _Tower | None = None) -> np.ndarray:
        tower = tower or self._load_text()
        feeds = {}
        for inp in tower.inputs:
            dtype = _ONNX_DTYPES.get(inp.type, np.int64)
            feeds[inp.name] = (mask if inp.name == "attention_mask" else ids).astype(dtype)
        return self._checked(l2_normalize(tower.run(feeds, self.batch_size)))

    def _read_tokenizer(self) -> Any:
        """The parsed tokenizer.json (once); padding is set up by ``_make_tokenizer``."""
        from tokenizers import Tokenizer

        with self._tokenizer_lock:
            if self._raw_tokenizer is None:
                path = self.model_dir / self.layout.tokenizer_dir / "tokenizer.json"
                try:
                    self._raw_tokenizer = Tokenizer.from_file(str(path))
                except Exception as e:  # tokenizers raises a bare Exception on bad files
                    raise ModelUnavailable(f"cannot read {path}: {e}") from e
            return self._raw_tokenizer

    def _make_tokenizer(self) -> Any:
        folder = self.model_dir / self.layout.tokenizer_dir
        tok = self._read_tokenizer()
        pad_token = None
        for fname in ("tokenizer_config.json", "special_tokens_map.json"):
            if (folder / fname).is_file():
                value = _read_json(folder / fname).get("pad_token")
                # either file may hold {"content": "<pad>", ...}
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

    def _clean(self, text: str) -> str:
        """A text as the tokenizer is given it: whitespace runs made one space, and
        canonicalized where the model wants it."""
        text = " ".join(text.split())
        return text.translate(_PUNCTUATION).lower() if self._canonicalize else text

    def _encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Texts -> (ids, attention mask), both (N, context_length) int64."""
        self._load_text()
        encodings = self._tokenizer.encode_batch([self._clean(t) for t in texts])
        # The tokenizer's own mask: CLIP pads with its end-of-text token, so a mask
        # computed as "id != pad id" would hide the real end-of-text token too.
        return (np.asarray([e.ids for e in encodings], np.int64),
                np.asarray([e.attention_mask for e in encodings], np.int64))

    def tokenize(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> (N, context_length) token ids, padded and truncated like open_clip.

        >>> emb.tokenize(["a dog"])[0, :4]        # doctest: +SKIP
        array([49406,   320,  1929, 49407])
        """
        return self._encode(texts)[0]

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) float32 unit vectors for ``texts``; texts met recently come from
        ``text_cache``, the others run through the text tower in one batch (shared
        with the texts of concurrent calls)."""
        if isinstance(texts, str):
            raise InvalidInput("embed_texts takes a list of strings, not a single string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        self._load_text()
        self._start_background_work()
        keys = [self._clean(t) for t in texts]
        cached = [self.text_cache.get(k) for k in keys]
        missing = list(dict.fromkeys(k for k, v in zip(keys, cached) if v is None))
        fresh = dict(zip(missing, self._text_runs(missing))) if missing else {}
        for k, v in fresh.items():
            self.text_cache.put(k, v)
        return np.stack([fresh[k] if v is None else v for k, v in zip(keys, cached)])

    def _start_background_work(self) -> None:
        """From the second query on (cached or not): the trim proof, then the pre-packed
        session, each in a thread beside the queries."""
        if self._trim is None and self._text_queries and self._deciding is None:
            with self._text_lock:
                if self._deciding is None:
                    # Beside the queries, not in front of one: they run at full length
                    # until the proof is done. Not a daemon: exit waits for it, once.
                    self._deciding = threading.Thread(target=self._decide_trim,
                                                      name="imgfind-text-trim")
                    self._deciding.start()
        if self._text_queries and self._trim is not None and self._packing is None \
                and not self._load_text().prepacked:
            with self._text_lock:
                if self._packing is None:
                    # After the trim verdict: a pending proof may replace the tower anyway.
                    # Not a daemon, like the proof: exit waits for it, once.
                    self._packing = threading.Thread(target=self._prepack_text,
                                                     name="imgfind-text-prepack")
                    self._packing.start()
        self._text_queries += 1

    def _run_texts(self, texts: list[str]) -> np.ndarray:
        ids, mask = self._encode(texts)
        if self._trim:
            n = int(mask.sum(axis=1).max())
            ids, mask = ids[:, :n], mask[:, :n]
        return self._run_text(ids, mask)
