"""Duplicate review (issue 10 part 7): keep one per group, delete the others, dry run first.

One suite, two implementations (library and HTTP client on a real server), plus
the API key on the REST route and the CLI as the console script.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

import imgfind
from imgfind.errors import InvalidInput, NotFound
from imgfind.server import BackgroundServer

from .conftest import real_photos
from .test_cli import run

KEY = "s3cret-key"
#: The tiny random-weight model finds every photo alike at the default 0.95 (one
#: "similar" group); at this threshold only real duplicates group.
TH = 0.999


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    lib = imgfind.open(tmp_path_factory.mktemp("review") / "home", model_path=tiny_model_dir)
    with BackgroundServer(lib, api_key=KEY) as srv:
        client = imgfind.Client(srv.url, api_key=KEY)
        yield {"lib": lib, "client": client, "url": srv.url}
        client.close()
    lib.close()


@pytest.fixture(params=["library", "client"])
def side(request, env):
    return env["lib"] if request.param == "library" else env["client"]


def fill(col) -> dict[str, list[str]]:
    """Two exact groups (3 and 2 copies) and three distinct photos."""
    photos = [p.read_bytes() for p in real_photos(5)]
    a = [col.insert(photos[0], keep_duplicates=True) for _ in range(3)]
    b = [col.insert(photos[1], keep_duplicates=True) for _ in range(2)]
    rest = [col.insert(p) for p in photos[2:]]
    return {"a": a, "b": b, "rest": rest}


@pytest.fixture
def col(side):
    c = side.create_collection(f"r{time.monotonic_ns()}")
    return c, fill(c)


def test_bulk_dry_run_counts_and_deletes_nothing(col) -> None:
    c, ids = col
    groups = [g for g in c.duplicates(TH) if g.tier == "exact"]
    assert sorted(sorted(g.ids) for g in groups) == sorted([sorted(ids["a"]), sorted(ids["b"])])
    plan = c.resolve_duplicates(threshold=TH, tiers=["exact"])
    assert plan.dry_run and plan.groups == 2 and plan.count == 3
    assert set(plan.keep) == {g.ids[0] for g in groups}
    assert set(plan.delete) == set(ids["a"] + ids["b"]) - set(plan.keep)
    assert c.count() == 8


def test_bulk_run_with_the_dry_run_count_deletes_the_others(col) -> None:
    c, ids = col
    plan = c.resolve_duplicates(threshold=TH, tiers=["exact"])
    with pytest.raises(InvalidInput, match="counted 2"):
        c.resolve_duplicates(threshold=TH, tiers=["exact"], dry_run=False, expect=2)
    assert c.count() == 8
    done = c.resolve_duplicates(threshold=TH, tiers=["exact"], dry_run=False,
                                expect=plan.count)
    assert not done.dry_run and sorted(done.delete) == sorted(plan.delete) and not done.errors
    assert c.count() == 5
    assert all(c.get(k) for k in plan.keep)
    assert not [g for g in c.duplicates(TH) if g.tier == "exact"]
    again = c.resolve_duplicates(threshold=TH, tiers=["exact"])
    assert (again.groups, again.count) == (0, 0)


def test_one_group_keeps_the_chosen_image(col) -> None:
    c, ids = col
    a1, a2, a3 = ids["a"]
    plan = c.resolve_duplicates([{"keep": a2, "ids": [a1, a2, a3]}], threshold=TH)
    assert (plan.keep, sorted(plan.delete), c.count()) == ([a2], sorted([a1, a3]), 8)
    done = c.resolve_duplicates([{"keep": a2, "ids": [a1, a2, a3]}], dry_run=False)
    assert done.count == 2 and c.count() == 6 and c.get(a2).id == a2
    with pytest.raises(NotFound):
        c.get(a1)
    # a group object from duplicates() keeps its first member (the likely original)
    g = next(g for g in c.duplicates(TH) if set(g.ids) == set(ids["b"]))
    assert c.resolve_duplicates([g]).keep == [g.ids[0]]


@pytest.mark.parametrize("make,error", [
    (lambda ids: {"groups": [{"keep": "x", "ids": ids["a"]}]}, InvalidInput),
    (lambda ids: {"groups": [{"keep": ids["a"][0], "ids": ids["a"]},
                             {"keep": ids["b"][0], "ids": [ids["b"][0], ids["a"][0]]}]},
     InvalidInput),
    (lambda ids: {"groups": [{"keep": "ghost", "ids": ["ghost", ids["a"][0]]}],
                  "dry_run": False}, NotFound),
    (lambda ids: {"groups": []}, InvalidInput),
    (lambda ids: {"groups": [{"keep": ids["a"][0], "ids": ids["a"], "why": 1}]}, InvalidInput),
    (lambda ids: {"tiers": ["bogus"]}, InvalidInput),
    (lambda ids: {"tiers": []}, InvalidInput),
    (lambda ids: {"groups": [{"keep": ids["a"][0], "ids": ids["a"]}], "tiers": ["exact"]},
     InvalidInput),
    (lambda ids: {"dry_run": "yes"}, InvalidInput),
    (lambda ids: {"expect": -1}, InvalidInput),
    (lambda ids: {"threshold": 2}, InvalidInput),
])
def test_bad_choices_are_typed_errors_and_delete_nothing(col, make, error) -> None:
    c, ids = col
    kwargs = {"threshold": TH, **make(ids)}
    groups = kwargs.pop("groups", None)
    with pytest.raises(error):
        c.resolve_duplicates(groups, **kwargs)
    assert c.count() == 8


def test_rest_resolve_needs_the_api_key_and_answers_the_documented_shape(env) -> None:
    c = env["lib"].create_collection(f"k{time.monotonic_ns()}")
    ids = fill(c)
    url = f"{env['url']}/api/collections/{c.name}/duplicates/resolve"
    r = httpx.post(url, json={"dry_run": False, "tiers": ["exact"], "threshold": TH})
    assert r.status_code == 401 and c.count() == 8
    auth = {"Authorization": f"Bearer {KEY}"}
    r = httpx.post(url, json={"tiers": ["exact"], "threshold": TH}, headers=auth)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"dry_run", "groups", "keep", "delete", "count", "errors"}
    assert (body["dry_run"], body["count"], body["groups"]) == (True, 3, 2)
    r = httpx.post(url, json={"tiers": ["exact"], "dry_nur": True}, headers=auth)
    assert r.status_code == 422 and "dry_nur" in r.text
    groups = httpx.get(f"{env['url']}/api/collections/{c.name}/duplicates",
                       params={"threshold": TH}, headers=auth).json()["groups"]
    exact = [g for g in groups if g["tier"] == "exact"]
    assert all({"ids", "tier", "score", "scores"} <= set(g) for g in exact)
    assert sorted(sorted(g["ids"]) for g in exact) == sorted([sorted(ids["a"]),
                                                              sorted(ids["b"])])


def test_cli_dedupe_dry_run_then_yes(tmp_path, tiny_model_dir) -> None:
    home = tmp_path / "H"
    with imgfind.open(home, model_path=tiny_model_dir) as lib:
        fill(lib.create_collection("default"))
    dry = run("dedupe", "--threshold", str(TH), "--tier", "exact", home=home, script=True)
    assert "would delete 3 images in 2 groups" in dry.stdout and "--yes" in dry.stdout
    plan = json.loads(run("dedupe", "--threshold", str(TH), "--tier", "exact", "--json",
                          home=home, script=True).stdout)
    assert plan["count"] == 3 and plan["dry_run"] is True
    done = run("dedupe", "--threshold", str(TH), "--tier", "exact", "--yes", home=home,
               script=True)
    assert "deleted 3 images" in done.stdout
    with imgfind.open(home, model_path=tiny_model_dir) as lib:
        assert lib.collection().count() == 5
    bad = run("dedupe", "--tier", "bogus", home=home, script=True, check=False)
    assert bad.returncode == 1 and "tiers" in bad.stderr and "Traceback" not in bad.stderr


def test_resized_copy_is_reviewed_as_near(side) -> None:
    c = side.create_collection(f"n{time.monotonic_ns()}")
    photo = Image.open(real_photos(1)[0])
    buf = io.BytesIO()
    photo.resize((photo.width // 2, photo.height // 2)).save(buf, "JPEG", quality=85)
    original = c.insert(real_photos(1)[0].read_bytes())
    small = c.insert(buf.getvalue())
    for p in real_photos(4, start=10):
        c.insert(p.read_bytes())
    plan = c.resolve_duplicates(threshold=TH)
    assert (plan.keep, plan.delete) == ([original], [small])
