"""Browser tests of the search controls (issue 10, UI side): the minimum-score
threshold, the order of hits, "more like this" / "less like this" chips, OCR text in
the item view, and the duplicate review screen.

Real server on 127.0.0.1 over a real library of real photos, headless Chromium.
Screenshots: ``tests/artifacts/web-search-*.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests import web
from tests.conftest import real_photos
from tests.web import (
    LiveServer,
    card_ids,
    needs_chromium,
    open_ui,
    scores,
    settle,
    shot,
    url_param,
    wait_for_cards,
)

pytestmark = needs_chromium

TAKEN = ["2021:06:01 10:00:00", "2023:02:14 09:00:00", "2019:12:24 18:00:00",
         "2022:08:30 07:30:00", "2020:01:01 00:30:00", "2024:05:05 15:00:00"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    import imgfind
    from imgfind.server import create_app

    tmp = tmp_path_factory.mktemp("websearch")
    lib = imgfind.open(tmp / "home", model_path=tiny_model_dir)
    col = lib.create_collection("photos")
    photos = real_photos(16)
    ids = []
    for i, p in enumerate(photos):
        if i < len(TAKEN):
            exif = Image.Exif()
            exif.get_ifd(0x8769)[0x9003] = TAKEN[i]
            path = tmp / f"dated-{i}.jpg"
            Image.open(p).convert("RGB").save(path, "JPEG", exif=exif.tobytes(), quality=85)
            p = path
        ids.append(col.insert(str(p), metadata={"n": i}))
    # Duplicates: the same bytes twice, and a small, heavily compressed copy.
    dup = col.insert((tmp / "dated-0.jpg").read_bytes(), metadata={"copy": "bytes"},
                     keep_duplicates=True)
    Image.open(photos[1]).resize((250, 187)).save(tmp / "small.jpg", quality=35)
    small = col.insert(str(tmp / "small.jpg"), metadata={"copy": "small"})
    server = LiveServer(create_app(lib))
    yield {"lib": lib, "col": col, "ids": ids, "dup": dup, "small": small, "url": server.url}
    server.stop()
    lib.close()


@pytest.fixture(scope="module")
def browser():
    yield from web.launch()


@pytest.fixture
def page(browser):
    yield from web.page_for(browser)


def search(page, text: str) -> None:
    page.fill("#q", text)
    page.press("#q", "Enter")
    page.wait_for_selector("#gallery .card .score")
    settle(page)


def test_min_score_keeps_only_hits_scoring_at_least_it(page, env):
    open_ui(page, env["url"])
    search(page, "children playing")
    everything = scores(page)
    assert len(everything) == 18
    cut = round(sorted(everything)[len(everything) // 2], 3)
    assert page.is_visible("#min-score")
    with page.expect_request(lambda r: r.url.endswith("/search")) as req:
        page.fill("#min-score", str(cut))
        page.press("#min-score", "Enter")
    assert json.loads(req.value.post_data)["min_score"] == cut
    settle(page)
    page.wait_for_function("n => document.querySelectorAll('#gallery .card').length < n",
                           arg=len(everything))
    kept = scores(page)
    assert kept and all(s >= cut - 0.0005 for s in kept)
    assert kept == [s for s in everything if s >= cut - 0.0005][:len(kept)]
    assert url_param(page, "min") == str(cut)
    assert f"scoring ≥ {cut}" in page.text_content("#status")
    shot(page, "search-threshold")

    # Out of range or not a number: a plain message, no query.
    page.fill("#min-score", "high")
    page.press("#min-score", "Enter")
    message = page.text_content("#min-score-error")
    assert message == "The minimum score must be a number from -1 to 1."
    assert url_param(page, "min") == str(cut)
    # A threshold above every score: an empty state that says why.
    page.fill("#min-score", "0.9999")
    page.press("#min-score", "Enter")
    page.wait_for_selector("#empty:not([hidden])")
    assert "No results scoring 0.9999 or more" in page.text_content("#empty")


def test_sort_orders_hits_by_date_and_groups_them(page, env):
    open_ui(page, env["url"])
    search(page, "a photo")
    assert page.input_value("#sort") == "score"
    with page.expect_request(lambda r: r.url.endswith("/search")) as req:
        page.select_option("#sort", "-taken")
    assert json.loads(req.value.post_data)["sort"] == "-taken"
    settle(page)
    page.wait_for_selector("#gallery .group-head")
    col = env["col"]
    taken = [col.get(i).taken for i in card_ids(page)]
    # By date taken, falling back to the date added (today, for the undated photos).
    keys = [col.get(i).taken or col.get(i).added for i in card_ids(page)]
    assert keys == sorted(keys, reverse=True)
    assert [t for t in taken if t] == sorted((t for t in taken if t), reverse=True)
    assert url_param(page, "sort") == "-taken"
    heads = page.eval_on_selector_all("#gallery .group-head", "e => e.map(x => x.dataset.key)")
    assert heads[-2:] == ["2020-01-01", "2019-12-24"]
    shot(page, "search-sort")
    page.select_option("#sort", "taken")
    settle(page)
    page.wait_for_function("""first => document.querySelector('#gallery .card')?.dataset.id
                              === first""", arg=env["ids"][2])     # 2019 first
    page.select_option("#sort", "score")
    settle(page)
    assert url_param(page, "sort") is None
    got = scores(page)
    assert got == sorted(got, reverse=True)


def test_more_and_less_like_this_become_removable_chips(page, env):
    open_ui(page, env["url"])
    search(page, "a dog")
    plus, minus = card_ids(page)[2], card_ids(page)[5]
    card = page.locator(f'.card[data-id="{plus}"]')
    card.hover()
    with page.expect_request(lambda r: r.url.endswith("/search")) as req:
        card.locator('[data-action="more"]').click()
    body = json.loads(req.value.post_data)
    assert body["text"] == "a dog" and body["positive"] == [{"like": plus}]
    settle(page)
    assert plus not in card_ids(page)               # an example is not its own hit
    card = page.locator(f'.card[data-id="{minus}"]')
    card.hover()
    with page.expect_request(lambda r: r.url.endswith("/search")) as req:
        card.locator('[data-action="less"]').click()
    assert json.loads(req.value.post_data)["negative"] == [{"like": minus}]
    settle(page)
    chips = page.locator("#example-chips .chip")
    assert chips.count() == 2
    assert "More like" in chips.nth(0).inner_text() and "Less like" in chips.nth(1).inner_text()
    assert url_param(page, "pos") == plus and url_param(page, "neg") == minus
    shot(page, "search-chips")

    # The chips live in the URL: a reload keeps them; removing one searches again.
    page.reload()
    page.wait_for_selector("#example-chips .chip")
    settle(page)
    assert page.locator("#example-chips .chip").count() == 2
    page.locator("#example-chips .chip.neg button").click()
    settle(page)
    page.wait_for_function("() => document.querySelectorAll('#example-chips .chip').length === 1")
    assert url_param(page, "neg") is None and url_param(page, "pos") == plus
    page.go_back()                                    # the removal was a history entry
    page.wait_for_function("() => document.querySelectorAll('#example-chips .chip').length === 2")


def test_item_view_offers_more_and_less_like_this(page, env):
    open_ui(page, env["url"])
    search(page, "people")
    target = card_ids(page)[0]
    page.locator(f'.card[data-id="{target}"]').click()
    page.wait_for_selector("#item-view[open]")
    page.click("#item-more")
    page.wait_for_selector("#item-view", state="hidden")
    page.wait_for_selector("#example-chips .chip.pos")
    settle(page)
    assert url_param(page, "pos") == target and url_param(page, "item") is None


def test_item_view_shows_the_text_read_in_the_image(page, env, tmp_path):
    pytest.importorskip("rapidocr_onnxruntime")
    import imgfind
    from imgfind.server import create_app
    from tests.test_ocr import _signed

    lib = imgfind.open(tmp_path / "home")
    col = lib.create_collection("signs", model="phash", ocr=True)
    (data, words), = _signed(real_photos(1, start=300))
    col.insert(data, id="sign", name="sign.jpg")
    col.run_ocr()
    text = col.get("sign").ocr["text"]
    assert any(w.lower() in text.lower() for w in words)
    server = LiveServer(create_app(lib))
    try:
        open_ui(page, server.url, "#c=signs&item=sign")
        page.wait_for_selector("#item-view[open]")
        section = page.locator("#item-details section[aria-label='Text in image']")
        assert section.locator(".ocr-text").inner_text() == text
        shot(page, "search-ocr-item")
    finally:
        server.stop()
        lib.close()


def test_duplicate_review_keeps_the_chosen_one_after_a_count(page, env):
    col = env["col"]
    before = col.count()
    open_ui(page, env["url"])
    page.click("#collection-menu summary")
    page.click("#menu-duplicates")
    page.wait_for_selector("#duplicates-view .dup-group")
    assert url_param(page, "view") == "duplicates"
    page.fill("#dup-threshold", "0.995")
    page.dispatch_event("#dup-threshold", "change")
    page.wait_for_function("""() => [...document.querySelectorAll('.dup-group')]
        .some(g => g.querySelectorAll('.dup-tile').length === 2
                   && g.querySelector('.tier').textContent === 'exact')""")
    group = page.locator(".dup-group", has=page.locator(".tier", has_text="exact")).first
    pair = group.locator(".dup-tile").evaluate_all("e => e.map(x => x.dataset.id)")
    assert sorted(pair) == sorted([env["ids"][0], env["dup"]])
    shot(page, "search-duplicates")
    keep = env["dup"]
    group.locator(f'.dup-tile[data-id="{keep}"] input[type=radio]').check()
    with page.expect_request(lambda r: r.url.endswith("/duplicates/resolve")) as req:
        group.locator("header .btn").click()
    assert json.loads(req.value.post_data) == {
        "groups": [{"keep": keep, "ids": pair}], "dry_run": True}
    page.wait_for_selector("#confirm-view[open]")
    text = page.text_content("#confirm-view")
    assert "Delete 1 image?" in text and "1 group keeps one image each" in text
    shot(page, "search-duplicates-confirm")
    page.click("#confirm-view button[value=cancel]")
    assert col.count() == before                     # the dry run deleted nothing
    group.locator("header .btn").click()
    page.click("#confirm-ok")
    page.wait_for_function("id => !document.querySelector(`.dup-tile[data-id='${id}']`)",
                           arg=env["ids"][0])
    assert col.count() == before - 1
    assert col.get(keep).metadata == {"copy": "bytes"}
    page.go_back()                                   # Back leaves the screen
    page.wait_for_selector("#duplicates-view", state="hidden")
    wait_for_cards(page, before - 1)


def test_resolve_all_groups_after_the_servers_dry_run_count(page, env):
    col = env["col"]
    open_ui(page, env["url"], "#c=photos&view=duplicates")
    page.fill("#dup-threshold", "0.995")
    page.dispatch_event("#dup-threshold", "change")
    page.wait_for_function("() => document.querySelector('#dup-status').textContent"
                           ".includes('group')")
    page.wait_for_selector("#duplicates-view .dup-group")
    groups = page.locator(".dup-group").evaluate_all("""gs => gs.map(g => ({
        keep: g.querySelector('input[type=radio]:checked').value,
        ids: [...g.querySelectorAll('.dup-tile')].map(t => t.dataset.id)}))""")
    extra = sum(len(g["ids"]) - 1 for g in groups)
    before = col.count()
    page.click("#dup-resolve-all")
    page.wait_for_selector("#confirm-view[open]")
    assert f"Delete {extra} image" in page.text_content("#confirm-title")
    page.click("#confirm-ok")
    page.wait_for_function("() => !document.querySelector('.dup-group')")
    assert col.count() == before - extra
    assert all(col.get(g["keep"]) for g in groups)
