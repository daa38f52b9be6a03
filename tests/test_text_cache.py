"""The text-query vector cache (embedders.text_cache): exact hits without running the
tower, misses for other texts and other models, bounded size; and through real HTTP,
a repeated search answered from it. Also the request thread's single OpenMP thread."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from imgfind.embedders.onnx_clip import OnnxClipEmbedder
from imgfind.embedders.text_cache import TextVectorCache
from imgfind.server import BackgroundServer
from imgfind.server.threads import one_native_thread

from .conftest import real_photos


def runs(emb: OnnxClipEmbedder, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of texts each text-tower run is fed, appended as they run."""
    fed: list[int] = []
    run = emb._run_text

    def spy(ids, mask, tower=None):  # type: ignore[no-untyped-def]
        fed.append(len(ids))
        return run(ids, mask, tower)

    monkeypatch.setattr(emb, "_run_text", spy)
    return fed


def test_cache_is_bounded_lru_and_read_only() -> None:
    cache = TextVectorCache(2)
    a, b, c = (np.full(3, x, np.float32) for x in (1.0, 2.0, 3.0))
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") is not None  # now the most recent: "b" goes first
    cache.put("c", c)
    assert len(cache) == 2 and cache.get("b") is None
    got = cache.get("a")
    assert got is not None and np.array_equal(got, a)
    with pytest.raises(ValueError):
        got[0] = 9.0  # nobody can change what a later hit returns
    a[0] = 9.0  # nor through the array that was stored
    assert cache.get("a")[0] == 1.0  # type: ignore[index]
    assert (cache.hits, cache.misses) == (3, 1)
    off = TextVectorCache(0)
    off.put("a", a)
    assert len(off) == 0 and off.get("a") is None
    with pytest.raises(ValueError, match="cache size"):
        TextVectorCache(-1)


def test_hit_is_identical_and_runs_nothing(tiny_model_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    emb = OnnxClipEmbedder(tiny_model_dir, threads=1)
    fed = runs(emb, monkeypatch)
    first = emb.embed_texts(["a dog on the grass"])
    assert fed == [1]
    # the same text as the tokenizer sees it (whitespace runs are one space): a hit
    again = emb.embed_texts(["  a dog\ton   the grass "])
    assert fed == [1] and again.tobytes() == first.tobytes()
    again[:] = 0.0  # the caller's copy: the cache keeps its own
    assert emb.embed_texts(["a dog on the grass"]).tobytes() == first.tobytes()
    # a batch runs only its new texts, once each, and keeps the order asked
    batch = emb.embed_texts(["a cat", "a dog on the grass", "a cat", "a boat"])
    assert fed == [1, 2]
    assert batch[1].tobytes() == first[0].tobytes() and np.array_equal(batch[0], batch[2])
    # what a hit returns is what the tower gives for that text
    uncached = OnnxClipEmbedder(tiny_model_dir, threads=1, text_cache=0)
    np.testing.assert_allclose(batch, uncached.embed_texts(
        ["a cat", "a dog on the grass", "a cat", "a boat"]), atol=1e-5)


def test_other_model_misses(tiny_model_dir: Path, tmp_path: Path,
                            monkeypatch: pytest.MonkeyPatch) -> None:
    from imgfind.testing import make_model

    other_dir = make_model(tmp_path / "other", layout="transformers.js", reference=False)
    emb = OnnxClipEmbedder(tiny_model_dir, threads=1)
    other = OnnxClipEmbedder(other_dir, threads=1)
    fed = runs(other, monkeypatch)
    mine = emb.embed_texts(["a red car"])
    theirs = other.embed_texts(["a red car"])
    assert fed == [1]  # its own tower ran: no vector of the first model came back
    assert float(mine[0] @ theirs[0]) < 0.999
    np.testing.assert_allclose(theirs, OnnxClipEmbedder(
        other_dir, threads=1, text_cache=0).embed_texts(["a red car"]), atol=1e-5)


def test_cache_size_bounds_the_texts_kept(tiny_model_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    emb = OnnxClipEmbedder(tiny_model_dir, threads=1, text_cache=3)
    fed = runs(emb, monkeypatch)
    for t in ["one", "two", "three", "four", "five"]:
        emb.embed_texts([t])
    assert len(emb.text_cache) == 3 and fed == [1] * 5
    emb.embed_texts(["five"])  # kept
    emb.embed_texts(["one"])   # dropped for the newer ones: runs again
    assert fed == [1] * 6


def test_repeated_search_over_http_is_answered_from_the_cache(
        library, monkeypatch: pytest.MonkeyPatch) -> None:
    col = library.create_collection("default")
    col.add(*real_photos(4))
    emb = col.embedder
    assert isinstance(emb, OnnxClipEmbedder)
    fed = runs(emb, monkeypatch)
    with BackgroundServer(library) as srv, httpx.Client(base_url=srv.url, timeout=60) as http:
        url = "/api/collections/default/search"
        first = http.post(url, json={"text": "children playing on a beach", "k": 3})
        assert first.status_code == 200, first.text
        assert fed == [1]
        again = http.post(url, json={"text": "children  playing on a beach ", "k": 3})
        assert again.status_code == 200 and fed == [1]
        assert again.json()["hits"] == first.json()["hits"]
        assert len(first.json()["hits"]) == 3
        other = http.post(url, json={"text": "a bowl of soup", "k": 3})
        assert other.status_code == 200 and fed == [1, 1]
        assert [h["score"] for h in other.json()["hits"]] != \
            [h["score"] for h in first.json()["hits"]]


def test_one_native_thread_is_per_thread() -> None:
    faiss = pytest.importorskip("faiss")
    before = faiss.omp_get_max_threads()
    seen: list[int] = []

    def request() -> None:
        one_native_thread()
        one_native_thread()  # a second call in the same thread changes nothing
        seen.append(faiss.omp_get_max_threads())

    t = threading.Thread(target=request)
    t.start()
    t.join()
    assert seen == [1]
    assert faiss.omp_get_max_threads() == before  # other threads keep theirs
