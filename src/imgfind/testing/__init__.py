"""Random-weight CLIP models in the real folder layout, for tests and benchmarks.

No model weights can be downloaded where the tests run, so ``make_model``
builds a Hugging Face ``CLIPModel`` with random weights, exports its image and
text towers to ONNX and writes the same files a hub repo holds, in either
layout ``imgfind.embedders.onnx_clip`` reads:

* ``layout="immich"`` (the default): like ``immich-app/<model>`` repos: 224 px,
  OpenAI CLIP normalization, bicubic, towers taking ``image`` / int32 ``text`` and
  returning unit vectors named ``embedding``;
* ``layout="transformers.js"``: like ``Xenova/mobileclip_s2`` for ``tiny`` (256 px,
  bilinear, no normalization: MobileCLIP's settings) and like
  ``Xenova/clip-vit-base-patch32`` for ``vit-b-32`` (224 px, bicubic, OpenAI CLIP
  normalization, so its speed is the real ViT-B/32's), ``preprocessor_config.json`` written by
  ``CLIPImageProcessor.save_pretrained``, pad token ``!`` (id 0) as in Xenova's
  MobileCLIP tokenizer config, towers taking ``pixel_values`` / int64
  ``input_ids`` + ``attention_mask`` and returning ``last_hidden_state`` first and
  the unnormalized ``image_embeds`` / ``text_embeds`` second, as Optimum exports do.

The tokenizer is the real CLIP BPE tokenizer (49408 tokens), built from
``bpe_simple_vocab_16e6.txt.gz``, the vocabulary file open_clip ships. The
random model is also saved with ``save_pretrained`` in ``reference/`` so tests
can compare against transformers.

Needs the ``test`` extra (torch, transformers, onnx); runtime code never imports
this module.

>>> make_model("/tmp/tiny-clip")                      # doctest: +SKIP
PosixPath('/tmp/tiny-clip')

Command line: ``python -m imgfind.testing make-model DIR [--size tiny|vit-b-32]
[--layout immich|transformers.js]``.

``bpe_simple_vocab_16e6.txt.gz`` comes from open_clip (and OpenAI CLIP) under
the MIT licence:

    Copyright (c) 2012-2021 Gabriel Ilharco, Mitchell Wortsman, Nicholas Carlini,
    Rohan Taori, Achal Dave, Vaishaal Shankar, John Miller, Hongseok Namkoong,
    Hannaneh Hajishirzi, Ali Farhadi, Ludwig Schmidt

    Permission is hereby granted, free of charge, to any person obtaining a copy
    of this software and associated documentation files (the "Software"), to deal
    in the Software without restriction, including without limitation the rights
    to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
    copies of the Software, and to permit persons to whom the Software is
    furnished to do so, subject to the following conditions: The above copyright
    notice and this permission notice shall be included in all copies or
    substantial portions of the Software. THE SOFTWARE IS PROVIDED "AS IS",
    WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
"""

from __future__ import annotations

import gzip
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

BPE_FILE = Path(__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
CONTEXT_LENGTH = 77
VOCAB_SIZE = 49408
MEAN = [0.48145466, 0.4578275, 0.40821073]  # OpenAI CLIP's normalization
STD = [0.26862954, 0.2613026, 0.2757771]
LAYOUTS = ("immich", "transformers.js")
#: MobileCLIP's input size (Xenova/mobileclip_s0..s2 preprocessor_config.json)
TRANSFORMERS_JS_IMAGE_SIZE = 256

#: transformers CLIPConfig arguments per size
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "text": {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2,
                 "num_attention_heads": 4},
        "vision": {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "image_size": 224, "patch_size": 32},
        "embed_dim": 64,
    },
    # The shapes of OpenAI's ViT-B/32, for realistic speed and memory measurements.
    "vit-b-32": {
        "text": {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
                 "num_attention_heads": 8},
        "vision": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                   "num_attention_heads": 12, "image_size": 224, "patch_size": 32},
        "embed_dim": 512,
    },
}
_STAMP = ".imgfind-test-model.json"


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level BPE alphabet: printable bytes map to themselves,
    # the rest to code points from 256 up, so every byte is a visible character.
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The CLIP BPE vocabulary (49408 tokens) and merges, built as OpenAI CLIP builds them.

    >>> vocab, merges = clip_vocab()
    >>> len(vocab), vocab["<|endoftext|>"]
    (49408, 49407)
    """
    lines = gzip.decompress(BPE_FILE.read_bytes()).decode("utf-8").split("\n")
    # First line is a version header. CLIP keeps the merges that fill its vocabulary:
    # 256 bytes + 256 word-final bytes + merges + 2 special tokens = 49408.
    n_merges = VOCAB_SIZE - 2 * 256 - 2
    merges = [(a, b) for a, b in (m.split() for m in lines[1:1 + n_merges])]
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_tokenizer(folder: Path, *, pad_token: str = "<|endoftext|>",
                    special_tokens_map: bool = True) -> None:
    """Write tokenizer.json and tokenizer_config.json (+ special_tokens_map.json) to ``folder``."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab()
    tok = CLIPTokenizer(vocab=vocab, merges=merges,  # type: ignore[arg-type]  # pairs are accepted
                        model_max_length=CONTEXT_LENGTH,
                        pad_token=pad_token)
    tok.save_pretrained(folder)
    if special_tokens_map:
        # Immich's textual/ folder has this file too; transformers 5 no longer writes it.
        special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                   "pad_token": pad_token, "unk_token": "<|endoftext|>"}
        (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))


