"""End-to-end tests of the web UI: headless Chromium against a real server on 127.0.0.1.

The server is the real app (``imgfind.server.create_app``) over a real library holding
real photos, embedded by the tiny random-weight model: tests check structure and
behaviour (cards, counts, the query image ranking first for itself), never relevance.
Screenshots of each main view go to ``$IMGFIND_ARTIFACTS`` or ``tests/artifacts/``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw, TiffImagePlugin

from tests import web
from tests.conftest import real_photos
from tests.web import (
    LiveServer,
    card_ids,
    needs_chromium,
    open_ui,
    scores,
    shot,
    wait_for_cards,
    wait_for_ids,
)
from tests.web import settle as wait_for_query

API_KEY = "s3cret-test-key"
N_PHOTOS = 20

pytestmark = needs_chromium


# -- fixtures ---------------------------------------------------------------------------------

def exif_photo(path: Path) -> Path:
    """A generated JPEG carrying camera EXIF and a GPS position (Berlin, 34 m)."""
    rational = TiffImagePlugin.IFDRational
    img = Image.new("RGB", (640, 480), (30, 80, 150))
    draw = ImageDraw.Draw(img)
    for i in range(0, 640, 40):
        draw.rectangle([i, 240 + (i % 120), i + 30, 480], fill=(240, 180 - i // 8, 60))
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R5"
    exif.get_ifd(0x8769).update({
        0xA434: "RF24-70mm F2.8 L IS USM", 0x9003: "2023:07:14 18:22:05",
        0x829A: rational(1, 250), 0x829D: rational(28, 10), 0x8827: 200,
        0x920A: rational(50, 1)})
    exif.get_ifd(0x8825).update({
        1: "N", 2: (rational(52), rational(31), rational(12)),
        3: "E", 4: (rational(13), rational(24), rational(18)), 6: rational(34)})
    img.save(path, "JPEG", exif=exif.tobytes(), quality=90)
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[dict]:
    """A library with collection ``photos`` (20 real photos + one EXIF/GPS image) and an
    empty collection, served twice: openly, and with an API key for writes."""
    import imgfind
    from imgfind.server import create_app

    tmp = tmp_path_factory.mktemp("webui")
    lib = imgfind.open(tmp / "home", model_path=tiny_model_dir)
    col = lib.create_collection("photos")
    photos = real_photos(N_PHOTOS)
    ids = [col.insert(str(p), metadata={"group": "even" if i % 2 == 0 else "odd", "n": i})
           for i, p in enumerate(photos)]
    exif_id = col.insert(str(exif_photo(tmp / "berlin.jpg")),
                         metadata={"title": "Brandenburg sunset", "tags": ["city", "evening"]})
    lib.create_collection("empty")
    open_server = LiveServer(create_app(lib))
    key_server = LiveServer(create_app(lib, api_key=API_KEY))
    yield {"lib": lib, "col": col, "photos": photos, "ids": ids, "exif_id": exif_id,
           "url": open_server.url, "key_url": key_server.url, "tmp": tmp}
    open_server.stop()
    key_server.stop()
    lib.close()


@pytest.fixture(scope="module")
def browser():
    yield from web.launch()


@pytest.fixture
def page(browser):
    yield from web.page_for(browser)


# -- tests ------------------------------------------------------------------------------------

def test_browse_shows_the_collection(page, env):
    open_ui(page, env["url"])
    total = env["col"].count()
    assert len(card_ids(page)) == total
    assert set(card_ids(page)) == {it.id for it in env["col"].items(limit=100)}
    assert page.text_content("#collection-count") == f"{total} images"
    assert f"{total} images" in page.text_content("#status")
    assert scores(page) == []          # browsing has no scores
    assert page.input_value("#collection") == "photos"
    page.wait_for_function("() => [...document.querySelectorAll('.card img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    shot(page, "browse")


def test_text_search_shows_scored_cards(page, env):
    open_ui(page, env["url"])
    page.select_option("#k", "10")
    page.fill("#q", "a dog running on the grass")
    page.press("#q", "Enter")
    page.wait_for_selector("#gallery .card .score")
    wait_for_query(page)
    got = scores(page)
    assert len(got) == 10
    assert got == sorted(got, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in got)
    assert "for “a dog running on the grass”" in page.text_content("#status")
    assert "q=a+dog+running" in page.evaluate("location.hash")
    shot(page, "text-search")


def test_upload_search_ranks_the_uploaded_image_first(page, env):
    open_ui(page, env["url"])
    page.set_input_files("#search-file", str(env["photos"][7]))
    page.wait_for_selector("#gallery .card .score")
    wait_for_query(page)
    assert card_ids(page)[0] == env["ids"][7]
    assert scores(page)[0] > 0.99
    assert page.is_visible("#query-chip")
    assert env["photos"][7].name in page.text_content("#query-chip")
    shot(page, "image-search")
    # Clearing the image query goes back to browsing the whole collection.
    page.click("#query-chip button")
    wait_for_ids(page, {it.id for it in env["col"].items(limit=1000)})
    assert not page.query_selector("#gallery .score")


def test_dropping_an_image_anywhere_searches_by_it(page, env):
    open_ui(page, env["url"])
    data = base64.b64encode(env["photos"][3].read_bytes()).decode()
    page.evaluate("""async (b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "dropped.jpg", {type: "image/jpeg"}));
        const target = document.querySelector("#gallery");
        target.dispatchEvent(new DragEvent("dragenter", {dataTransfer: dt, bubbles: true}));
        target.dispatchEvent(new DragEvent("drop",
            {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", data)
    page.wait_for_selector("#gallery .card .score")
    wait_for_query(page)
    assert card_ids(page)[0] == env["ids"][3]
    assert "dropped.jpg" in page.text_content("#query-chip")
    assert page.is_hidden("#drop-overlay")


def test_similar_on_a_card_searches_by_that_item(page, env):
    open_ui(page, env["url"])
    target = env["ids"][5]
    card = page.locator(f'.card[data-id="{target}"]')
    card.hover()
    card.locator('[data-action="similar"]').click()
    page.wait_for_selector("#gallery .card .score")
    wait_for_query(page)
    # "More like this" leaves the item itself out and ranks the rest.
    got = card_ids(page)
    assert target not in got
    assert len(got) == min(20, env["col"].count() - 1)
    assert scores(page) == sorted(scores(page), reverse=True)
    assert "Similar to" in page.text_content("#query-chip")
    assert f"like={target}" in page.evaluate("location.hash")
    shot(page, "similar")


def test_filters_narrow_browsing_and_search(page, env):
    col = env["col"]
    open_ui(page, env["url"])
    page.click("#add-filter")
    page.select_option(".filter >> nth=0 >> .f-key", "metadata.group")
    page.fill(".filter >> nth=0 >> .f-value", "even")
    page.press(".filter >> nth=0 >> .f-value", "Enter")
    even = {"group": "even"}
    wait_for_ids(page, {it.id for it in col.items(where=even, limit=100)})
    assert "matching the filters" in page.text_content("#status")

    # A second condition is ANDed; "10" is sent as a number because the field is numeric.
    page.click("#add-filter")
    page.select_option(".filter >> nth=1 >> .f-key", "metadata.n")
    page.select_option(".filter >> nth=1 >> .f-op", "$gt")
    page.fill(".filter >> nth=1 >> .f-value", "10")
    page.press(".filter >> nth=1 >> .f-value", "Enter")
    both = {"group": "even", "n": {"$gt": 10}}
    expected = {it.id for it in col.items(where=both, limit=100)}
    assert 0 < len(expected) < col.count(where=even)
    wait_for_ids(page, expected)

    # Text search honours the filters too.
    page.fill("#q", "people")
    page.press("#q", "Enter")
    page.wait_for_selector("#gallery .card .score")
    wait_for_ids(page, expected)
    shot(page, "filters")

    # The filters live in the URL: a reload restores them.
    page.reload()
    page.wait_for_selector("#gallery .card .score")
    wait_for_ids(page, expected)
    assert page.locator(".filter").count() == 2


def test_bad_filter_shows_the_servers_message(page, env):
    open_ui(page, env["url"], '#c=photos&f=[["bad key!","$eq","x"]]')
    page.wait_for_selector("#banner:not([hidden])")
    assert "bad filter key" in page.text_content("#banner")
    assert card_ids(page) == []
    shot(page, "error-banner")


def test_item_view_shows_metadata_exif_and_location(page, env):
    open_ui(page, env["url"])
    card = page.locator(f'.card[data-id="{env["exif_id"]}"]')
    card.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#item-view[open]")
    details = page.locator("#item-details")
    text = details.inner_text()
    for expected in ["Brandenburg sunset", "city", "Canon EOS R5", "RF24-70mm F2.8 L IS USM",
                     "1/250 s", "ƒ/2.8", "200", "50 mm", "52.52000, 13.40500", "34 m",
                     "JPEG", "640 × 480", "berlin.jpg"]:
        assert expected in text, f"{expected!r} missing from the item view"
    href = page.get_attribute("#item-details a.osm-link", "href")
    assert href.startswith("https://www.openstreetmap.org/?mlat=52.52")
    assert "mlon=13.405" in href
    page.wait_for_function("() => document.querySelector('#item-image').naturalWidth === 640")
    shot(page, "item-view")

    # Escape closes the view and gives focus back to the card.
    page.keyboard.press("Escape")
    page.wait_for_selector("#item-view", state="hidden")
    assert page.evaluate("document.activeElement.dataset.id") == env["exif_id"]


def test_add_images_by_upload_with_per_file_errors(page, env):
    col = env["col"]
    before = col.count()
    new_photos = real_photos(2, start=N_PHOTOS)
    bad = env["tmp"] / "notes.txt"
    bad.write_text("not an image")
    open_ui(page, env["url"])
    page.click("#add-btn")
    page.wait_for_selector("#upload-view[open]")
    page.set_input_files("#upload-files", [str(p) for p in new_photos] + [str(bad)])
    page.fill("#upload-meta", '{"album": "ui-test"}')
    assert page.text_content("#upload-start") == "Upload 3 images"
    page.click("#upload-start")
    page.wait_for_function("() => document.querySelectorAll('.upload-row.done, .upload-row.failed')"
                           ".length === 3")
    assert page.locator(".upload-row.done").count() == 2
    failed = page.locator(".upload-row.failed")
    assert failed.count() == 1
    assert "notes.txt" in failed.inner_text()
    assert failed.locator(".ferror").inner_text().strip() != ""
    shot(page, "upload")

    assert col.count() == before + 2
    assert col.count(where={"album": "ui-test"}) == 2
    page.wait_for_function("n => document.querySelector('#collection-count').textContent === n",
                           arg=f"{before + 2} images")
    page.click("#upload-view [data-close] >> nth=-1")
    wait_for_cards(page, before + 2)


def test_delete_from_a_card_and_from_the_item_view(page, env):
    col = env["col"]
    open_ui(page, env["url"])
    before = col.count()
    victim = env["ids"][1]
    card = page.locator(f'.card[data-id="{victim}"]')
    card.hover()
    card.locator('[data-action="delete"]').click()
    page.wait_for_selector("#confirm-view[open]")
    shot(page, "confirm-delete")
    page.click("#confirm-view button[value=cancel]")
    assert col.count() == before
    assert card.count() == 1

    card.hover()
    card.locator('[data-action="delete"]').click()
    page.click("#confirm-ok")
    page.wait_for_selector(f'.card[data-id="{victim}"]', state="detached")
    assert col.count() == before - 1
    assert httpx.get(f"{env['url']}/api/collections/photos/items/{victim}").status_code == 404
    assert page.text_content("#collection-count") == f"{before - 1} images"

    second = env["ids"][2]
    page.locator(f'.card[data-id="{second}"]').click()
    page.wait_for_selector("#item-view[open]")
    page.click("#item-delete")
    page.click("#confirm-ok")
    page.wait_for_selector(f'.card[data-id="{second}"]', state="detached")
    assert col.count() == before - 2
    assert len(card_ids(page)) == before - 2


def test_writes_need_the_api_key_when_the_server_has_one(page, env):
    col = env["col"]
    open_ui(page, env["key_url"])
    before = col.count()
    victim = env["ids"][4]
    card = page.locator(f'.card[data-id="{victim}"]')
    card.hover()
    card.locator('[data-action="delete"]').click()
    page.click("#confirm-ok")
    toast = page.locator(".toast.error")
    toast.wait_for()
    assert "API key" in toast.inner_text()
    assert col.count() == before
    toast.evaluate("e => Promise.all(e.getAnimations().map(a => a.finished))")
    shot(page, "api-key-missing")

    toast.locator("text=Set API key").click()
    page.wait_for_selector("#settings-view[open]")
    page.fill("#api-key", API_KEY)
    page.click("#api-key-save")
    assert page.evaluate("localStorage.getItem('imgfind.apiKey')") == API_KEY
    card.hover()
    card.locator('[data-action="delete"]').click()
    page.click("#confirm-ok")
    page.wait_for_selector(f'.card[data-id="{victim}"]', state="detached")
    assert col.count() == before - 1


def test_empty_collection_explains_how_to_add_images(page, env):
    open_ui(page, env["url"], "#c=empty")
    empty = page.locator("#empty")
    empty.wait_for()
    assert "No images yet — drop some here or run imgfind index PATH" in empty.inner_text()
    assert card_ids(page) == []
    shot(page, "empty")
    # Switching collections with the picker loads the other one.
    page.select_option("#collection", "photos")
    page.wait_for_selector("#gallery .card")
    assert page.evaluate("location.hash") == "#c=photos"


def test_layout_adapts_to_dark_mode_and_phone_width(browser, env):
    dark = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme="dark")
    p = dark.new_page()
    open_ui(p, env["url"])
    light_bg = "rgb(246, 247, 249)"
    assert p.evaluate("getComputedStyle(document.body).backgroundColor") != light_bg
    wide_columns = p.evaluate("getComputedStyle(document.querySelector('#gallery'))"
                              ".gridTemplateColumns.split(' ').length")
    assert wide_columns >= 5
    shot(p, "browse-dark")
    p.locator("#gallery .card").first.click()
    p.wait_for_selector("#item-view[open]")
    shot(p, "item-view-dark")
    dark.close()

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                has_touch=True)
    p = phone.new_page()
    open_ui(p, env["url"])
    assert p.evaluate("getComputedStyle(document.querySelector('#gallery'))"
                      ".gridTemplateColumns.split(' ').length") == 2
    assert p.evaluate("document.documentElement.scrollWidth") <= 390
    shot(p, "phone")
    p.locator(f'.card[data-id="{env["exif_id"]}"]').click()
    p.wait_for_selector("#item-view[open]")
    box = p.locator("#item-close").bounding_box()
    assert box and box["x"] + box["width"] <= 390
    shot(p, "phone-item-view")
    phone.close()


def test_page_has_accessible_names_for_controls(page, env):
    open_ui(page, env["url"])
    unnamed = page.evaluate("""() => [
        ...document.querySelectorAll('button, input, select, textarea')]
        .filter(e => e.type !== 'hidden' && !e.closest('[hidden]') && e.offsetParent !== null)
        .filter(e => !(e.getAttribute('aria-label') || e.labels?.length || e.textContent.trim()
                       || e.getAttribute('title')))
        .map(e => e.outerHTML.slice(0, 80))""")
    assert unnamed == []
    # Every card is reachable with Tab and named by its file.
    first = page.locator("#gallery .card").first
    assert first.get_attribute("tabindex") == "0"
    assert re.search(r"\.jpe?g", first.get_attribute("aria-label"), re.IGNORECASE)
