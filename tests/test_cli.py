"""The CLI as a user runs it: real subprocesses, real store, real photos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, home: Path, env: dict | None = None, check: bool = True,
        script: bool = False) -> subprocess.CompletedProcess:
    cmd = ([shutil.which("imgfind") or "imgfind"] if script
           else [sys.executable, "-m", "imgfind"]) + ["--home", str(home), *args]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("IMGFIND_HOME", None)
    full_env.pop("IMGFIND_MODEL_PATH", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def indexed(tmp_path, photo_dir, tiny_model_dir):
    home = tmp_path / "H"
    (photo_dir / "notes.txt").write_text("not an image")  # ignored by extension
    (photo_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    proc = run("index", str(photo_dir), "--model-path", str(tiny_model_dir), "--json", home=home,
               check=False)
    assert proc.returncode == 3, proc.stderr  # one item failed
    return home, photo_dir, json.loads(proc.stdout)


def test_index_report_and_rerun(indexed, tiny_model_dir):
    home, photos, report = indexed
    assert report["indexed"] == 12 and report["skipped"] == 0
    assert [e["source"] for e in report["errors"]] == [str((photos / "broken.jpg").resolve())]
    assert report["errors"][0]["error"]
    again = json.loads(run("index", str(photos), "--model-path", str(tiny_model_dir), "--json",
                           home=home, check=False).stdout)
    assert again["indexed"] == 0 and again["skipped"] == 12


def test_search_by_image_finds_itself(indexed):
    home, photos, _ = indexed
    x = sorted(photos.glob("*.jpg"))[5]
    hits = json.loads(run("search", "--image", str(x), "-k", "5", "--json", home=home).stdout)
    assert len(hits) == 5
    assert {"id", "score", "source"} <= set(hits[0])
    assert hits[0]["source"] == str(x.resolve())
    table = run("search", "--image", str(x), "-k", "2", home=home).stdout
    assert str(x.resolve()) in table


def test_search_text_with_filter(indexed, tiny_model_dir, tmp_path):
    home, photos, _ = indexed
    from PIL import Image

    png = tmp_path / "extra.png"
    Image.open(sorted(photos.glob("*.jpg"))[0]).save(png)
    run("index", str(png), "--model-path", str(tiny_model_dir), home=home)
    hits = json.loads(run("search", "a dog", "--where", '{"format": "JPEG"}', "-k", "50",
                          "--json", home=home).stdout)
    assert len(hits) == 12 and all(h["item"]["format"] == "JPEG" for h in hits)
    hits = json.loads(run("search", "a dog", "--where", '{"format": "PNG"}', "--json",
                          home=home).stdout)
    assert [h["source"] for h in hits] == [str(png.resolve())]


def test_check_get_rm_collections(indexed):
    home, photos, _ = indexed
    report = json.loads(run("check", "--json", home=home).stdout)
    assert report["ok"] is True
    hits = json.loads(run("search", "--image", str(sorted(photos.glob("*.jpg"))[0]), "--json",
                          home=home).stdout)
    item = json.loads(run("get", hits[0]["id"], "--json", home=home).stdout)
    assert item["id"] == hits[0]["id"] and item["format"] == "JPEG" and item["sha256"]
    cols = json.loads(run("collections", "--json", home=home).stdout)
    assert cols[0]["name"] == "default" and cols[0]["count"] == 12
    run("rm", hits[0]["id"], home=home)
    missing = run("get", hits[0]["id"], home=home, check=False)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert hits[0]["id"] in missing.stderr
    cols = json.loads(run("collections", "--json", home=home).stdout)
    assert cols[0]["count"] == 11


def test_env_home_collection_option_and_script(indexed, tiny_model_dir, tmp_path):
    home, photos, _ = indexed
    one = sorted(photos.glob("*.jpg"))[0]
    run("--collection", "other", "index", str(one), "--model-path", str(tiny_model_dir),
        home=home)
    env = {"IMGFIND_HOME": str(home)}
    proc = subprocess.run([shutil.which("imgfind") or "imgfind", "collections", "--json"],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(c["name"] for c in json.loads(proc.stdout)) == ["default", "other"]
    hits = json.loads(run("search", "--image", str(one), "--collection", "other", "--json",
                          home=home, script=True).stdout)
    assert len(hits) == 1


def test_user_errors_have_no_traceback(tmp_path, tiny_model_dir, indexed):
    home, _, _ = indexed
    cases = [
        ("search", "a dog", "--where", "{not json"),
        ("search", "a dog", "--where", '{"format": {"$bogus": 1}}'),
        ("search", "--image", str(tmp_path / "nope.jpg")),
        ("search",),
        ("--collection", "ghost", "search", "x"),
        ("get", "no-such-id"),
    ]
    for args in cases:
        proc = run(*args, home=home, check=False)
        assert proc.returncode != 0, args
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
        assert proc.stderr.strip(), args


def test_offline_default_model_error_names_the_fix(tmp_path, photo_dir):
    proc = run("index", str(photo_dir), home=tmp_path / "H", check=False,
               env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "--model-path" in proc.stderr


def test_dupes_and_models(tmp_path, tiny_model_dir):
    folder = tmp_path / "d"
    folder.mkdir()
    from .conftest import real_photos

    p = real_photos(3)
    for name, src in (("a.jpg", p[0]), ("b.jpg", p[1]), ("c.jpg", p[2])):
        shutil.copy(src, folder / name)
    home = tmp_path / "H"
    run("index", str(folder), "--model-path", str(tiny_model_dir), "--keep-duplicates",
        home=home)
    shutil.copy(p[0], folder / "copy.jpg")
    run("index", str(folder), "--model-path", str(tiny_model_dir), "--keep-duplicates",
        home=home)
    groups = json.loads(run("dupes", "--json", home=home).stdout)
    exact = [g for g in groups if g["exact"]]
    assert len(exact) == 1 and len(exact[0]["ids"]) == 2
    models = json.loads(run("models", "--json", home=home).stdout)
    assert len(models) >= 5 and all("name" in m and "dim" in m for m in models)
