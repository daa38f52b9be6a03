"""Text towers load from a cached optimized copy with memory-mapped weights
(embedders.ort_sessions): made by the first load, used by the next, never when the
model file changed, and skipped (logged) where the cache cannot be written. The first
session skips pre-packing; the second text query swaps in a pre-packed one."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from imgfind.embedders.onnx_clip import OnnxClipEmbedder

TEXTS = ["dog", "a photo of a dog running on the beach", "people at a market " * 30]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from imgfind.testing import make_model

    return make_model(tmp_path_factory.mktemp("models") / "tiny-tjs", layout="transformers.js",
                      reference=False)


def copies(own_cache: Path) -> list[Path]:
    return sorted((own_cache / "text-towers").glob("*/optimized-ort*"))


def test_copy_made_once_then_loaded(model_dir: Path, own_cache: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
    first = OnnxClipEmbedder(model_dir, threads=1)
    want = first.embed_texts(TEXTS)
    assert first._text is not None and first._text.path.name == "text_model.onnx"
    (folder,) = copies(own_cache)
    graph, weights = folder / "model.onnx", folder / "model.onnx.data"
    # the weights sit in their own file (memory-mapped on load), the graph file is small
    assert weights.stat().st_size > 10 * graph.stat().st_size
    assert not list(folder.parent.glob(".optimized-*"))  # no temporary folder left
    again = OnnxClipEmbedder(model_dir, threads=1)
    np.testing.assert_allclose(again.embed_texts(TEXTS), want, atol=1e-5)
    assert again._text is not None and again._text.path == graph
    # a damaged copy is dropped (logged) and made again from the original graph
    graph.write_bytes(b"not a graph")
    with caplog.at_level(logging.WARNING, logger="imgfind.embedders.ort_sessions"):
        third = OnnxClipEmbedder(model_dir, threads=1)
        np.testing.assert_allclose(third.embed_texts(TEXTS), want, atol=1e-5)
    assert "dropping the unreadable optimized graph" in caplog.text
    assert third._text is not None and third._text.path.name == "text_model.onnx"
    assert graph.stat().st_size > 1000 and copies(own_cache) == [folder]


def test_changed_model_never_loads_the_old_copy(model_dir: Path, tmp_path: Path,
                                                own_cache: Path) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    OnnxClipEmbedder(folder, threads=1).embed_texts(TEXTS)
    (old,) = copies(own_cache)
    model = folder / "onnx" / "text_model.onnx"
    os.utime(model, ns=(1, 1))  # same bytes, new identity: path + size + mtime
    changed = OnnxClipEmbedder(folder, threads=1)
    changed.embed_texts(TEXTS)
    assert changed._text is not None and changed._text.path == model  # not `old`
    assert len(copies(own_cache)) == 2 and old in copies(own_cache)


def test_unwritable_cache_loads_the_model_itself(model_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("the cache folder cannot be made under a file (even as root)")
    monkeypatch.setenv("IMGFIND_CACHE", str(blocked))
    reference = OnnxClipEmbedder(model_dir, threads=1, providers=["CPUExecutionProvider"])
    with caplog.at_level(logging.WARNING, logger="imgfind.embedders.ort_sessions"):
        got = reference.embed_texts(TEXTS)
    assert "cannot cache the optimized text graph" in caplog.text
    assert reference._text is not None and reference._text.path.name == "text_model.onnx"
    assert got.shape == (len(TEXTS), reference.dim)


def test_second_query_swaps_in_a_prepacked_session(model_dir: Path, own_cache: Path) -> None:
    emb = OnnxClipEmbedder(model_dir, threads=1, text_cache=0)  # every query runs
    first = emb.embed_texts(TEXTS)
    assert emb._text is not None and not emb._text.prepacked and emb._packing is None
    emb.embed_texts(TEXTS)  # second query: the trim proof starts (no verdict yet)
    assert emb._deciding is not None
    emb._deciding.join()
    emb.embed_texts(TEXTS)  # decided: now the pre-packed session loads beside the query
    assert emb._packing is not None
    emb._packing.join()
    assert emb._text.prepacked
    np.testing.assert_allclose(emb.embed_texts(TEXTS), first, atol=1e-5)
    # a later process has the verdict at once: its second query starts the swap
    later = OnnxClipEmbedder(model_dir, threads=1)
    later.embed_texts(TEXTS[:1])
    assert later._trim is True and later._packing is None
    later.embed_texts(TEXTS[:1])
    assert later._packing is not None
    later._packing.join()
    assert later._text is not None and later._text.prepacked
