"""Store URIs and the backend registry: library, environment and the installed CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

import imgfind
from imgfind import stores
from imgfind.errors import InvalidInput
from imgfind.stores import SQLiteBackend, StoreSpec, open_backend, parse_store_uri


@pytest.mark.parametrize("uri, expect", [
    (None, {"backend": "sqlite"}),
    ("", {"backend": "sqlite"}),
    ("sqlite", {"backend": "sqlite"}),
    ("milvus:///tmp/x/m.db", {"backend": "milvus", "path": Path("/tmp/x/m.db"),
                              "address": "/tmp/x/m.db", "host": None}),
    ("milvus://127.0.0.1:19530", {"backend": "milvus", "host": "127.0.0.1", "port": 19530,
                                  "secure": False, "address": "http://127.0.0.1:19530",
                                  "prefix": "imgfind_", "index": "auto"}),
    ("milvus+https://in01.zillizcloud.com:443/?db=photos&prefix=lib1_&shards=4&replicas=2"
     "&index=hnsw", {"secure": True, "address": "https://in01.zillizcloud.com:443",
                     "db": "photos", "prefix": "lib1_", "shards": 4, "replicas": 2,
                     "index": "HNSW"}),
    ("MILVUS://[::1]:19530", {"host": "::1", "address": "http://[::1]:19530"}),
    ("milvus:///abs/m.db?prefix=&index=IVF_SQ8", {"prefix": "", "index": "IVF_SQ8"}),
])
def test_good_uris(uri, expect):
    spec = parse_store_uri(uri, environ={})
    for key, value in expect.items():
        assert getattr(spec, key) == value, key


def test_token_comes_from_the_environment_and_is_not_shown():
    spec = parse_store_uri("milvus://h:1", environ={"IMGFIND_MILVUS_TOKEN": "root:Milvus"})
    assert spec.token == "root:Milvus" and "Milvus'" not in repr(spec)
    assert parse_store_uri("milvus:///a/m.db", environ={"IMGFIND_MILVUS_TOKEN": "t"}).token \
        is None


@pytest.mark.parametrize("uri, fragment", [
    ("postgres://h:1", "unknown store 'postgres'"),
    ("sqlite:///tmp/x", "sqlite takes no path"),
    ("milvus://m.db", "needs HOST:PORT"),
    ("milvus://tmp/m.db", "three slashes"),
    ("milvus://h", "needs HOST:PORT"),
    ("milvus://h:99999", "out of range"),
    ("milvus://h:1/photos", "?db=NAME"),
    ("milvus://user:pw@h:1", "IMGFIND_MILVUS_TOKEN"),
    ("milvus+https:///a/m.db", "needs HOST:PORT"),
    ("milvus:///a/", "is a file"),
    ("milvus:///a/m.db?db=x", "one database"),
    ("milvus://h:1?shard=2", "unknown parameter 'shard'"),
    ("milvus://h:1?shards=0", "from 1 to 64"),
    ("milvus://h:1?shards=two", "from 1 to 64"),
    ("milvus://h:1?replicas=1&replicas=2", "given twice"),
    ("milvus://h:1?index=btree", "index must be one of"),
    ("milvus://h:1?db=1x", "db must be"),
    ("milvus://h:1?prefix=a-b", "prefix must be"),
    ("milvus://h:1#frag", "fragment"),
    ("m.db", "unknown store"),
])
def test_bad_uris_name_the_problem(uri, fragment):
    with pytest.raises(InvalidInput) as e:
        parse_store_uri(uri, environ={})
    assert fragment in e.value.message and uri.split("?")[0] in e.value.message


def test_backends_are_injected_by_name(tmp_path, monkeypatch):
    calls = []

    def fake(home, spec, options, blobs):
        calls.append((home, spec, options, blobs))
        return SQLiteBackend(home)

    monkeypatch.setitem(stores._BACKENDS, "milvus", fake)
    b = open_backend(tmp_path, store="milvus:///x/m.db?shards=2", blobs="s3://bucket/t")
    home, spec, options, blobs = calls[0]
    assert home == tmp_path and spec.path == Path("/x/m.db") and spec.shards == 2
    assert blobs == "s3://bucket/t" and options is None
    b.close()
    # A StoreSpec works as well as its text.
    open_backend(tmp_path, store=StoreSpec("milvus", "x", path=Path("/y.db"))).close()
    assert calls[1][1].path == Path("/y.db")


def test_a_missing_backend_module_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(stores._BACKENDS, "milvus", "imgfind.stores.no_such_module:open")
    with pytest.raises(InvalidInput, match=r"pip install 'imgfind\[milvus\]'"):
        open_backend(tmp_path, store="milvus:///x/m.db")


def test_blobs_with_the_sqlite_store_is_refused_not_ignored(tmp_path):
    with pytest.raises(InvalidInput, match="applies to the milvus store"):
        open_backend(tmp_path, blobs=str(tmp_path / "blobs"))


def test_library_takes_store_and_the_environment(tmp_path, monkeypatch):
    with imgfind.open(tmp_path, store="sqlite") as lib:
        assert isinstance(lib.backend, SQLiteBackend)
    monkeypatch.setenv("IMGFIND_STORE", "milvus://nohost")
    with pytest.raises(InvalidInput, match="needs HOST:PORT"):
        imgfind.open(tmp_path)
    with imgfind.open(tmp_path, store="sqlite") as lib:       # the argument wins
        assert lib.collections() == []


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("IMGFIND_STORE", "IMGFIND_BLOBS")}
    full.update(env or {})
    return subprocess.run(["imgfind", *args], capture_output=True, text=True, env=full,
                          timeout=120)


def test_cli_store_option_before_or_after_the_command_and_env(tmp_path):
    home = str(tmp_path / "h")
    r = run("--home", home, "--store", "sqlite", "collections", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == [], r.stderr
    r = run("--home", home, "collections", "--json", "--store", "sqlite")
    assert r.returncode == 0 and json.loads(r.stdout) == [], r.stderr
    for args, env in ((["--store", "milvus://h"], None), (["--store=milvus://h"], None),
                      ([], {"IMGFIND_STORE": "milvus://h"})):
        r = run("--home", home, "collections", *args, env=env)
        assert r.returncode == 1, (args, r)
        assert r.stderr.startswith("error: bad store URI 'milvus://h'") and \
            "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) <= 2
    r = run("--home", home, "--blobs", str(tmp_path / "b"), "collections")
    assert r.returncode == 1 and "applies to the milvus store" in r.stderr


def test_serve_takes_the_store_option(tmp_path):
    r = run("--home", str(tmp_path), "serve", "--port", "1", "--store", "nope://x")
    assert r.returncode == 1 and "unknown store 'nope'" in r.stderr and "Traceback" not in r.stderr
