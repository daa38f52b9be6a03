"""Nothing silently ignored over REST: unknown fields and query parameters, bounded ints, ?k."""

from __future__ import annotations

import json

import pytest

from . import test_server
from .conftest import real_photos

# The served library and a fresh 6-photo collection, shared with test_server.
served, api, col = test_server.served, test_server.api, test_server.col
error_of = test_server.error_of


def unknown(r) -> str:
    assert r.status_code == 422, r.text
    assert error_of(r) == "unknown_field"
    return r.json()["error"]["message"]


def test_unknown_json_body_fields_are_422_naming_the_field(api, col) -> None:
    assert "'modle'" in unknown(api.post("/collections", json={"name": "x1", "modle": "a"}))
    assert "x1" not in [c["name"] for c in api.get("/collections").json()["collections"]]
    photo = real_photos(1)[0].read_bytes()
    import base64
    b64 = base64.b64encode(photo).decode()
    assert "'metdata'" in unknown(api.post(f"/collections/{col}/items",
                                           json={"image_b64": b64, "metdata": {"a": 1}}))
    assert "'kk'" in unknown(api.post(f"/collections/{col}/search",
                                      json={"text": "dog", "kk": 3}))
    assert "'ids2'" in unknown(api.post(f"/collections/{col}/items/delete",
                                        json={"ids": [], "ids2": []}))
    assert "'extra'" in unknown(api.post(f"/collections/{col}/items/batch",
                                         json={"items": [], "extra": 1}))
    assert "'queries.0.kk'" in unknown(api.post(f"/collections/{col}/search/batch",
                                     json={"queries": [{"text": "a", "kk": 2}]}))
    assert "'recursiv'" in unknown(api.post(f"/collections/{col}/jobs/index",
                                            json={"path": "x", "recursiv": False}))
    assert "'merj'" in unknown(api.patch(f"/collections/{col}/items/p0",
                                         json={"metadata": {}, "merj": True}))


def test_unknown_multipart_fields_are_422(api, col) -> None:
    p = real_photos(1)[0]
    r = api.post(f"/collections/{col}/items", files={"file": (p.name, p.read_bytes())},
                 data={"metadta": "{}"})
    assert "'metadta'" in unknown(r)
    r = api.post(f"/collections/{col}/search", files={"file": (p.name, p.read_bytes())},
                 data={"top": "3"})
    assert "'top'" in unknown(r)


def test_unknown_query_parameters_are_422(api, col) -> None:
    assert "'limt'" in unknown(api.get(f"/collections/{col}/items", params={"limt": 2}))
    assert "'x'" in unknown(api.get("/collections", params={"x": 1}))
    assert "'vec'" in unknown(api.get(f"/collections/{col}/items/p0", params={"vec": 1}))
    assert "'kk'" in unknown(api.get(f"/collections/{col}/text-search",
                                     params={"q": "a", "kk": 1}))
    # Declared parameters still work.
    assert len(api.get(f"/collections/{col}/items", params={"limit": 2}).json()["items"]) == 2


def test_batch_entry_with_unknown_field_fails_alone(api, col) -> None:
    import base64
    photos = [base64.b64encode(p.read_bytes()).decode() for p in real_photos(2, start=20)]
    r = api.post(f"/collections/{col}/items/batch",
                 json={"items": [{"image_b64": photos[0], "id": "ok1"},
                                 {"image_b64": photos[1], "id": "bad1", "tags": ["x"]}]})
    assert r.status_code == 200, r.text
    ok, bad = r.json()["results"]
    assert ok["id"] == "ok1" and ok.get("error") is None
    assert bad["code"] == "unknown_field" and "'tags'" in bad["error"]
    assert api.get(f"/collections/{col}/items/bad1").status_code == 404


def test_search_honours_k_in_the_query_string(api, col) -> None:
    r = api.post(f"/collections/{col}/search", params={"k": 3}, json={"text": "a dog"})
    assert r.status_code == 200, r.text
    assert len(r.json()["hits"]) == 3
    p = real_photos(1)[0]
    r = api.post(f"/collections/{col}/search", params={"k": 2},
                 files={"file": (p.name, p.read_bytes())})
    assert len(r.json()["hits"]) == 2
    # The body's k wins over the query string's.
    r = api.post(f"/collections/{col}/search", params={"k": 2}, json={"text": "a", "k": 4})
    assert len(r.json()["hits"]) == 4
    assert api.post(f"/collections/{col}/search", params={"k": 0},
                    json={"text": "a"}).status_code == 400


@pytest.mark.parametrize("query", [
    "items?offset=9223372036854775808", "items?offset=-1", "items?limit=99999999999999999999",
    "text-search?q=a&k=9223372036854775808", "text-search?q=a&k=0",
    "duplicates?threshold=nan", "duplicates?threshold=1e309",
])
def test_out_of_range_numbers_are_4xx(api, col, query: str) -> None:
    r = api.get(f"/collections/{col}/{query}")
    assert 400 <= r.status_code < 500, (query, r.status_code, r.text)
    json.loads(r.text)["error"]["code"]
