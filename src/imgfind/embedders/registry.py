"""Named model presets and their download from the Hugging Face hub.

Every preset is an ONNX export published by the Immich project as
``immich-app/<name>`` in the folder layout ``onnx_clip`` reads. Any other name
Immich publishes works too (``load_embedder("ViT-B-32__laion2b-s34b-b79k")``),
as does a full repo id (``"someone/my-clip-onnx"``) in the same layout.

Presets, small/fast to large/precise. ImageNet-1k zero-shot top-1 is the figure
published in open_clip's results table (``docs/openclip_results.csv``); params
(text + image towers) and image-tower GFLOPs per image from open_clip's model
profile; "~" marks a rounded figure.

===============================  =====  ====  ========  ==========  ======
name                              dim   px    params M  img GFLOPs  top-1
===============================  =====  ====  ========  ==========  ======
ViT-B-32__openai                   512   224     151        4.4      63.3
ViT-B-32__laion2b-s34b-b79k        512   224     151        4.4      66.6
ViT-B-16__openai                   512   224     150       17.6      68.3
ViT-B-16-SigLIP__webli  (default)  768   224     203      ~ 23       76.0
ViT-L-14__openai                   768   224     428       81.1      75.5
ViT-SO400M-14-SigLIP-384__webli   1152   384     878      ~ 670      83.1
===============================  =====  ====  ========  ==========  ======

Why ``ViT-B-16-SigLIP__webli`` is the default: it is the best quality for its
cost. It matches ViT-L-14 (76.0 vs 75.5 top-1) at under a third of its
compute, and beats the ViT-B-32 models by 10-13 points for ~5x the image
compute, which on a laptop CPU is still several images per second per core.
Pick ``ViT-B-32__openai`` when indexing speed matters most (slow CPUs, huge
folders), ``ViT-SO400M-14-SigLIP-384__webli`` with a GPU for the best results.
The text tower only runs per query, so its size matters little.

MobileCLIP is not offered: Immich publishes no MobileCLIP export, and the
hub's MobileCLIP checkpoints are PyTorch files that would need converting.

>>> [m.name for m in list_models()][:2]
['ViT-B-32__openai', 'ViT-B-32__laion2b-s34b-b79k']
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ModelUnavailable
from .onnx_clip import check_model_dir

DEFAULT_MODEL = "ViT-B-16-SigLIP__webli"

#: Only what the embedder reads; Immich repos also hold RKNN/ArmNN builds.
_ALLOW = ["config.json", "visual/*", "textual/*"]
_IGNORE = ["*/rknpu/*", "*/armnn/*", "*.armnn", "*.rknn", "*/openvino/*"]


@dataclass(frozen=True)
class ModelInfo:
    """A named model: where it comes from and what it costs.

    >>> get_preset("ViT-B-32__openai").dim
    512
    """

    name: str
    repo: str
    dim: int
    image_size: int
    #: text + image tower parameters, millions
    params_m: float
    #: image tower GFLOPs per image (the cost of indexing)
    image_gflops: float
    #: published ImageNet-1k zero-shot top-1, percent (open_clip results table)
    imagenet_top1: float
    notes: str = ""
    #: whether the model is in the local Hugging Face cache (``list_models`` fills it)
    cached: bool = False


PRESETS: dict[str, ModelInfo] = {m.name: m for m in [
    ModelInfo("ViT-B-32__openai", "immich-app/ViT-B-32__openai", 512, 224, 151.3, 4.4, 63.3,
              "fastest; the original OpenAI CLIP"),
    ModelInfo("ViT-B-32__laion2b-s34b-b79k", "immich-app/ViT-B-32__laion2b-s34b-b79k", 512, 224,
              151.3, 4.4, 66.6, "same cost as ViT-B-32__openai, better accuracy"),
    ModelInfo("ViT-B-16__openai", "immich-app/ViT-B-16__openai", 512, 224, 149.6, 17.6, 68.3,
              "finer patches than B-32"),
    ModelInfo("ViT-B-16-SigLIP__webli", "immich-app/ViT-B-16-SigLIP__webli", 768, 224, 203.2,
              23.0, 76.0, "default: best quality for its cost"),
    ModelInfo("ViT-L-14__openai", "immich-app/ViT-L-14__openai", 768, 224, 427.6, 81.1, 75.5,
              "large OpenAI CLIP; slow on CPU"),
    ModelInfo("ViT-SO400M-14-SigLIP-384__webli", "immich-app/ViT-SO400M-14-SigLIP-384__webli",
              1152, 384, 878.0, 670.0, 83.1, "most precise; wants a GPU"),
]}


def get_preset(name: str) -> ModelInfo | None:
    """The preset called ``name`` (or whose repo is ``name``), else None."""
    if name in PRESETS:
        return PRESETS[name]
    return next((m for m in PRESETS.values() if m.repo == name), None)


def resolve(model: str) -> tuple[str, str]:
    """``model`` (preset, Immich model name or ``owner/repo``) -> (name, hub repo id).

    >>> resolve("ViT-B-32__openai")
    ('ViT-B-32__openai', 'immich-app/ViT-B-32__openai')
    >>> resolve("someone/clip-onnx")
    ('someone/clip-onnx', 'someone/clip-onnx')
    """
    model = model.strip()
    if not model:
        raise ModelUnavailable("empty model name; pass a preset such as "
                               f"{DEFAULT_MODEL!r} or a folder with --model-path")
    preset = get_preset(model)
    if preset:
        return preset.name, preset.repo
    if model.startswith("immich-app/"):
        return model.removeprefix("immich-app/"), model
    if "/" in model:
        return model, model
    return model, f"immich-app/{model}"


def is_cached(repo: str) -> bool:
    """Whether both towers of ``repo`` are in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    return all(isinstance(try_to_load_from_cache(repo, f), str)
               for f in ("config.json", "visual/model.onnx", "textual/model.onnx"))


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
            f"{', '.join(PRESETS)}, another immich-app model name, or a local folder with "
            "--model-path DIR") from e
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as e:
        raise ModelUnavailable(_offline_message(name, repo, e)) from e
    except Exception as e:
        # httpx / connection errors surface under several classes across versions
        if type(e).__module__.split(".")[0] in ("httpx", "httpcore", "requests", "urllib3"):
            raise ModelUnavailable(_offline_message(name, repo, e)) from e
        raise
    return name, check_model_dir(folder)
