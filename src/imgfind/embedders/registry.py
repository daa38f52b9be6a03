"""Named model presets and their download from the Hugging Face hub.

Presets come from two publishers of ready-made ONNX CLIP exports, in the two
folder layouts ``onnx_clip`` reads: the Immich project (``immich-app/<name>``)
and Xenova's transformers.js exports (``Xenova/<name>``), which hold the only
public ONNX MobileCLIP. Any other Immich model name works too
(``load_embedder("ViT-B-32__laion2b-s34b-b79k")``), as does a full repo id
(``"someone/my-clip-onnx"``) in either layout.

Presets, small/fast to large/precise. Sources: ImageNet-1k zero-shot top-1 and
the average over open_clip's 38 zero-shot datasets: for the ViT models
open_clip's results table (``docs/openclip_results.csv``), for MobileCLIP
Apple's table in the ml-mobileclip README (DataCompDR-trained models, same 38
datasets). Params (image + text tower, millions) and image-tower GFLOPs per
image: open_clip's ``docs/model_profile.csv`` and the MobileCLIP README. Apple
publishes no FLOPs for MobileCLIP ("-"); it publishes image-tower latency on an
iPhone 12 Pro Max instead: S0 1.5 ms, S1 2.5, S2 3.6, B 10.4.

=================================  ===============  ====  ===  ============  ======  =====  =====
name                               repo              dim   px  params M      img GF  top-1  avg38
=================================  ===============  ====  ===  ============  ======  =====  =====
ViT-B-32__openai                   immich-app        512  224   88 +  63       8.8   63.3   52.5
ViT-B-32__laion2b-s34b-b79k        immich-app        512  224   88 +  63       8.8   66.6   56.9
MobileCLIP-S0__datacompdr          Xenova            512  256   11 +  42        -    67.8   58.1
MobileCLIP-S1__datacompdr          Xenova            512  256   22 +  63        -    72.6   61.3
MobileCLIP-S2__datacompdr (dflt)   Xenova            512  256   36 +  63        -    74.4   63.7
ViT-B-16__openai                   immich-app        512  224   86 +  63      35.1   68.3   56.3
ViT-B-16-SigLIP__webli             immich-app        768  224   93 + 110      35.4   76.0   62.3
MobileCLIP-B__datacompdr           Xenova            512  224   86 +  63        -    76.8   65.2
MobileCLIP-B__datacompdr_lt        Xenova            512  224   86 +  63        -    77.2   65.8
ViT-L-14__openai                   immich-app        768  224  304 + 124     162.0   75.5   61.7
ViT-SO400M-14-SigLIP-384__webli    immich-app       1152  384  428 + 450     670.4   83.1   69.2
=================================  ===============  ====  ===  ============  ======  =====  =====

Why ``MobileCLIP-S2__datacompdr`` is the default: it is the best quality for its
cost. Against ViT-B-16-SigLIP (the previous default) it gives up 1.6 points of
ImageNet top-1 (74.4 vs 76.0) but is better on the 38-dataset average, which
includes retrieval (63.7 vs 62.3), with an image tower of 36M instead of 93M
parameters, a text tower of 63M instead of 110M (Apple: the whole model 2.3x
faster and 2.1x smaller than SigLIP's ViT-B/16), and 512-d instead of 768-d
vectors (a third less memory and search work per image). Against models of
about its cost it is far ahead: +6 points
over ViT-B-16__openai (68.3), +8 to +11 over the ViT-B-32 models. Its tokenizer
is OpenAI CLIP's BPE, which the offline test suite checks token for token.
Pick ``MobileCLIP-S0__datacompdr`` when indexing speed matters most (slow CPUs,
huge folders: 67.8 top-1 from an 11M-parameter image tower),
``MobileCLIP-B__datacompdr_lt`` for the best results at ViT-B/16 cost, and
``ViT-SO400M-14-SigLIP-384__webli`` with a GPU for the best results overall.
The text tower only runs per query, so its size matters little.

Caveats, honestly stated: Apple's speed figures are from an iPhone (Core ML),
not from ONNX Runtime on a PC CPU, and no MobileCLIP weights could be run where
this was written (no hub access), so the CPU speed-up is not measured here;
the MobileCLIP models are Xenova's fp32 ONNX exports of Apple's checkpoints
(weights under Apple's sample-code licence, ``apple-ascl``). Only the fp32
towers are downloaded: the repos also hold int8/fp16 variants, but int8 image
towers of MobileCLIP are reported by several users to lose most of their
accuracy; ``imgfind.embedders.quantize`` makes an int8 copy locally for those
who measure it worth it. The top-1, avg38, params and GFLOPs figures were
checked against their sources (open_clip's CSVs, Apple's README) when this
table was written; dim and px of the Xenova rows were checked for S0, S2 and B
(S1 and B-LT are taken to match their siblings), and the loader reads both from
the files anyway.

>>> [m.name for m in list_models()][:2]
['ViT-B-32__openai', 'ViT-B-32__laion2b-s34b-b79k']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import InvalidInput, ModelUnavailable
from .layouts import IMMICH, LAYOUTS, TRANSFORMERS_JS, check_model_dir

DEFAULT_MODEL = "MobileCLIP-S2__datacompdr"

#: Only what the embedder reads, in either layout. Immich repos also hold RKNN/ArmNN
#: builds; Xenova repos int8/fp16 variants (onnx/*_quantized.onnx, *_fp16.onnx, ...).
_ALLOW = ["config.json", "visual/*", "textual/*",
          "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
          "special_tokens_map.json",
          "onnx/vision_model.onnx", "onnx/vision_model.onnx_data",
          "onnx/text_model.onnx", "onnx/text_model.onnx_data"]
_IGNORE = ["*/rknpu/*", "*/armnn/*", "*.armnn", "*.rknn", "*/openvino/*"]


@dataclass(frozen=True)
class ModelInfo:
    """A named model: where it comes from, what it costs, how good it is.

    >>> get_preset("MobileCLIP-S2__datacompdr").layout
    'transformers.js'
    """

    name: str
    repo: str
    #: folder layout of the repo: "immich" or "transformers.js"
    layout: str
    dim: int
    image_size: int
    #: image tower parameters, millions
    image_params_m: float
    #: text tower parameters, millions
    text_params_m: float
    #: image tower GFLOPs per image (the cost of indexing); None where unpublished
    image_gflops: float | None
    #: published ImageNet-1k zero-shot top-1, percent
    imagenet_top1: float
    #: published average zero-shot score over open_clip's 38 datasets, percent
    avg38: float
    #: published image-tower latency on an iPhone 12 Pro Max (Apple), ms; None where unpublished
    image_latency_ms: float | None = None
    notes: str = ""
    #: whether the model is in the local Hugging Face cache (``list_models`` fills it)
    cached: bool = False

    @property
    def params_m(self) -> float:
        """Text + image tower parameters, millions."""
        return round(self.image_params_m + self.text_params_m, 1)


def _immich(name: str, dim: int, px: int, img_m: float, txt_m: float, gflops: float,
            top1: float, avg38: float, notes: str) -> ModelInfo:
    return ModelInfo(name, f"immich-app/{name}", IMMICH.name, dim, px, img_m, txt_m, gflops,
                     top1, avg38, None, notes)


def _xenova(name: str, repo: str, dim: int, px: int, img_m: float, txt_m: float,
            top1: float, avg38: float, latency_ms: float, notes: str) -> ModelInfo:
    return ModelInfo(name, repo, TRANSFORMERS_JS.name, dim, px, img_m, txt_m, None, top1,
                     avg38, latency_ms, notes)


PRESETS: dict[str, ModelInfo] = {m.name: m for m in [
    _immich("ViT-B-32__openai", 512, 224, 87.85, 63.43, 8.82, 63.3, 52.5,
            "the original OpenAI CLIP"),
    _immich("ViT-B-32__laion2b-s34b-b79k", 512, 224, 87.85, 63.43, 8.82, 66.6, 56.9,
            "same cost as ViT-B-32__openai, better accuracy"),
    _xenova("MobileCLIP-S0__datacompdr", "Xenova/mobileclip_s0", 512, 256, 11.4, 42.4, 67.8,
            58.1, 1.5, "smallest image tower; ViT-B-16__openai quality"),
    _xenova("MobileCLIP-S1__datacompdr", "Xenova/mobileclip_s1", 512, 256, 21.5, 63.4, 72.6,
            61.3, 2.5, "between S0 and S2"),
    _xenova("MobileCLIP-S2__datacompdr", "Xenova/mobileclip_s2", 512, 256, 35.7, 63.4, 74.4,
            63.7, 3.6, "default: best quality for its cost"),
    _immich("ViT-B-16__openai", 512, 224, 86.19, 63.43, 35.13, 68.3, 56.3,
            "finer patches than B-32"),
    _immich("ViT-B-16-SigLIP__webli", 768, 224, 92.88, 110.27, 35.42, 76.0, 62.3,
            "strong ImageNet score for a B/16"),
    _xenova("MobileCLIP-B__datacompdr", "Xenova/mobileclip_b", 512, 224, 86.3, 63.4, 76.8,
            65.2, 10.4, "ViT-B/16 image tower"),
    _xenova("MobileCLIP-B__datacompdr_lt", "Xenova/mobileclip_blt", 512, 224, 86.3, 63.4,
            77.2, 65.8, 10.4, "MobileCLIP-B trained longer; best at ViT-B/16 cost"),
    _immich("ViT-L-14__openai", 768, 224, 303.97, 123.65, 162.03, 75.5, 61.7,
            "large OpenAI CLIP; slow on CPU"),
    _immich("ViT-SO400M-14-SigLIP-384__webli", 1152, 384, 428.23, 449.73, 670.35, 83.1, 69.2,
            "most precise; wants a GPU"),
]}


def get_preset(name: str) -> ModelInfo | None:
    """The preset called ``name`` (or whose repo is ``name``), else None."""
    if name in PRESETS:
        return PRESETS[name]
    return next((m for m in PRESETS.values() if m.repo == name), None)


#: A preset, an Immich model name or a hub ``owner/repo`` (the hub's own character set).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?")


def check_name(model: str) -> str:
    """``model`` stripped, or :class:`InvalidInput` for a name no hub repo can have
    (empty, a path such as ``../../x``, non-ASCII, over 96 characters a part).

    >>> check_name("../../x")
    Traceback (most recent call last):
    ...
    imgfind.errors.InvalidInput: '../../x' is not a model name: ...
    """
    if not isinstance(model, str) or not model.strip():
        raise InvalidInput("empty model name; pass a preset such as "
                           f"{DEFAULT_MODEL!r} or a folder with --model-path")
    model = model.strip()
    if not _NAME.fullmatch(model) or ".." in model:
        raise InvalidInput(
            f"{model!r} is not a model name: use a preset (imgfind models), an Immich model "
            "name or a hub repo id 'owner/name' (ASCII letters, digits, '.', '_', '-'), "
            "or a local folder with --model-path")
    return model


def resolve(model: str) -> tuple[str, str]:
    """``model`` (preset, its repo, Immich model name or ``owner/repo``) -> (name, hub repo id).

    >>> resolve("ViT-B-32__openai")
    ('ViT-B-32__openai', 'immich-app/ViT-B-32__openai')
    >>> resolve("Xenova/mobileclip_s2")
    ('MobileCLIP-S2__datacompdr', 'Xenova/mobileclip_s2')
    >>> resolve("someone/clip-onnx")
    ('someone/clip-onnx', 'someone/clip-onnx')
    """
    model = check_name(model)
    preset = get_preset(model)
    if preset:
        return preset.name, preset.repo
    if model.startswith("immich-app/"):
        return model.removeprefix("immich-app/"), model
    if "/" in model:
        return model, model
    return model, f"immich-app/{model}"


def is_cached(repo: str) -> bool:
    """Whether ``repo`` is in the local Hugging Face cache with both towers, in either layout.

    Looks at the cache only (no network).
    """
    from huggingface_hub import try_to_load_from_cache

    return any(all(isinstance(try_to_load_from_cache(repo, f), str)
                   for f in layout.required + layout.text_required)
               for layout in LAYOUTS)


def list_models() -> list[ModelInfo]:
    """The presets, small to large, with ``cached`` telling which are downloaded.

    >>> any(m.name == DEFAULT_MODEL for m in list_models())
    True
    """
    return [replace(m, cached=is_cached(m.repo)) for m in PRESETS.values()]


def _offline_message(name: str, repo: str, error: BaseException) -> str:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        why = "HF_HUB_OFFLINE is set"
    else:
        # huggingface_hub wraps the network error; its first line says what happened
        why = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return (f"model {name!r} is not in the local Hugging Face cache and could not be "
            f"downloaded from the hub ({repo}: {why}). Without network access, copy the "
            "model folder from a machine that has it and pass it with --model-path DIR "
            "or the IMGFIND_MODEL_PATH environment variable")


def fetch(model: str) -> tuple[str, Path]:
    """Find ``model`` in the Hugging Face cache or download it there; -> (name, folder).

    The cache is tried first without touching the network; a download shows
    huggingface_hub's progress bar.

    >>> name, folder = fetch("ViT-B-32__openai")     # doctest: +SKIP
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    name, repo = resolve(model)
    try:
        folder = snapshot_download(repo, allow_patterns=_ALLOW, ignore_patterns=_IGNORE,
                                   local_files_only=True)
        return name, check_model_dir(folder)
    except (LocalEntryNotFoundError, ModelUnavailable):
        pass  # not (fully) cached: download below
    try:
        folder = snapshot_download(repo, allow_patterns=_ALLOW, ignore_patterns=_IGNORE)
    except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError) as e:
        raise ModelUnavailable(
            f"no model {name!r} on the Hugging Face hub (looked for {repo}); use one of "
            f"{', '.join(PRESETS)}, another immich-app model name, a repo id in the Immich "
            "or transformers.js layout, or a local folder with "
            "--model-path DIR") from e
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as e:
        raise ModelUnavailable(_offline_message(name, repo, e)) from e
    except Exception as e:
        # httpx / connection errors surface under several classes across versions
        if type(e).__module__.split(".")[0] in ("httpx", "httpcore", "requests", "urllib3"):
            raise ModelUnavailable(_offline_message(name, repo, e)) from e
        raise
    return name, check_model_dir(folder)
