"""Concurrent text queries share tower runs (embedders.coalesce): each caller gets its
own rows, calls made during a run share the next one, an error reaches every caller
of its run, and concurrent embeddings equal one-by-one ones."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from imgfind.embedders.coalesce import Coalescer
from imgfind.embedders.onnx_clip import OnnxClipEmbedder


def test_calls_during_a_run_share_the_next_one() -> None:
    started, release = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def fn(items: list[int]) -> np.ndarray:
        batches.append(list(items))
        if len(batches) == 1:  # hold the first run until the others are queued
            started.set()
            assert release.wait(30)
        return np.asarray(items) * 10

    co = Coalescer(fn)
    got: dict[int, list[int]] = {}

    def call(items: list[int]) -> None:
        got[items[0]] = co(items).tolist()

    first = threading.Thread(target=call, args=([1],))
    first.start()
    assert started.wait(30)
    others = [threading.Thread(target=call, args=(items,)) for items in ([2, 3], [4], [5])]
    for t in others:
        t.start()
    while len(co._queue) < 3:  # all three wait behind the running call
        threading.Event().wait(0.01)
    release.set()
    for t in [first, *others]:
        t.join(30)
    assert got == {1: [10], 2: [20, 30], 4: [40], 5: [50]}
    assert batches[0] == [1] and sorted(batches[1]) == [2, 3, 4, 5] and len(batches) == 2
    assert (co.runs, co.calls) == (2, 4)
    assert co([6]).tolist() == [60] and co.runs == 3  # a lone call runs at once


def test_an_error_reaches_every_caller_of_its_run_only() -> None:
    started, release = threading.Event(), threading.Event()
    runs = 0

    def fn(items: list[str]) -> np.ndarray:
        nonlocal runs
        runs += 1
        if runs == 1:
            started.set()
            assert release.wait(30)
            return np.zeros(len(items))
        raise RuntimeError("the tower failed")

    co = Coalescer(fn)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            co(["x"])
        except RuntimeError as e:
            errors.append(e)

    first = threading.Thread(target=call)
    first.start()
    assert started.wait(30)
    failing = [threading.Thread(target=call) for _ in range(2)]
    for t in failing:
        t.start()
    while len(co._queue) < 2:
        threading.Event().wait(0.01)
    release.set()
    for t in [first, *failing]:
        t.join(30)
    assert len(errors) == 2 and runs == 2  # the first call's own run succeeded
    with pytest.raises(RuntimeError, match="the tower failed"):
        co(["y"])  # and the next call runs again: nothing stays stuck
    assert not co._busy


def test_concurrent_embeddings_equal_one_by_one(tiny_model_dir: Path) -> None:
    texts = [f"{n} dogs playing {where}" for n in ("two", "three", "many")
             for where in ("on a beach", "in the snow", "by a very long and winding river")]
    alone = OnnxClipEmbedder(tiny_model_dir, threads=1, text_cache=0)
    want = np.concatenate([alone.embed_texts([t]) for t in texts])
    emb = OnnxClipEmbedder(tiny_model_dir, threads=1, text_cache=0)
    emb.embed_texts(["load the tower first"])
    got: dict[int, np.ndarray] = {}
    go = threading.Barrier(len(texts))

    def query(i: int) -> None:
        go.wait(30)
        got[i] = emb.embed_texts([texts[i]])[0]

    threads = [threading.Thread(target=query, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    np.testing.assert_allclose(np.stack([got[i] for i in range(len(texts))]), want, atol=1e-5)
    assert emb._text_runs.calls == len(texts) + 1
