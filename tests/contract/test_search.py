"""Vector search (k hits whenever k items match, filters, exclude) and full-text search."""

from __future__ import annotations

import numpy as np
import pytest

from imgfind.errors import InvalidInput
from imgfind.stores import Record

from .helpers import clustered, exact_top, recall, records


def test_search_finds_the_nearest_with_cosine_scores(store):
    x = clustered(800)
    store.put(records(x))
    q = clustered(20, seed=5)
    got = store.search(q, 10)
    assert len(got) == 20 and all(len(g) == 10 for g in got)
    assert recall(got, exact_top(x, q, 10)) >= 0.95
    for qi, g in enumerate(got):
        scores = [s for _, s in g]
        assert scores == sorted(scores, reverse=True)
        for id, s in g:
            assert s == pytest.approx(float(x[int(id[1:])] @ q[qi]), abs=1e-3)
    assert store.search(x[7], 1)[0][0][0] == "r7"            # a 1-d query works too
    assert store.search(q, 0) == [[] for _ in range(20)]
    assert len(store.search(q[:1], np.int64(4))[0]) == 4
    for bad in (-1, 2.5, "3"):
        with pytest.raises(InvalidInput, match="k must be"):
            store.search(q, bad)
        with pytest.raises(InvalidInput, match="k must be"):
            store.text_search("x", bad)


def test_search_returns_all_when_fewer_than_k(store):
    x = clustered(3)
    store.put(records(x))
    assert [len(g) for g in store.search(x, 10)] == [3, 3, 3]


@pytest.mark.parametrize("n", [600, 3000])
@pytest.mark.parametrize("field, value", [("g100", 7), ("g10", 3), ("half", 1)])  # 1/10/50%
def test_filtered_search_returns_k_when_k_match(make_store, n, field, value):
    s = make_store()
    x = clustered(n)
    s.put(records(x))
    q = clustered(10, seed=11)
    labels = np.array([r.metadata[field] for r in records(x)])
    keep = labels == value
    k = min(10, int(keep.sum()))
    got = s.search(q, 10, where={field: value})
    assert all(len(g) == k for g in got)
    mod = {"g100": 100, "g10": 10, "half": 2}[field]
    assert all(int(id[1:]) % mod == value for g in got for id, _ in g)
    assert recall(got, exact_top(x, q, k, keep)) >= 0.95
    big = s.search(q[:2], 25, where={"$and": [{field: value}, {"n": {"$lt": n // 2}}]})
    want = int((keep & (np.arange(n) < n // 2)).sum())
    assert all(len(g) == min(25, want) for g in big)


def test_filter_matching_nothing_and_exclude(store):
    x = clustered(100)
    store.put(records(x))
    assert store.search(x[:2], 5, where={"g10": 99}) == [[], []]
    got = store.search(x[3:4], 5, exclude=["r3"])[0]
    assert len(got) == 5 and "r3" not in [h[0] for h in got]
    got = store.search(x[3:4], 5, where={"g10": 3}, exclude=["r3", "r13"])[0]
    assert len(got) == 5 and not {"r3", "r13"} & {h[0] for h in got}
    assert all(int(h[0][1:]) % 10 == 3 for h in got)


def test_very_selective_filter_is_exact(make_store):
    s = make_store()
    x = clustered(2500)
    s.put(records(x))
    got = s.search(x[:1], 30, where={"n": {"$lt": 40}})[0]
    assert [h[0] for h in got] == exact_top(x[:40], x[:1], 30)[0]


@pytest.fixture
def texts(store):
    x = clustered(4)
    store.put([
        Record(id="beach", source="/trips/beach_day.jpg", vector=x[0],
               metadata={"caption": "A dog running on the beach", "place": "Skagen"}),
        Record(id="dogs", source="/pets/dog.jpg", vector=x[1],
               metadata={"caption": "dog dog dog sleeping"}, exif={"Make": "Canon"}),
        Record(id="cat", source="/pets/cat.jpg", vector=x[2], metadata={"caption": "a cat"},
               file={"name": "kitty.jpg"}),
        Record(id="café", source="/x/café.jpg", vector=x[3], metadata={"note": "Crème brûlée"}),
    ])
    return store


def test_text_search_matches_every_word_in_paths_metadata_exif_and_names(texts):
    store = texts
    assert {h[0] for h in store.text_search("dog")} == {"beach", "dogs"}
    assert [h[0] for h in store.text_search("dog beach")] == ["beach"]     # all words
    assert [h[0] for h in store.text_search("dog", k=1)] == ["dogs"]       # bm25: tf wins
    scores = [h[1] for h in store.text_search("dog")]
    assert scores == sorted(scores, reverse=True)
    assert [h[0] for h in store.text_search("canon")] == ["dogs"]          # EXIF
    assert [h[0] for h in store.text_search("kitty")] == ["cat"]           # file name
    assert [h[0] for h in store.text_search("trips")] == ["beach"]         # path
    assert [h[0] for h in store.text_search("dog", where={"place": "Skagen"})] == ["beach"]
    assert store.text_search("zebra") == []


def test_text_search_prefixes_and_diacritics(texts):
    assert [h[0] for h in texts.text_search("sleep")] == ["dogs"]          # word prefix
    assert [h[0] for h in texts.text_search("creme brulee")] == ["café"]   # diacritics


def test_text_search_takes_hostile_input_as_words(texts):
    for hostile in ['"', 'dog"', "NEAR(dog beach)", "dog OR cat", "dog AND", "*", "^dog",
                    "dog:cat", "caption:dog", "(((", "-dog", "dog +", "'; DROP TABLE fts;--",
                    "\x00", "", "   "]:
        texts.text_search(hostile)           # never raises a syntax error
    assert texts.text_search("dog OR cat") == []     # OR is a plain word here
    assert texts.count() == 4
