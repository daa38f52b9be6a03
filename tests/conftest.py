"""Shared fixtures: a tiny random-weight CLIP model in the real folder layout, and real photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATASETS = SHARED / "datasets"
FLICKR = DATASETS / "flickr8k-1k" / "images"
IMAGENET = DATASETS / "imagenet-sample-1000"


def real_photos(n: int, start: int = 0) -> list[Path]:
    """The first ``n`` Flickr8k photos (sorted, so tests are repeatable)."""
    photos = sorted(FLICKR.glob("*.jpg"))[start:start + n]
    if len(photos) < n:
        pytest.skip(f"needs {n} photos in {FLICKR}")
    return photos


@pytest.fixture(scope="session", autouse=True)
def _text_tower_cache(tmp_path_factory: pytest.TempPathFactory):
    """Text tower verdicts (embedders.text_trim) go to a temporary folder, not ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMGFIND_CACHE", str(tmp_path_factory.mktemp("imgfind-cache")))
        yield


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty IMGFIND_CACHE for this test alone (the session shares one otherwise)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("IMGFIND_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight CLIP model folder, loaded by the same code as a real one."""
    from imgfind.testing import make_model

    return make_model(tmp_path_factory.mktemp("models") / "tiny-clip")


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """A folder of 12 real photos (copies, so tests may change them)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in real_photos(12):
        shutil.copy(p, folder / p.name)
    return folder


@pytest.fixture
def library(tmp_path: Path, tiny_model_dir: Path):
    import imgfind

    lib = imgfind.open(tmp_path / "home", model_path=tiny_model_dir)
    yield lib
    lib.close()
