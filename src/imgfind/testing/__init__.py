"""Random-weight CLIP models in the real folder layout, for tests and benchmarks.

No model weights can be downloaded where the tests run, so ``make_model``
builds a Hugging Face ``CLIPModel`` with random weights, exports its image and
text towers to ONNX and writes the same files an Immich hub repo holds
(see ``imgfind.embedders.onnx_clip``). The tokenizer is the real CLIP BPE
tokenizer (49408 tokens), built from ``bpe_simple_vocab_16e6.txt.gz``, the
vocabulary file open_clip ships. The random model is also saved with
``save_pretrained`` in ``reference/`` so tests can compare against transformers.

Needs the ``test`` extra (torch, transformers, onnx); runtime code never imports
this module.

>>> make_model("/tmp/tiny-clip")                      # doctest: +SKIP
PosixPath('/tmp/tiny-clip')

Command line: ``python -m imgfind.testing make-model DIR [--size tiny|vit-b-32]``.

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
    merges = [tuple(m.split()) for m in lines[1:1 + n_merges]]
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges  # type: ignore[misc]


def write_tokenizer(folder: Path) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json to ``folder``."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab()
    tok = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CONTEXT_LENGTH)
    tok.save_pretrained(folder)
    # Immich's textual/ folder has this file too; transformers 5 no longer writes it.
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2))


def _export(module: Any, example: Any, input_name: str, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: exact, and ~10x faster than the dynamo one for this.
        torch.onnx.export(module, (example,), str(path), input_names=[input_name],
                          output_names=["embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={input_name: {0: "batch"}, "embedding": {0: "batch"}})


def make_model(path: str | Path, size: str = "tiny", *, seed: int = 0,
               reference: bool = True) -> Path:
    """Write a random-weight CLIP model folder at ``path`` and return it.

    Reuses a folder this function already wrote with the same size and seed, so
    a cached folder costs nothing. ``tiny`` takes ~2 s; ``vit-b-32`` ~30 s and
    600 MB. With ``reference``, the transformers model is saved in ``reference/``.

    >>> make_model("/tmp/tiny-clip").joinpath("visual/model.onnx").is_file()   # doctest: +SKIP
    True
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; use one of {', '.join(SIZES)}")
    out = Path(path).expanduser()
    want = {"size": size, "seed": seed, "reference": reference}
    stamp = out / _STAMP
    if stamp.is_file():
        if json.loads(stamp.read_text()) == want:
            return out
        shutil.rmtree(out)  # one of ours, built with other settings
    elif out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not a test model folder; pass a new folder")
    out.mkdir(parents=True, exist_ok=True)

    import torch
    import torch.nn.functional as F
    from transformers import CLIPConfig, CLIPModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    spec = SIZES[size]
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(spec["text"], vocab_size=VOCAB_SIZE, max_position_embeddings=CONTEXT_LENGTH,
                         bos_token_id=49406, eos_token_id=49407, pad_token_id=49407),
        vision_config=dict(spec["vision"]),
        projection_dim=spec["embed_dim"],
    )
    model = CLIPModel(config).eval()

    class Visual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            out = self.model.get_image_features(pixel_values=image)
            out = out if isinstance(out, torch.Tensor) else out.pooler_output
            return F.normalize(out, dim=-1)

    class Textual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, text: torch.Tensor) -> torch.Tensor:
            out = self.model.get_text_features(input_ids=text.long())
            out = out if isinstance(out, torch.Tensor) else out.pooler_output
            return F.normalize(out, dim=-1)

    image_size = spec["vision"]["image_size"]
    # int32 ids and the names "image"/"text"/"embedding", as in Immich's exports
    _export(Visual(), torch.randn(2, 3, image_size, image_size), "image",
            out / "visual" / "model.onnx")
    _export(Textual(), torch.ones(2, CONTEXT_LENGTH, dtype=torch.int32), "text",
            out / "textual" / "model.onnx")

    v, t = spec["vision"], spec["text"]
    open_clip_config = {
        "name": f"imgfind-test-{size}",
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
    if reference:
        model.save_pretrained(out / "reference")
    stamp.write_text(json.dumps(want))
    return out