def _export(module: Any, examples: tuple[Any, ...], input_names: list[str],
            output_names: list[str], path: Path, *, dynamic_sequence: bool = False) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    axes: dict[str, dict[int, str]] = {name: {0: "batch"} for name in input_names + output_names}
    if dynamic_sequence:  # as Optimum exports text towers: any sequence length
        for name in input_names:
            axes[name][1] = "sequence"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: exact, and ~10x faster than the dynamo one for this.
        torch.onnx.export(module, examples, str(path), input_names=input_names,
                          output_names=output_names, opset_version=17, dynamo=False,
                          dynamic_axes=axes)


def _settings(size: str, seed: int, reference: bool, layout: str,
              dim: int | None = None) -> dict[str, Any]:
    want: dict[str, Any] = {"size": size, "seed": seed, "reference": reference}
    if dim is not None:
        want["dim"] = dim
    if layout != "immich":
        want["layout"] = layout  # stamps written before layouts existed stay valid
        want["text_axes"] = "batch+sequence"
        want["pixels"] = "mobileclip" if size == "tiny" else "clip"
    return want


def is_current(path: str | Path, size: str = "tiny", *, seed: int = 0,
               reference: bool = True, layout: str = "immich", dim: int | None = None) -> bool:
    """Whether ``path`` holds the model ``make_model`` would write with these settings.

    Cheap (reads one small file, imports no torch), so callers can skip a build.
    """
    stamp = Path(path).expanduser() / _STAMP
    try:
        return bool(json.loads(stamp.read_text()) == _settings(size, seed, reference, layout,
                                                               dim))
    except (OSError, ValueError):
        return False


