"""The field catalog (``GET /collections/{c}/catalog``) and the filter picker built on it.

The catalog covers every item, not a sample, and follows writes; the picker offers
each field with conditions fitting its type and says in words what is wrong with a
value. Real server on 127.0.0.1, real library, headless Chromium for the picker.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests import web
from tests.web import LiveServer, needs_chromium, open_ui, settle, shot, wait_for_ids

N = 620      # more than the old /fields sample of 500 items


def tiny_png(i: int) -> bytes:
    img = Image.new("RGB", (8, 8), (i % 256, (i * 7) % 256, (i * 13) % 256))
    img.putpixel((i % 8, (i // 8) % 8), (255 - i % 256, 0, 0))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    import imgfind
    from imgfind.server import create_app

    tmp = tmp_path_factory.mktemp("webfilters")
    lib = imgfind.open(tmp / "home", model_path=tiny_model_dir)
    col = lib.create_collection("photos")
    entries = [{"image": tiny_png(i), "metadata": {"n": i, "kind": "even" if i % 2 == 0 else "odd",
                                                   "tags": ["a", "b"] if i % 3 == 0 else ["c"],
                                                   "flag": i % 5 == 0}}
               for i in range(N)]
    # Only the last item has this key: a sample of the first 500 would never see it.
    entries[-1]["metadata"]["rare"] = "only-me"
    results = col.insert_batch(entries, keep_duplicates=True)
    assert all(r.ok for r in results)
    server = LiveServer(create_app(lib))
    yield {"lib": lib, "col": col, "ids": [r.id for r in results], "url": server.url}
    server.stop()
    lib.close()


def catalog(env) -> dict:
    r = httpx.get(f"{env['url']}/api/collections/photos/catalog", timeout=60)
    assert r.status_code == 200
    return {f["key"]: f for f in r.json()["fields"]}


def test_catalog_covers_every_item_with_types_and_counts(env):
    fields = catalog(env)
    assert fields["metadata.rare"]["count"] == 1
    assert fields["metadata.rare"]["values"] == ["only-me"]
    assert fields["metadata.n"]["type"] == "number" and fields["metadata.n"]["count"] == N
    assert fields["metadata.kind"]["type"] == "string"
    assert sorted(fields["metadata.kind"]["values"]) == ["even", "odd"]
    assert fields["metadata.tags"]["type"] == "list"
    assert sorted(fields["metadata.tags"]["values"]) == ["a", "b", "c"]
    assert fields["metadata.flag"]["type"] == "boolean"
    assert fields["width"]["type"] == "number" and fields["added"]["type"] == "date"
    assert fields["format"]["values"] == ["PNG"]


def test_catalog_follows_inserts_edits_and_deletes(env):
    col = env["col"]
    assert "metadata.fresh" not in catalog(env)
    fresh = io.BytesIO()
    Image.new("RGB", (9, 9), (1, 2, 3)).save(fresh, "PNG")
    new = col.insert(fresh.getvalue(), metadata={"fresh": 1.5})
    assert catalog(env)["metadata.fresh"] == {"key": "metadata.fresh", "type": "number",
                                              "count": 1, "values": [1.5]}
    col.set_metadata(env["ids"][3], {"edited": "yes"}, merge=True)
    assert catalog(env)["metadata.edited"]["values"] == ["yes"]
    # Deleting the only item with a key takes the key out of the catalog.
    col.delete(new)
    col.delete(env["ids"][-1])
    fields = catalog(env)
    assert "metadata.fresh" not in fields and "metadata.rare" not in fields
    assert fields["metadata.n"]["count"] == N - 1
    assert httpx.get(f"{env['url']}/api/collections/nope/catalog").status_code == 404


@pytest.fixture(scope="module")
def browser():
    yield from web.launch()


@pytest.fixture
def page(browser):
    yield from web.page_for(browser)


def options(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(f"{selector} option", "els => els.map(e => e.value)")


@needs_chromium
def test_picker_offers_every_field_with_fitting_conditions(page, env):
    open_ui(page, env["url"])
    page.click("#add-filter")
    keys = options(page, ".filter >> nth=0 >> .f-key")
    assert set(catalog(env)) <= set(keys)
    groups = page.eval_on_selector_all(".filter .f-key optgroup", "e => e.map(g => g.label)")
    assert groups[:2] == ["Image", "Your metadata"]
    label = page.eval_on_selector(".filter .f-key option[value='metadata.n']", "e => e.textContent")
    assert label == f"n · {N - 1:,}"

    conditions = {}
    for key in ("metadata.n", "metadata.kind", "metadata.tags", "metadata.flag", "added"):
        page.select_option(".filter >> nth=0 >> .f-key", key)
        conditions[key] = page.eval_on_selector_all(".filter .f-op option",
                                                    "e => e.map(o => o.textContent)")
    assert conditions["metadata.n"] == ["is", "is not", "more than", "at least", "less than",
                                        "at most", "is set"]
    assert conditions["metadata.kind"] == ["is", "is not", "contains", "is set"]
    assert conditions["metadata.tags"] == ["includes", "is set"]
    assert conditions["metadata.flag"] == ["is", "is set"]
    assert conditions["added"] == ["on or after", "before", "is set"]
    assert page.eval_on_selector(".filter .f-value", "e => e.type") == "date"
    assert not any("$" in c for cs in conditions.values() for c in cs)

    # A list field filters by membership, a boolean by yes/no.
    page.select_option(".filter >> nth=0 >> .f-key", "metadata.tags")
    page.fill(".filter >> nth=0 >> .f-value", "b")
    page.press(".filter >> nth=0 >> .f-value", "Enter")
    settle(page)
    page.wait_for_function("() => document.querySelector('#status').textContent"
                           ".includes('matching the filters')")
    total = env["col"].count(where={"tags": {"$contains": "b"}})
    assert f"of {total} images" in page.text_content("#status")
    page.select_option(".filter >> nth=0 >> .f-key", "metadata.flag")
    page.select_option(".filter >> nth=0 >> .f-value", "true")
    settle(page)
    total = env["col"].count(where={"flag": True})
    page.wait_for_function("t => document.querySelector('#status').textContent.includes(t)",
                           arg=f"of {total} images")
    shot(page, "filters-catalog")


@needs_chromium
def test_picker_says_in_words_what_is_wrong_with_a_value(page, env):
    open_ui(page, env["url"])
    page.click("#add-filter")
    page.select_option(".filter >> nth=0 >> .f-key", "width")
    page.select_option(".filter >> nth=0 >> .f-op", "$gt")
    page.wait_for_function("() => location.hash.includes('width')")
    settle(page)
    before = page.evaluate("location.hash")
    page.fill(".filter >> nth=0 >> .f-value", "wide")
    page.press(".filter >> nth=0 >> .f-value", "Enter")
    error = page.locator(".filter .f-error")
    error.wait_for()
    assert error.inner_text() == "Width must be a number"
    assert page.locator(".filter.invalid").count() == 1
    assert page.evaluate("location.hash") == before           # no query was sent
    shot(page, "filters-message")
    page.fill(".filter >> nth=0 >> .f-value", "8")
    page.press(".filter >> nth=0 >> .f-value", "Enter")
    page.wait_for_selector(".filter .f-error", state="hidden")
    wait_for_ids(page, set())                                 # all are 8 px wide
    page.fill(".filter >> nth=0 >> .f-value", "7")
    page.press(".filter >> nth=0 >> .f-value", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#gallery .card').length > 0")


def test_catalog_walk_reads_each_item_once_across_shared_timestamps(tmp_path, tiny_model_dir):
    """A batch shares one ``added`` time across page boundaries; singles follow it."""
    import imgfind
    from imgfind.server import catalog as cat

    lib = imgfind.open(tmp_path / "home", model_path=tiny_model_dir)
    col = lib.create_collection("walk")
    col.insert_batch([{"image": tiny_png(i), "metadata": {"n": i}}
                      for i in range(cat.PAGE * 2 + 7)], keep_duplicates=True)
    for i in range(5):
        col.insert(tiny_png(i), metadata={"n": i, "solo": True}, keep_duplicates=True)
    walked = [it.id for page in cat.Catalog()._pages(col, None) for it in page]
    assert sorted(walked) == sorted(it.id for it in col.items(limit=10_000))
    assert len(walked) == len(set(walked)) == cat.PAGE * 2 + 12
    fields = {f["key"]: f for f in cat.Catalog().read(col)["fields"]}
    assert fields["metadata.n"]["count"] == cat.PAGE * 2 + 12
    assert fields["metadata.solo"]["count"] == 5
    lib.close()
