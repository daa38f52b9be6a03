"""Text towers run at the query's token length only where proven exact (embedders.text_trim).

The tiny Immich-layout model's text tower takes exactly 77 tokens, as Immich's exports do;
it is rewritten to a symbolic sequence axis, proven against the original, cached on disk
and reused by the next process. A tower the proof rejects keeps its full length.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from imgfind.embedders import text_trim
from imgfind.embedders.onnx_clip import OnnxClipEmbedder

TEXTS = ["dog", "a photo of a dog running on the beach",
         "a woman in a yellow raincoat walks two small dogs along a wet city street at night",
         "people at a market " * 30]  # longer than the context: truncated to 77


def fed_lengths(emb: OnnxClipEmbedder) -> list[int]:
    """Record the sequence length of every batch the text tower is given from now on."""
    seen: list[int] = []
    tower = emb._load_text()
    run = tower.session.run

    def spy(names, feeds, *a, **kw):  # type: ignore[no-untyped-def]
        seen.append(next(iter(feeds.values())).shape[1])
        return run(names, feeds, *a, **kw)

    tower.session.run = spy  # type: ignore[method-assign]
    return seen


def test_fixed_tower_rewritten_exact_and_reused(tiny_model_dir: Path, own_cache: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    emb = OnnxClipEmbedder(tiny_model_dir, threads=1, text_cache=0)  # every query runs
    reference = emb.embed_texts(TEXTS)  # first query: the original 77-token graph
    assert emb._text is not None and emb._text.fixed_length == 77 and emb._trim is None
    emb.embed_texts(["the second query starts the proof beside it"])
    assert emb._deciding is not None
    emb._deciding.join()
    assert emb._trim is True and emb._text.fixed_length is None  # rewritten graph in use
    seen = fed_lengths(emb)
    got = np.concatenate([emb.embed_texts([t]) for t in TEXTS])
    assert seen[:3] == [3, 11, 20] and seen[3] == 77  # each at its own length
    assert (got * reference).sum(axis=1).min() >= 0.9999
    np.testing.assert_allclose(emb.embed_texts(TEXTS), reference, atol=1e-4)

    (entry,) = (own_cache / "text-towers").iterdir()
    verdict = json.loads((entry / "verdict.json").read_text())
    assert verdict["exact"] is True and verdict["fixed_length"] == 77
    assert "min cosine" in verdict["reason"] and (entry / "text_dynamic.onnx").is_file()
    # the original graph's optimized copy (made by the first load) is not kept beside it
    assert not list(entry.glob("optimized-*"))

    # a new process (a one-off CLI query) reuses the verdict and the graph: no rewrite,
    # no proof, and its very first query runs at its own length
    def fail(*a, **kw):  # type: ignore[no-untyped-def]
        raise AssertionError("the cached verdict must be reused")

    monkeypatch.setattr(text_trim, "make_dynamic", fail)
    monkeypatch.setattr(text_trim, "decide", fail)
    again = OnnxClipEmbedder(tiny_model_dir, threads=1)
    seen = fed_lengths(again)
    first = again.embed_texts(TEXTS[1:2])
    assert seen == [11] and again._trim is True and again.context_length == 77
    assert float(first[0] @ reference[1]) >= 0.9999


def test_changed_model_file_is_proven_again(tiny_model_dir: Path, tmp_path: Path,
                                            own_cache: Path) -> None:
    model = tmp_path / "model.onnx"
    shutil.copy(tiny_model_dir / "textual" / "model.onnx", model)
    cached = text_trim.TrimCache(model)
    cached.store(text_trim.Verdict(False, "test"))
    assert text_trim.TrimCache(model).load() == text_trim.Verdict(False, "test")
    os.utime(model, ns=(1, 1))
    assert text_trim.TrimCache(model).load() is None


def padding_sensitive_copy(tiny_model_dir: Path, folder: Path) -> Path:
    """The tiny model with a text tower whose output depends on the padding (as SigLIP's
    last-position pooling does): the mean token id is added to every output value."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    shutil.copytree(tiny_model_dir, folder, ignore=shutil.ignore_patterns("reference"))
    path = folder / "textual" / "model.onnx"
    model = onnx.load(str(path))
    g = model.graph
    out = g.output[0].name
    for node in g.node:
        node.output[:] = ["raw" if o == out else o for o in node.output]
    g.initializer.append(numpy_helper.from_array(np.array(1e-5, np.float32), "scale"))
    g.node.extend([
        helper.make_node("Cast", [g.input[0].name], ["ids_f"], to=onnx.TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["ids_f"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["mean", "scale"], ["bias"]),
        helper.make_node("Add", ["raw", "bias"], [out]),
    ])
    onnx.save(model, str(path))
    return folder


def test_proof_failure_keeps_the_original_tower(tiny_model_dir: Path, tmp_path: Path,
                                                own_cache: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    folder = padding_sensitive_copy(tiny_model_dir, tmp_path / "sensitive")
    emb = OnnxClipEmbedder(folder, threads=1, text_cache=0)
    first = emb.embed_texts(TEXTS)
    with caplog.at_level(logging.WARNING, logger="imgfind.embedders.text_trim"):
        second = emb.embed_texts(TEXTS)
        assert emb._deciding is not None
        emb._deciding.join()
    assert emb._trim is False and emb._text is not None and emb._text.fixed_length == 77
    np.testing.assert_allclose(second, first, atol=1e-6)
    assert "keeps its full 77-token length: min cosine" in caplog.text
    (entry,) = (own_cache / "text-towers").iterdir()
    assert json.loads((entry / "verdict.json").read_text())["exact"] is False
    assert not (entry / "text_dynamic.onnx").exists()  # the rejected graph is not kept
    # the next process trusts the negative verdict at once and stays at 77 tokens
    again = OnnxClipEmbedder(folder, threads=1)
    seen = fed_lengths(again)
    again.embed_texts(TEXTS[:1])
    assert again._trim is False and seen == [77]


def test_rewrite_failure_falls_back(tiny_model_dir: Path, own_cache: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture) -> None:
    def cannot(src: Path, dst: Path, fixed_length: int) -> None:
        raise ValueError("an operator this rewrite does not know")

    monkeypatch.setattr(text_trim, "make_dynamic", cannot)
    emb = OnnxClipEmbedder(tiny_model_dir, threads=1, text_cache=0)
    reference = emb.embed_texts(TEXTS)
    with caplog.at_level(logging.WARNING, logger="imgfind.embedders.text_trim"):
        np.testing.assert_allclose(emb.embed_texts(TEXTS), reference, atol=1e-6)
        assert emb._deciding is not None
        emb._deciding.join()
    assert emb._trim is False and emb._text is not None and emb._text.fixed_length == 77
    assert "rewrite failed: ValueError: an operator this rewrite does not know" in caplog.text


@pytest.mark.filterwarnings("ignore")
def test_graph_with_constants_of_the_fixed_length(tmp_path: Path) -> None:
    """open_clip-style graphs add a whole (77, width) position table and a (77, 77) mask,
    and reshape to (batch, 77, ...): each must follow the input's length."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import onnxruntime as ort

    torch.manual_seed(0)

    class Text(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(100, 8)
            self.pos = torch.nn.Parameter(torch.randn(77, 8))
            self.register_buffer("mask", torch.full((77, 77), float("-inf")).triu(1))
            self.proj = torch.nn.Linear(8, 8)

        def forward(self, text: torch.Tensor) -> torch.Tensor:
            x = self.emb(text) + self.pos  # no slicing: needs exactly 77 tokens
            att = (x @ x.transpose(1, 2) + self.mask).softmax(-1) @ x
            x = self.proj(att).reshape(text.shape[0], 77, 2, 4).reshape(-1, 77, 8)
            return x[torch.arange(x.shape[0]), text.argmax(dim=-1)]

    src, dst = tmp_path / "fixed.onnx", tmp_path / "dynamic.onnx"
    torch.onnx.export(Text(), (torch.ones(1, 77, dtype=torch.long),), str(src),
                      input_names=["text"], output_names=["embedding"], opset_version=17,
                      dynamo=False, dynamic_axes={"text": {0: "batch"}})
    text_trim.make_dynamic(src, dst, 77)
    full = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    dyn = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    assert dyn.get_inputs()[0].shape[1] == "sequence"
    ids = np.zeros((2, 77), np.int64)
    ids[0, :5], ids[1, :9] = [1, 5, 7, 3, 99], [1, 2, 3, 4, 5, 6, 7, 8, 99]
    want = full.run(None, {"text": ids})[0]
    got = dyn.run(None, {"text": ids[:, :9]})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.fixture(scope="module")
def tjs_model_dir_for_trim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from imgfind.testing import make_model

    return make_model(tmp_path_factory.mktemp("models") / "tiny-tjs", layout="transformers.js",
                      reference=False)


def test_dynamic_tower_verdict_is_reused_by_the_next_process(tjs_model_dir_for_trim: Path,
                                                              own_cache: Path) -> None:
    """A dynamic-axis tower's cached verdict lets a one-off query (the CLI) run at its
    own length from the first query on (it used to be dropped, as if a rewritten graph
    were missing)."""
    emb = OnnxClipEmbedder(tjs_model_dir_for_trim, threads=1)
    reference = emb.embed_texts(TEXTS)
    emb.embed_texts(["the second query starts the proof beside it"])
    assert emb._deciding is not None
    emb._deciding.join()
    assert emb._trim is True
    again = OnnxClipEmbedder(tjs_model_dir_for_trim, threads=1)
    seen = fed_lengths(again)
    first = again.embed_texts(TEXTS[1:2])
    assert again._trim is True and seen == [11]
    assert float(first[0] @ reference[1]) >= 0.9999
