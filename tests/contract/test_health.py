"""check() / index_info() / rebuild() in the common shape documented in stores/base.py."""

from __future__ import annotations

from .helpers import clustered, records


def test_check_index_info_and_rebuild_share_one_shape(backend, store):
    x = clustered(50)
    store.put(records(x))
    c = store.check()
    assert set(c) >= {"ok", "items", "backend", "index", "problems", "details"}
    assert c["ok"] is True and c["problems"] == [] and c["items"] == 50
    assert isinstance(c["backend"], str) and isinstance(c["details"], dict)
    info = store.index_info()
    assert set(info) >= {"backend", "kind", "size", "details"}
    assert info["backend"] == c["backend"] and info["size"] == 50
    assert c["index"]["in_step"] is True and c["index"]["kind"] == info["kind"]
    r = store.rebuild()
    assert set(r) >= {"items", "backend", "index", "seconds", "details"}
    assert r["items"] == 50 and r["index"]["size"] == 50
    store.delete(["r0"])
    c = store.check()
    assert c["ok"] and c["items"] == 49 and c["index"]["size"] == 49
    assert [h[0] for h in store.search(x[1:2], 1)[0]] == ["r1"]
