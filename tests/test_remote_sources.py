"""Indexing from fsspec URLs (memory:// here; s3://, gs://... go the same way)."""

from __future__ import annotations

import time

import fsspec
import pytest

from imgfind.errors import NotSupported

from .conftest import real_photos


@pytest.fixture
def bucket():
    fs = fsspec.filesystem("memory")
    root = f"/bucket-{time.time_ns()}"
    for p in real_photos(5):
        fs.pipe(f"{root}/photos/{p.name}", p.read_bytes())
    fs.pipe(f"{root}/photos/notes.txt", b"not an image")
    fs.pipe(f"{root}/photos/nested/deep.jpg", real_photos(1, start=10)[0].read_bytes())
    yield fs, root
    fs.rm(root, recursive=True)


def test_index_fsspec_prefix_incrementally(library, bucket):
    fs, root = bucket
    col = library.create_collection("default")
    url = f"memory://{root}/photos/"

    first = col.add(url)
    assert (first.indexed, first.errors) == (6, [])
    items = {i.source: i for i in col.items(limit=100)}
    deep = items[f"memory://{root}/photos/nested/deep.jpg"]
    assert deep.file["name"] == "deep.jpg" and deep.file["size"] > 1000
    assert "mtime_ns" in deep.file

    again = col.add(url)
    assert (again.indexed, again.updated, again.skipped, again.removed) == (0, 0, 6, 0)

    fs.rm(f"{root}/photos/nested/deep.jpg")
    victim = sorted(items)[0]
    time.sleep(0.01)  # the memory filesystem's clock must move for the object to look new
    fs.pipe(victim.removeprefix("memory://"), real_photos(1, start=20)[0].read_bytes())
    third = col.add(url)
    assert (third.indexed, third.updated, third.removed) == (0, 1, 1)
    assert {i.source: i.id for i in col.items(limit=100)}[victim] == items[victim].id


def test_fsspec_object_over_the_byte_limit_fails_alone(tmp_path, tiny_model_dir, bucket):
    import imgfind
    from imgfind.imageio import Limits

    fs, root = bucket
    big = max(real_photos(5), key=lambda p: p.stat().st_size)
    with imgfind.open(tmp_path / "h", model_path=tiny_model_dir,
                      limits=Limits(max_bytes=big.stat().st_size - 1)) as lib:
        rep = lib.create_collection("default").add(f"memory://{root}/photos/")
    assert [e["code"] for e in rep.errors] == ["image_too_large"]
    assert rep.errors[0]["source"].endswith(big.name) and rep.indexed == 5


def test_unknown_filesystem_is_a_typed_error(library):
    with pytest.raises(NotSupported, match="nosuchfs://"):
        library.create_collection("default").add("nosuchfs://bucket/photos/")