def make_model(path: str | Path, size: str = "tiny", *, seed: int = 0,
               reference: bool = True, layout: str = "immich", dim: int | None = None) -> Path:
    """Write a random-weight CLIP model folder at ``path`` and return it.

    ``layout`` is ``"immich"`` or ``"transformers.js"`` (see the module docstring).
    ``dim`` overrides the size's vector width (the model is then named
    ``imgfind-test-<size>-<dim>d``), e.g. for two models of different widths.
    Reuses a folder this function already wrote with the same settings, so a
    cached folder costs nothing. ``tiny`` takes ~2 s; ``vit-b-32`` ~30 s and
    600 MB. With ``reference``, the transformers model is saved in ``reference/``.

    >>> make_model("/tmp/tiny-clip").joinpath("visual/model.onnx").is_file()   # doctest: +SKIP
    True
    >>> make_model("/tmp/tiny-tjs", layout="transformers.js").joinpath(
    ...     "onnx/vision_model.onnx").is_file()                                  # doctest: +SKIP
    True
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; use one of {', '.join(SIZES)}")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    out = Path(path).expanduser()
    want = _settings(size, seed, reference, layout, dim)
    stamp = out / _STAMP
    if stamp.is_file():
        if is_current(out, size, seed=seed, reference=reference, layout=layout, dim=dim):
            return out
        shutil.rmtree(out)  # one of ours, built with other settings
    elif out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not a test model folder; pass a new folder")
    out.mkdir(parents=True, exist_ok=True)

    import torch
    from transformers import CLIPConfig, CLIPModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    spec = SIZES[size]
    if dim is not None:
        if not isinstance(dim, int) or dim < 2:
            raise ValueError(f"dim must be an integer >= 2, got {dim!r}")
        spec = {**spec, "embed_dim": dim}
    vision = dict(spec["vision"])
    mobileclip = layout == "transformers.js" and size == "tiny"
    if mobileclip:
        vision["image_size"] = TRANSFORMERS_JS_IMAGE_SIZE
    pad_token = "<|endoftext|>" if layout == "immich" else "!"
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(spec["text"], vocab_size=VOCAB_SIZE,
                         max_position_embeddings=CONTEXT_LENGTH,
                         bos_token_id=49406, eos_token_id=49407,
                         pad_token_id=clip_vocab()[0][pad_token]),
        vision_config=vision,
        projection_dim=spec["embed_dim"],
    )
    model = CLIPModel(config).eval()
    if layout == "immich":
        _write_immich(out, model, size, spec, vision["image_size"])
    else:
        _write_transformers_js(out, model, size, vision["image_size"], mobileclip)
    if reference:
        model.save_pretrained(out / "reference")
    stamp.write_text(json.dumps(want))
    return out


def _features(out: Any) -> Any:
    # transformers 5 returns a ModelOutput where 4.x returned the tensor
    return out if not hasattr(out, "pooler_output") else out.pooler_output


def _write_immich(out: Path, model: Any, size: str, spec: dict[str, Any],
                  image_size: int) -> None:
    import torch
    import torch.nn.functional as F

    class Visual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return F.normalize(_features(self.model.get_image_features(pixel_values=image)),
                               dim=-1)

    class Textual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, text: torch.Tensor) -> torch.Tensor:
            return F.normalize(_features(self.model.get_text_features(input_ids=text.long())),
                               dim=-1)

    # int32 ids and the names "image"/"text"/"embedding", as in Immich's exports
    _export(Visual(), (torch.randn(2, 3, image_size, image_size),), ["image"], ["embedding"],
            out / "visual" / "model.onnx")
    _export(Textual(), (torch.ones(2, CONTEXT_LENGTH, dtype=torch.int32),), ["text"],
            ["embedding"], out / "textual" / "model.onnx")

    v, t = spec["vision"], spec["text"]
    open_clip_config = {
        "name": f"imgfind-test-{size}" + (f"-{spec['embed_dim']}d"
                                          if spec["embed_dim"] != SIZES[size]["embed_dim"]
                                          else ""),
        "embed_dim": spec["embed_dim"],
        "vision_cfg": {"image_size": image_size, "layers": v["num_hidden_layers"],
                       "width": v["hidden_size"], "patch_size": v["patch_size"]},
        "text_cfg": {"context_length": CONTEXT_LENGTH, "vocab_size": VOCAB_SIZE,
                     "width": t["hidden_size"], "heads": t["num_attention_heads"],
                     "layers": t["num_hidden_layers"]},
    }
    (out / "config.json").write_text(json.dumps(open_clip_config, indent=2))
    preprocess = {"size": [image_size, image_size], "mode": "RGB", "mean": MEAN, "std": STD,
                  "interpolation": "bicubic", "resize_mode": "shortest", "fill_color": 0}
    (out / "visual" / "preprocess_cfg.json").write_text(json.dumps(preprocess, indent=2))
    write_tokenizer(out / "textual")


def _write_transformers_js(out: Path, model: Any, size: str, image_size: int,
                           mobileclip: bool) -> None:
    import torch
    from PIL import Image

    try:
        from transformers import CLIPImageProcessorPil as ImageProcessor
    except ImportError:  # transformers < 5: the PIL-based processor had the plain name
        from transformers import (  # type: ignore[assignment]
            CLIPImageProcessor as ImageProcessor,
        )

    class Vision(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            hidden = self.model.vision_model(pixel_values=pixel_values).last_hidden_state
            return hidden, _features(self.model.get_image_features(pixel_values=pixel_values))

    class Text(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor,
                    attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            hidden = self.model.text_model(input_ids=input_ids,
                                           attention_mask=attention_mask).last_hidden_state
            return hidden, _features(self.model.get_text_features(
                input_ids=input_ids, attention_mask=attention_mask))

    # Optimum's names and int64 ids; last_hidden_state first so a loader that
    # took the first output would get the wrong one
    _export(Vision(), (torch.randn(2, 3, image_size, image_size),), ["pixel_values"],
            ["last_hidden_state", "image_embeds"], out / "onnx" / "vision_model.onnx")
    ids = torch.ones(2, CONTEXT_LENGTH, dtype=torch.int64)
    _export(Text(), (ids, torch.ones_like(ids)), ["input_ids", "attention_mask"],
            ["last_hidden_state", "text_embeds"], out / "onnx" / "text_model.onnx",
            dynamic_sequence=True)

    # Xenova's MobileCLIP config.json is just {"model_type": "clip"}; "name" is ours.
    (out / "config.json").write_text(json.dumps(
        {"model_type": "clip", "name": f"imgfind-test-{size}-transformers-js"}, indent=2))
    resample = Image.Resampling.BILINEAR if mobileclip else Image.Resampling.BICUBIC
    ImageProcessor(
        do_resize=True, size={"shortest_edge": image_size}, resample=resample,
        do_center_crop=True, crop_size={"height": image_size, "width": image_size},
        do_rescale=True, rescale_factor=1 / 255, do_normalize=not mobileclip,
        image_mean=MEAN, image_std=STD, do_convert_rgb=True).save_pretrained(out)
    write_tokenizer(out, pad_token="!", special_tokens_map=False)
