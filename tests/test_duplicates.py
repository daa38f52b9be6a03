"""Near-duplicates that survive edits: real photos edited in the test, grouped by tier.

The edited set is built here from shared/datasets (never committed): ImageNet photos,
each with 8 edited copies (see ``imgfind.testing.editset``), among unrelated Flickr
photos that must stay out of every group.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

import imgfind
from imgfind.duplicates import _cluster, _Edge
from imgfind.errors import InvalidInput
from imgfind.testing.editset import EDITS, make_edits, pair_scores

from .conftest import IMAGENET, real_photos

ORIGINALS = 12
DISTRACTORS = 24


def _imagenet(n: int) -> list[Path]:
    photos = sorted(IMAGENET.glob("*.JPEG"))[:n]
    if len(photos) < n:
        pytest.skip(f"needs {n} photos in {IMAGENET}")
    return photos


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    """A phash collection of originals, their edits and distractors; its groups."""
    home = tmp_path_factory.mktemp("dups") / "home"
    families: dict[str, str] = {}
    kinds: dict[str, str] = {}
    entries = []
    for n, photo in enumerate(_imagenet(ORIGINALS)):
        orig = f"o{n}"
        entries.append({"image": photo.read_bytes(), "id": orig})
        families[orig] = orig
        with Image.open(photo) as im:
            for kind, data in make_edits(im, seed=n).items():
                cid = f"o{n}-{kind}"
                entries.append({"image": data, "id": cid})
                families[cid], kinds[cid] = orig, kind
    for n, photo in enumerate(real_photos(DISTRACTORS)):
        entries.append({"image": photo.read_bytes(), "id": f"x{n}"})
        families[f"x{n}"] = f"x{n}"
    lib = imgfind.open(home)
    col = lib.create_collection("edits", model="phash")
    results = col.insert_batch(entries)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    groups = col.duplicates()
    yield col, groups, families, kinds
    lib.close()


def test_every_edit_is_found_and_nothing_unrelated_joins(edited):
    _col, groups, families, kinds = edited
    scores = pair_scores(groups, families, kinds)
    for kind in EDITS:
        assert scores[kind] >= 0.95, (kind, scores)
    assert scores["precision"] >= 0.98, scores
    # the unrelated photos stay out of every group
    grouped = {i for g in groups for i in g.ids}
    assert not {i for i in families if i.startswith("x")} & grouped


def test_groups_are_tiered_explained_and_disjoint(edited):
    _col, groups, families, kinds = edited
    seen: set[str] = set()
    for g in groups:
        assert not seen & set(g.ids), "an item is in two groups"
        seen |= set(g.ids)
        assert g.tier == "near" and not g.exact
        assert set(g.scores) == set(g.edits) == set(g.ids[1:])
        assert g.score == min(g.scores.values())
        assert all(lk.tier == "near" and lk.inliers >= 15 for lk in g.links)
    # the original has the most pixels, so it leads its group, and edits are named from it
    want = {"mirror": "mirrored", "rot90": "rotated 90", "rot180": "rotated 180",
            "rot270": "rotated 270", "q30": "re-encoded", "half": "resized",
            "crop10": "cropped"}
    named = right = 0
    for g in groups:
        assert families[g.ids[0]] == g.ids[0], g.ids
        for member, edit in g.edits.items():
            if kinds.get(member) in want:
                named += 1
                right += edit == want[kinds[member]]
    assert named and right / named >= 0.9, (right, named)


def test_exact_copies_form_the_exact_tier(tmp_path):
    photos = real_photos(3)
    with imgfind.open(tmp_path / "home") as lib:
        col = lib.create_collection("c", model="phash")
        col.insert_batch([{"image": photos[0].read_bytes(), "id": "a"},
                          {"image": photos[0].read_bytes(), "id": "b"},
                          {"image": photos[1].read_bytes(), "id": "c"},
                          {"image": photos[2].read_bytes(), "id": "d"}])
        groups = col.duplicates()
        assert [(g.tier, g.ids, g.exact, g.edits) for g in groups] == [
            ("exact", ["a", "b"], True, {"b": "exact copy"})]
        # an edited copy of an exact pair joins them in one near group, not a second group
        with Image.open(photos[0]) as im:
            col.insert(make_edits(im)["mirror"], id="m")
        groups = col.duplicates()
        assert len(groups) == 1
        g = groups[0]
        assert g.tier == "near" and set(g.ids) == {"a", "b", "m"}
        assert g.edits["m"] == "mirrored"
        with pytest.raises(InvalidInput):
            col.duplicates(threshold=0)


def _edge(a: int, b: int, inliers: int = 100) -> _Edge:
    return _Edge(a, b, "near", 0.9, "re-encoded", inliers)


def test_one_weak_link_cannot_merge_two_groups():
    # two groups of three, each held by strong links, and one weak link between them
    edges = [_edge(0, 1), _edge(1, 2), _edge(0, 2), _edge(3, 4), _edge(4, 5), _edge(3, 5),
             _edge(2, 3, inliers=16)]
    assert sorted(map(sorted, _cluster(6, edges))) == [[0, 1, 2], [3, 4, 5]]
    # two independent links between them do merge them
    assert sorted(map(sorted, _cluster(6, [*edges, _edge(1, 4, inliers=20)]))) == [
        [0, 1, 2, 3, 4, 5]]
    # a lone image joins a group through one link
    assert sorted(map(sorted, _cluster(7, [*edges, _edge(6, 0)]))) == [
        [0, 1, 2, 6], [3, 4, 5]]


def test_clip_collection_adds_a_similar_tier(library):
    photos = real_photos(4)
    col = library.create_collection("clip")
    with Image.open(photos[0]) as im:
        rot = make_edits(im)["rot90"]
    col.insert_batch([{"image": p.read_bytes(), "id": f"p{n}"} for n, p in enumerate(photos)]
                     + [{"image": rot, "id": "r"}])
    # near: proven whatever the model says
    near = [g for g in col.duplicates(threshold=1.0) if g.tier == "near"]
    assert [sorted(g.ids) for g in near] == [["p0", "r"]]
    # a threshold every pair passes makes the rest "similar" (the random model cannot
    # tell them apart), but never turns them into edits
    groups = col.duplicates(threshold=0.001)
    assert {g.tier for g in groups} == {"similar"}
    links = [lk for g in groups for lk in g.links]
    assert any(lk.tier == "near" and {lk.a, lk.b} == {"p0", "r"} for lk in links)
    assert all(lk.tier == "similar" for lk in links if "r" not in (lk.a, lk.b))


def test_cli_dupes_json_shows_tiers_and_edits(tmp_path):
    photos = real_photos(2)
    folder = tmp_path / "photos"
    folder.mkdir()
    with Image.open(photos[0]) as im:
        (folder / "orig.jpg").write_bytes(photos[0].read_bytes())
        (folder / "turned.jpg").write_bytes(make_edits(im)["rot270"])
    (folder / "other.jpg").write_bytes(photos[1].read_bytes())
    env = {**os.environ, "NO_COLOR": "1"}
    home = str(tmp_path / "home")
    run = subprocess.run(["imgfind", "--home", home, "index", str(folder), "--model", "phash",
                          "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    out = subprocess.run(["imgfind", "--home", home, "dupes", "--json"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    groups = json.loads(out.stdout)
    assert len(groups) == 1 and groups[0]["tier"] == "near"
    assert list(groups[0]["edits"].values()) == ["rotated 270"]

