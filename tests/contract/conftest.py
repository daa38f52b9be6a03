"""The store contract: one behaviour suite, run against every backend in BACKENDS.

A backend is a context-manager factory ``(request, folder) -> Backend``; the
suite creates uniquely named collections in it and drops them afterwards, so
one backend instance (one Milvus Lite server, say) serves the whole session.
Adding a backend is one line in BACKENDS, e.g.::

    pytest.param(milvus_lite, id="milvus-lite", marks=needs_milvus),

where ``needs_milvus`` skips when pymilvus is not installed. Tests here use
only the protocol in imgfind/stores/base.py; SQLite internals stay in
tests/test_store.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from imgfind.stores import Backend, CollectionInfo, CollectionStore, StoreOptions, open_backend
from tests.milvus_util import milvus_server, needs_milvus

from .helpers import DIM

BackendFactory = Callable[[pytest.FixtureRequest, Path], AbstractContextManager[Backend]]


@contextmanager
def sqlite(request: pytest.FixtureRequest, folder: Path) -> Iterator[Backend]:
    # Low thresholds: the suite's few thousand items exercise the IVF path too.
    b = open_backend(folder, StoreOptions(flat_threshold=2000, auto_index_min=500))
    yield b
    b.close()


@contextmanager
def milvus_lite_file(request: pytest.FixtureRequest, folder: Path) -> Iterator[Backend]:
    """Milvus Lite embedded in this process, through the store URI."""
    b = open_backend(folder, store=f"milvus://{folder}/m.db")
    yield b
    b.close()


@pytest.fixture(scope="session")
def milvus_server_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with milvus_server(tmp_path_factory.mktemp("milvus-server")) as port:
        yield port


@contextmanager
def milvus_lite_server(request: pytest.FixtureRequest, folder: Path) -> Iterator[Backend]:
    """A Milvus Lite gRPC server (python -m imgfind.testing milvus-server): the network
    client path of a Milvus cluster."""
    port = request.getfixturevalue("milvus_server_port")
    b = open_backend(folder, store=f"milvus://127.0.0.1:{port}")
    yield b
    b.close()


BACKENDS: list = [
    pytest.param(sqlite, id="sqlite"),
    pytest.param(milvus_lite_file, id="milvus-lite-file", marks=needs_milvus),
    pytest.param(milvus_lite_server, id="milvus-lite-server", marks=needs_milvus),
]

_names = itertools.count()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    with request.param(request, tmp_path_factory.mktemp("contract")) as b:
        yield b


@pytest.fixture
def new_name(backend: Backend) -> Iterator[Callable[[], str]]:
    """Unique collection names; every collection named by it is dropped after the test."""
    made: list[str] = []

    def make() -> str:
        made.append(f"contract{next(_names)}")
        return made[-1]

    yield make
    existing = {c.name for c in backend.collections()}
    for name in made:
        if name in existing:
            backend.drop(name)


@pytest.fixture
def make_store(backend: Backend, new_name: Callable[[], str]) -> Callable[..., CollectionStore]:
    def make(dim: int = DIM) -> CollectionStore:
        return backend.create(CollectionInfo(name=new_name(), model="toy", dim=dim))
    return make


@pytest.fixture
def store(make_store: Callable[..., CollectionStore]) -> CollectionStore:
    return make_store()
