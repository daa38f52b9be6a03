"""Backends: create, open, list, drop; bad names and infos are typed errors."""

from __future__ import annotations

import pytest

from imgfind.errors import AlreadyExists, InvalidInput, NotFound
from imgfind.stores import CollectionInfo

from .helpers import DIM


def test_create_open_list_drop(backend, new_name):
    name = new_name()
    info = CollectionInfo(name=name, model="ViT-B-32", dim=DIM, model_path="/m")
    s = backend.create(info)
    assert s.info.name == name and s.info.created and s.info.dim == DIM
    with pytest.raises(AlreadyExists):
        backend.create(info)
    listed = {c.name: c for c in backend.collections()}
    assert (listed[name].model, listed[name].dim, listed[name].model_path) == (
        "ViT-B-32", DIM, "/m")
    assert backend.open(name).info.name == name
    backend.drop(name)
    assert name not in {c.name for c in backend.collections()}
    with pytest.raises(NotFound):
        backend.open(name)
    with pytest.raises(NotFound):
        backend.drop(name)


def test_a_dropped_name_starts_empty(backend, new_name):
    import numpy as np

    from imgfind.stores import Record

    name = new_name()
    s = backend.create(CollectionInfo(name=name, model="toy", dim=4))
    s.put([Record(id="a", source="/a.jpg", vector=np.ones(4, np.float32))])
    backend.drop(name)
    again = backend.create(CollectionInfo(name=name, model="toy", dim=4))
    assert again.count() == 0 and again.get(["a"]) == [None]


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../x", "a b", "x" * 65, "é"])
def test_bad_collection_names(backend, name):
    with pytest.raises(InvalidInput):
        backend.create(CollectionInfo(name=name, model="toy", dim=4))
    with pytest.raises(InvalidInput):
        backend.open(name)


def test_bad_collection_info(backend, new_name):
    with pytest.raises(InvalidInput):
        backend.create(CollectionInfo(name=new_name(), model="toy", dim=0))
    with pytest.raises(InvalidInput):
        backend.create(CollectionInfo(name=new_name(), model="", dim=4))
