"""Search options (issue 10): min_score, sort, several examples, hybrid mode.

One suite, two implementations: each test runs on the library Collection and on
the HTTP client's collection (a real server on 127.0.0.1), with the same
expectations; the cross test demands the same hits both ways.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import imgfind
from imgfind.errors import InvalidFilter, InvalidInput, NotFound
from imgfind.query import RRF_K, Query, sort_by
from imgfind.search import rrf
from imgfind.server import BackgroundServer

from .conftest import real_photos


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    root = tmp_path_factory.mktemp("searchopts")
    (root / "photos").mkdir()
    for p in real_photos(10):
        shutil.copy(p, root / "photos" / p.name)
    lib = imgfind.open(root / "home", model_path=tiny_model_dir)
    with BackgroundServer(lib) as srv:
        client = imgfind.Client(srv.url)
        yield {"lib": lib, "client": client, "photos": root / "photos"}
        client.close()
    lib.close()


@pytest.fixture(scope="module")
def shared(env):
    """One collection of 10 photos (with captions), seen through the library and the client."""
    name = f"s{time.monotonic_ns()}"
    local = env["lib"].create_collection(name)
    local.add(env["photos"])
    for i, item in enumerate(local.items()):
        local.set_metadata(item.id, {"i": i, "caption": "zebra crossing" if i == 6
                                     else f"photo number {i}"})
    return {"library": local, "client": env["client"].collection(name)}


@pytest.fixture(params=["library", "client"])
def col(request, shared):
    return shared[request.param]


def ids(hits) -> list[str]:
    return [h.id for h in hits]


def dated_jpeg(i: int, taken: str | None) -> bytes:
    im = Image.open(real_photos(i + 1)[i])
    exif = Image.Exif()
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken  # DateTimeOriginal
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


# -- min_score ------------------------------------------------------------------------------

def test_min_score_keeps_only_hits_at_or_above_it(col) -> None:
    q = "a dog on the grass"
    full = col.search(q, k=10, mode="vector")
    assert len(full) == 10
    cut = full[4].score
    kept = col.search(q, k=10, mode="vector", min_score=cut)
    assert ids(kept) == [h.id for h in full if h.score >= cut]
    assert 5 <= len(kept) < 10 or full[5].score == cut
    assert col.search(q, k=10, min_score=1.0) == [] or all(
        h.score >= 1.0 for h in col.search(q, k=10, min_score=1.0))
    # the threshold is applied before k: k=3 still gives 3 when 3 pass
    assert ids(col.search(q, k=3, mode="vector", min_score=cut)) == ids(full[:3])


@pytest.mark.parametrize("bad", [2, -1.5, float("nan"), "high", True])
def test_min_score_must_be_a_cosine(col, bad) -> None:
    with pytest.raises(InvalidInput, match="min_score"):
        col.search("a dog", min_score=bad)


def test_min_score_has_no_meaning_for_words_alone(col) -> None:
    with pytest.raises(InvalidInput, match="min_score"):
        col.search("zebra", mode="text", min_score=0.1)


# -- sort -----------------------------------------------------------------------------------

def test_sort_orders_the_hits_by_date(env) -> None:
    for name, which in (("library", env["lib"]), ("client", env["client"])):
        c = which.create_collection(f"d{name}{time.monotonic_ns()}")
        old = c.insert(dated_jpeg(0, "2019:05:01 10:00:00"))
        new = c.insert(dated_jpeg(1, "2021:07:02 11:00:00"))
        time.sleep(1.1)  # a later second for "added"
        undated = c.insert(dated_jpeg(2, None))  # falls back to the date it was added
        assert c.get(old).taken.startswith("2019-05-01")
        q = np.ones(c.dim, dtype=np.float32)
        assert ids(c.search(q, k=3, sort="taken")) == [old, new, undated]
        assert ids(c.search(q, k=3, sort="-taken")) == [undated, new, old]
        assert ids(c.search(q, k=3, sort="-added"))[0] == undated
        assert ids(c.search(q, k=3, sort="added"))[-1] == undated
        by_score = c.search(q, k=3)
        assert [h.score for h in by_score] == sorted((h.score for h in by_score), reverse=True)
        # sort orders only the hits that pass k: the best 2 by score, then by date
        top2 = set(ids(by_score[:2]))
        assert set(ids(c.search(q, k=2, sort="-taken"))) == top2


def test_listing_sorts_by_date_newest_first_for_a_gallery(env) -> None:
    for which in (env["lib"], env["client"]):
        c = which.create_collection(f"l{time.monotonic_ns()}")
        old = c.insert(dated_jpeg(0, "2019:05:01 10:00:00"))
        new = c.insert(dated_jpeg(1, "2021:07:02 11:00:00"))
        time.sleep(1.1)
        undated = c.insert(dated_jpeg(2, None))
        assert [it.id for it in c.items()] == [old, new, undated]     # insertion order
        assert [it.id for it in c.items(sort="-taken")] == [undated, new, old]
        assert [it.id for it in c.items(sort="taken")] == [old, new, undated]
        assert [it.id for it in c.items(sort="-added")][0] == undated
        assert [it.id for it in c.items(sort="-taken", limit=1, offset=1)] == [new]
        assert [it.id for it in c.items(where={"taken": {"$exists": True}},
                                        sort="-taken")] == [new, old]
        for bad in ("score", "newest", 3):
            with pytest.raises(InvalidInput, match="sort"):
                c.items(sort=bad)


def test_listing_sorts_read_an_index(env) -> None:
    from imgfind.filters import compile_filter
    from imgfind.stores.sqlite.rows import _ORDER

    c = env["lib"].create_collection(f"x{time.monotonic_ns()}")
    con = c.store._con
    for sort, order in _ORDER.items():
        sql, params = compile_filter(None)
        plan = " ".join(str(r) for r in con.execute(
            f"EXPLAIN QUERY PLAN SELECT id FROM items WHERE {sql} ORDER BY {order} LIMIT 50",
            params))
        assert "TEMP B-TREE" not in plan, (sort, plan)
        assert sort is None or "USING INDEX items_" in plan, (sort, plan)


def test_rest_listing_refuses_an_unknown_sort(env) -> None:
    import httpx

    name = env["lib"].create_collection(f"r{time.monotonic_ns()}").name
    r = httpx.get(f"{env['client'].url}/api/collections/{name}/items",
                  params={"sort": "newest"})
    assert r.status_code == 400 and "sort" in r.json()["error"]["message"]


@pytest.mark.parametrize("bad", ["date", "", None, 1, "-score"])
def test_unknown_sort_is_refused(col, bad) -> None:
    with pytest.raises(InvalidInput, match="sort"):
        col.search("a dog", sort=bad)


def test_sort_by_puts_undated_last_stably() -> None:
    def it(name, taken=None, added=None):
        return SimpleNamespace(name=name, taken=taken, added=added)
    rows = [it("a"), it("b", added="2020-01-01"), it("c", taken="2018-01-01"),
            it("d"), it("e", added="2020-01-01")]
    names = [r.name for r in sort_by(rows, "taken", lambda r: r)]
    assert names == ["c", "b", "e", "a", "d"]
    names = [r.name for r in sort_by(rows, "-taken", lambda r: r)]
    assert names == ["b", "e", "c", "a", "d"]
    assert [r.name for r in sort_by(rows, "-added", lambda r: r)] == ["b", "e", "a", "c", "d"]
    assert [r.name for r in sort_by(rows, "score", lambda r: r)] == list("abcde")


# -- several examples -----------------------------------------------------------------------

def test_positive_and_negative_examples_combine_as_documented(col, shared) -> None:
    local = shared["library"]
    a, b, c = (it.id for it in local.items(limit=3))
    va, vb, vc = local.vector(a), local.vector(b), local.vector(c)
    expect = va + 2.0 * vc - 0.5 * vb
    expect /= np.linalg.norm(expect)
    hits = col.search(like=a, positive=[{"like": c, "weight": 2.0}], negative=[{"like": b}],
                      k=10)
    plain = [h for h in col.search(expect, k=10) if h.id not in (a, b, c)]
    assert ids(hits) == ids(plain)
    assert [h.score for h in hits] == pytest.approx([h.score for h in plain], abs=1e-5)
    # weights given as one list (positives first) mean the same
    same = col.search(like=[a, c], negative=[{"like": b}], weights=[1, 2, 0.5], k=10)
    assert ids(same) == ids(hits)
    # an example item never comes back as a hit
    assert not {a, b, c} & set(ids(hits))


def test_examples_of_every_kind(col, env) -> None:
    photo = sorted(env["photos"].glob("*.jpg"))[2]
    hits = col.search("a beach", positive=["sunset", photo, photo.read_bytes(),
                                           Image.open(photo)],
                      negative=["people", {"image": str(photo)}], k=5)
    assert len(hits) == 5
    text_only = col.search("a beach", k=5, mode="vector")
    assert ids(hits) != ids(text_only) or hits[0].score != text_only[0].score


@pytest.mark.parametrize("kwargs,error", [
    ({"negative": ["people"]}, InvalidInput),                     # nothing positive
    ({"positive": "sunset"}, InvalidInput),                       # not a list
    ({"positive": ["a"], "weights": [1]}, InvalidInput),          # one weight per example
    ({"positive": ["a"], "weights": [1, -2]}, InvalidInput),      # weights are positive
    ({"positive": [{"text": "a", "bogus": 1}]}, InvalidInput),    # unknown field
    ({"positive": [{"like": "ghost"}]}, NotFound),
    ({"positive": [12345]}, InvalidInput),
    ({"like": [], "positive": ["a"]}, InvalidInput),
    ({"like": ["ghost", "ghost2"]}, NotFound),
    ({"positive": ["a"], "where": {"$bogus": 1}}, InvalidFilter),
])
def test_bad_examples_are_typed_errors(col, kwargs, error) -> None:
    query = None if "like" in kwargs or "negative" in kwargs else "a dog"
    with pytest.raises(error):
        col.search(query, **kwargs)


def test_examples_that_cancel_out_are_refused(col, shared) -> None:
    v = shared["library"].vector(shared["library"].items(limit=1)[0].id)
    with pytest.raises(InvalidInput, match="cancel"):
        col.search(v, negative=[v], weights=[1, 1])


# -- hybrid ---------------------------------------------------------------------------------

def test_hybrid_ranks_a_word_match_first_and_is_the_text_default(col, shared) -> None:
    zebra = shared["library"].items(where={"i": 6})[0].id
    hybrid = col.search("zebra", k=5, mode="hybrid")
    # rank 1 in the full-text list: 1/(60+1) plus its vector rank beats any vector-only hit
    assert hybrid[0].id == zebra
    assert col.search("zebra", k=5) == hybrid        # hybrid is the default for text
    assert ids(col.search("zebra", k=5, mode="text")) == [zebra]
    vec = col.search("zebra", k=5, mode="vector")
    # a score means cosine in both modes
    by_id = {h.id: h.score for h in col.search("zebra", k=10, mode="vector")}
    assert all(h.score == pytest.approx(by_id[h.id], abs=1e-5) for h in hybrid)
    assert len(vec) == 5


def test_hybrid_without_a_word_match_is_the_vector_ranking(col) -> None:
    q = "qwertyuiop asdfgh"
    assert ids(col.search(q, k=5)) == ids(col.search(q, k=5, mode="vector"))


@pytest.mark.parametrize("kwargs", [
    {"mode": "fuzzy"},
    {"mode": "text", "positive": [np.ones(4)]},
    {"mode": "text", "negative": ["people"]},
])
def test_bad_modes_are_refused(col, kwargs) -> None:
    with pytest.raises(InvalidInput, match="mode"):
        col.search("a dog", **kwargs)


def test_hybrid_needs_words(col, shared) -> None:
    some = shared["library"].items(limit=1)[0].id
    with pytest.raises(InvalidInput, match="mode"):
        col.search(like=some, mode="hybrid")


def test_rrf_is_reciprocal_rank_fusion_with_k_60() -> None:
    assert RRF_K == 60
    assert rrf(["a", "b"], ["b", "c"]) == ["b", "a", "c"]
    assert rrf(["a", "b", "c"], ["c", "a"], k=1) == ["a", "c", "b"]


# -- the same answers both ways --------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    {"min_score": 0.0},
    {"sort": "-taken", "k": 4},
    {"positive": ["sunset"], "negative": ["people"]},
    {"mode": "text"},
    {"mode": "hybrid", "where": {"i": {"$gte": 3}}},
])
def test_library_and_client_agree(shared, kwargs) -> None:
    a = shared["library"].search("zebra photo", **kwargs)
    b = shared["client"].search("zebra photo", **kwargs)
    assert ids(a) == ids(b)
    assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-6)
    qs = [Query.build("zebra", **kwargs), Query.build("a dog", **kwargs)]
    assert [ids(x) for x in shared["library"].run(qs)] == \
        [ids(x) for x in shared["client"].search_batch(qs)]


def test_rest_multipart_search_takes_the_options_as_form_fields(env, shared) -> None:
    import httpx

    local = shared["library"]
    photo = sorted(env["photos"].glob("*.jpg"))[4]
    some = local.items(limit=1, offset=2)[0].id
    expect = local.search(photo, k=5, negative=[{"like": some}], min_score=-1.0,
                          sort="-added")
    r = httpx.post(f"{env['client'].url}/api/collections/{local.name}/search",
                   files={"file": photo.read_bytes()},
                   data={"k": "5", "negative": json.dumps([{"like": some}]),
                         "min_score": "-1", "sort": "-added"})
    assert r.status_code == 200, r.text
    assert [h["id"] for h in r.json()["hits"]] == ids(expect)
    bad = httpx.post(f"{env['client'].url}/api/collections/{local.name}/search",
                     files={"file": photo.read_bytes()}, data={"min_score": "high"})
    assert bad.status_code == 400 and "min_score" in bad.text
    typo = httpx.post(f"{env['client'].url}/api/collections/{local.name}/search",
                      json={"text": "a dog", "positive": [{"text": "x", "wieght": 2}]})
    assert typo.status_code == 422 and "wieght" in typo.text


def test_hybrid_leaves_out_a_word_hit_deleted_meanwhile(shared, monkeypatch) -> None:
    local = shared["library"]
    zebra = local.items(where={"i": 6})[0].id
    words = local.store.text_search
    monkeypatch.setattr(local.store, "text_search",
                        lambda q, k, where=None: [("gone-meanwhile", 9.0), *words(q, k, where)])
    hits = local.search("zebra", k=5, mode="hybrid")
    assert "gone-meanwhile" not in ids(hits) and hits[0].id == zebra


def test_a_filtered_date_listing_walks_a_filter_and_date_index(tmp_path) -> None:
    from imgfind.stores import CollectionInfo, Record, StoreOptions, open_backend

    backend = open_backend(tmp_path, StoreOptions(auto_index_min=10))
    store = backend.create(CollectionInfo(name="s", model="toy", dim=4))
    v = np.eye(4, dtype=np.float32)
    store.put([Record(id=f"i{i}", source=f"/p/{i}.jpg", vector=v[i % 4],
                      taken=f"20{10 + i % 15}-01-01T00:00:00", metadata={"album": i % 3})
               for i in range(60)])
    want = sorted((f"20{10 + i % 15}", i) for i in range(60) if i % 3 == 1)
    expect = [f"i{i}" for _, i in sorted(want, reverse=True)][:5]
    assert store.ids({"album": 1}, limit=5, sort="-taken") == expect
    from imgfind.stores.sqlite.rows import _ORDER

    plan = " ".join(str(r) for r in store._con.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM items WHERE json_extract(metadata, '$.\"album\"') "
        f"= ? ORDER BY {_ORDER['-taken']} LIMIT 5", [1]))
    assert "TEMP B-TREE" not in plan and "ix_field_" in plan, plan
    # a filter it cannot serve (two keys, a range) still answers, from the date index
    assert store.ids({"album": 1, "i": {"$gt": 0}}, limit=5, sort="-taken") == []
    backend.close()
