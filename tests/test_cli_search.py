"""`imgfind search` options (issue 10) through the installed console script."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import imgfind

from .test_cli import run


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    from .conftest import real_photos

    root = tmp_path_factory.mktemp("clisearch")
    photos = root / "photos"
    photos.mkdir()
    for p in real_photos(8):
        shutil.copy(p, photos / p.name)
    shutil.copy(real_photos(9)[8], photos / "zebra_crossing.jpg")
    home = root / "H"
    run("index", str(photos), "--model-path", str(tiny_model_dir), "--json", home=home)
    return home, photos


def search(home: Path, *args: str) -> list[dict]:
    return json.loads(run("search", *args, "--json", home=home, script=True).stdout)


def test_examples_add_and_subtract_as_the_library_does(indexed, tiny_model_dir) -> None:
    home, photos = indexed
    crowd = str(sorted(photos.glob("*.jpg"))[1])
    with imgfind.open(home, model_path=tiny_model_dir) as lib:
        col = lib.collection()
        liked = col.items(limit=1, offset=3)[0].id
        expect = col.search("beach", positive=[{"like": liked}, {"text": "sunset"}],
                            negative=[{"text": "people"}, {"image": crowd}], k=5)
    hits = search(home, "beach", "--add", "sunset", "--sub", "people", "--sub-image", crowd,
                  "--like", liked, "-k", "5")
    assert [h["id"] for h in hits] == [h.id for h in expect]
    assert liked not in [h["id"] for h in hits]
    with imgfind.open(home, model_path=tiny_model_dir) as lib:
        col_hits = lib.collection().search("beach", positive=["sunset"], negative=["people"],
                                           weights=[1, 3, 2], k=5)
    weighted = search(home, "beach", "--add", "sunset", "--sub", "people",
                      "--weights", "1,3,2", "-k", "5")
    assert [h["id"] for h in weighted] == [h.id for h in col_hits]
    plain = search(home, "beach", "-k", "5")
    assert [h["score"] for h in plain] != [h["score"] for h in hits]


def test_min_score_sort_and_mode(indexed) -> None:
    home, _ = indexed
    full = search(home, "a dog", "-k", "9", "--mode", "vector")
    cut = full[3]["score"]
    kept = search(home, "a dog", "-k", "9", "--mode", "vector", "--min-score", str(cut))
    assert [h["id"] for h in kept] == [h["id"] for h in full if h["score"] >= cut]
    by_added = search(home, "a dog", "-k", "9", "--sort", "added")
    assert [h["item"]["added"] for h in by_added] == sorted(h["item"]["added"] for h in by_added)
    words = search(home, "zebra", "--mode", "text")
    assert [Path(h["source"]).name for h in words] == ["zebra_crossing.jpg"]
    assert Path(search(home, "zebra", "-k", "3")[0]["source"]).name == "zebra_crossing.jpg"
    table = run("text", "zebra", "--sort", "-taken", home=home, script=True).stdout
    assert "zebra_crossing.jpg" in table


@pytest.mark.parametrize("args,message", [
    (("a dog", "--min-score", "3"), "min_score"),
    (("a dog", "--sort", "newest"), "sort"),
    (("a dog", "--mode", "fuzzy"), "mode"),
    (("--sub", "people"), "give what to look for"),
    (("a dog", "--sub-image", "/no/such.jpg"), "no such image file"),
    (("a dog", "--unlike", "ghost"), "ghost"),
    (("--like", "ghost", "--mode", "hybrid"), "mode"),
    (("a dog", "--add", "x", "--weights", "1"), "weights"),
    (("a dog", "--weights", "one"), "--weights"),
])
def test_bad_options_are_one_line_errors(indexed, args, message) -> None:
    home, _ = indexed
    proc = run("search", *args, home=home, script=True, check=False)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_min_score_that_is_not_a_number_is_a_usage_error(indexed) -> None:
    home, _ = indexed
    proc = run("search", "a dog", "--min-score", "high", home=home, script=True, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_ls_lists_newest_first_and_checks_sort(indexed) -> None:
    home, _ = indexed
    listed = json.loads(run("ls", "--json", "-n", "20", home=home, script=True).stdout)
    dates = [h["taken"] or h["added"] for h in listed]
    assert len(listed) == 9 and dates == sorted(dates, reverse=True)
    oldest = json.loads(run("ls", "--sort", "taken", "-n", "1", "--json", home=home,
                            script=True).stdout)
    assert oldest[0]["id"] == listed[-1]["id"] or (oldest[0]["taken"] or oldest[0]["added"]) \
        == dates[-1]
    inserted = json.loads(run("ls", "--sort", "insertion", "--json", home=home,
                              script=True).stdout)
    assert sorted(h["id"] for h in inserted) == sorted(h["id"] for h in listed)
    bad = run("ls", "--sort", "newest", home=home, script=True, check=False)
    assert bad.returncode == 1 and "sort" in bad.stderr and "Traceback" not in bad.stderr


def test_text_search_never_loads_the_image_tower(tmp_path: Path, tiny_model_dir: Path) -> None:
    from .conftest import real_photos

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model, ignore=shutil.ignore_patterns("reference"))
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in real_photos(3):
        shutil.copy(p, photos / p.name)
    home = tmp_path / "H"
    run("index", str(photos), "--model-path", str(model), "--json", home=home)
    (model / "visual" / "model.onnx").write_bytes(b"not a graph: loading it fails")
    hits = search(home, "a dog", "-k", "2")  # twice: a cold and a cached text tower
    assert len(hits) == 2 and search(home, "a dog", "-k", "2") == hits
    # the image tower really is unusable now, so the search above never loaded it
    image = run("search", "--image", str(sorted(photos.glob("*.jpg"))[0]), home=home,
                script=True, check=False)
    assert image.returncode == 1 and "cannot load" in image.stderr


def test_text_search_imports_only_what_it_uses(indexed) -> None:
    """A cold text search is a one-off process: libraries it never calls must not be
    imported (pydantic is why pyproject bounds typer below 0.29, whose parameter
    parsing imports it; rich only prints tables; the others serve other commands)."""
    home, _ = indexed
    proc = run("search", "a dog", "-k", "2", "--json", home=home, script=True,
               env={"PYTHONPROFILEIMPORTTIME": "1"})
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                if line.startswith("import time:")}
    assert {"imgfind.cli", "onnxruntime", "tokenizers"} <= imported  # the report is real
    top = {name.split(".")[0] for name in imported}
    assert not top & {"pydantic", "rich", "httpx", "fastapi", "uvicorn", "cv2",
                      "huggingface_hub", "onnx", "pillow_heif", "torch"}, sorted(top)
    assert not imported & {"imgfind.sources", "imgfind.archives", "imgfind.fetch",
                           "imgfind.indexer"}


def test_commands_that_never_search_vectors_do_not_load_faiss(indexed) -> None:
    home, _ = indexed
    for args in (("text", "zebra", "--json"), ("ls", "-n", "2", "--json")):
        proc = run(*args, home=home, script=True, env={"PYTHONPROFILEIMPORTTIME": "1"})
        imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                    if line.startswith("import time:")}
        assert "imgfind.stores.vector_index" in imported  # the store is open
        assert "faiss" not in imported, args
