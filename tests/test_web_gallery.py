"""Browser tests of the gallery as a photo app: the timeline, multi-select with bulk
actions, Back/Forward and shareable URLs, infinite scroll, and the item view on phones.

Real server on 127.0.0.1, real library, real photos (with dates written into their
EXIF), headless Chromium. Screenshots: ``tests/artifacts/web-gallery-*.png``.
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests import web
from tests.conftest import real_photos
from tests.web import (
    PHONE,
    LiveServer,
    card_ids,
    needs_chromium,
    new_page,
    open_ui,
    settle,
    shot,
    url_param,
    wait_for_cards,
    wait_for_ids,
)

pytestmark = needs_chromium

#: Dates taken written into the photos' EXIF: three months, several days each.
DATES = ["2024:03:02 10:00:00", "2024:03:02 09:00:00", "2024:03:17 12:30:00",
         "2024:03:29 08:00:00", "2024:01:05 11:00:00", "2024:01:05 10:00:00",
         "2024:01:20 16:45:00", "2023:11:11 11:11:00", "2023:11:30 07:00:00",
         "2023:11:30 06:00:00"]
N_MANY = 130


def dated_copy(src: Path, dst: Path, taken: str) -> Path:
    img = Image.open(src).convert("RGB")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = taken
    img.save(dst, "JPEG", exif=exif.tobytes(), quality=85)
    return dst


def swatch(i: int) -> bytes:
    rng = random.Random(i)
    img = Image.new("RGB", (48, 36), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    for _ in range(6):
        x, y = rng.randrange(40), rng.randrange(28)
        color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        img.paste(color, (x, y, x + 8, y + 8))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    import imgfind
    from imgfind.server import create_app

    tmp = tmp_path_factory.mktemp("webgallery")
    lib = imgfind.open(tmp / "home", model_path=tiny_model_dir)
    col = lib.create_collection("photos")
    # Inserted newest first: the order of the listing is the server's (``sort=-taken``,
    # asked for by the page and checked below), the grouping and jumps the page's.
    order = sorted(range(len(DATES)), key=lambda i: DATES[i], reverse=True)
    photos = real_photos(len(DATES))
    ids = {}
    for i in order:
        path = dated_copy(photos[i], tmp / f"photo-{i:02d}.jpg", DATES[i])
        ids[i] = col.insert(str(path), metadata={"n": i})
    many = lib.create_collection("many")
    for i in range(N_MANY):
        many.insert(swatch(i), metadata={"i": i})
    server = LiveServer(create_app(lib))
    yield {"lib": lib, "col": col, "many": many, "ids": ids, "url": server.url, "tmp": tmp}
    server.stop()
    lib.close()


@pytest.fixture(scope="module")
def browser():
    yield from web.launch()


@pytest.fixture
def page(browser):
    yield from web.page_for(browser)


def newest_first(env) -> list[str]:
    """The photos' ids, newest date taken first."""
    return [env["ids"][i] for i in sorted(range(len(DATES)), key=lambda i: DATES[i], reverse=True)]


def heads(page) -> list[str]:
    return page.eval_on_selector_all("#gallery .group-head", "els => els.map(e => e.dataset.key)")


# -- timeline ---------------------------------------------------------------------------------

def test_timeline_is_newest_first_grouped_by_day_and_month(page, env):
    with page.expect_request(lambda r: "/items?" in r.url) as listing:
        open_ui(page, env["url"])
    assert "sort=-taken" in listing.value.url
    wait_for_ids(page, newest_first(env), ordered=True)
    assert heads(page) == ["2024-03-29", "2024-03-17", "2024-03-02", "2024-01-20", "2024-01-05",
                           "2023-11-30", "2023-11-11"]
    head = page.locator("#gallery .group-head").first
    assert head.evaluate("e => getComputedStyle(e).position") == "sticky"
    assert "2024" in head.inner_text() and "29" in head.inner_text()
    shot(page, "gallery-timeline")

    # Scrolled down, the header of the day in view sticks under the top bar.
    page.set_viewport_size({"width": 1280, "height": 420})
    page.locator('#gallery .group-head[data-key="2024-01-05"]').scroll_into_view_if_needed()
    page.mouse.wheel(0, 240)
    page.wait_for_timeout(150)
    top = page.evaluate("document.querySelector('.topbar').offsetHeight")
    stuck = page.evaluate("""top => [...document.querySelectorAll('#gallery .group-head')]
        .filter(h => Math.abs(h.getBoundingClientRect().top - top) < 2).map(h => h.dataset.key)""",
                          top)
    assert stuck, "no date header sticks under the top bar"
    shot(page, "gallery-timeline-sticky")

    page.set_viewport_size(web.DESKTOP)
    page.select_option("#group-by", "month")
    page.wait_for_function("() => document.querySelectorAll('#gallery .group-head').length === 3")
    assert heads(page) == ["2024-03", "2024-01", "2023-11"]
    assert "March 2024" in page.locator("#gallery .group-head").first.inner_text()
    shot(page, "gallery-timeline-months")
    page.select_option("#group-by", "day")


def test_jump_to_a_month_opens_the_timeline_there(page, env):
    # A jump is an offset into the date order, which only a server that sorts listings has.
    if httpx.get(f"{env['url']}/api/collections/photos/items?sort=-taken").status_code == 422:
        pytest.skip("this server does not sort listings (GET items?sort=)")
    open_ui(page, env["url"])
    page.fill("#jump", "2024-01")
    # January 20, January 5 (twice), then November.
    wait_for_ids(page, [env["ids"][i] for i in (6, 4, 5, 8, 9, 7)], ordered=True)
    assert page.is_visible("#newer")
    assert "Showing 5–10 of 10 images" in page.text_content("#status")
    page.click("#newer")
    wait_for_ids(page, newest_first(env), ordered=True)


def test_phone_timeline_has_no_delete_button_on_thumbnails(browser, env):
    p = new_page(browser, **PHONE)
    open_ui(p, env["url"])
    assert p.locator("#gallery .group-head").count() == 7
    first = p.locator("#gallery .card").first
    assert not first.locator('[data-action="delete"]').is_visible()
    assert p.evaluate("document.documentElement.scrollWidth") <= 390
    shot(p, "gallery-timeline-phone")
    assert not p.errors
    p.context.close()


# -- multi-select -----------------------------------------------------------------------------

def selected(page) -> list[str]:
    return page.eval_on_selector_all("#gallery .card.selected", "els => els.map(e => e.dataset.id)")


def test_select_by_click_shift_click_and_keyboard(page, env):
    order = newest_first(env)
    open_ui(page, env["url"])
    wait_for_ids(page, order, ordered=True)
    card = lambda i: page.locator(f'.card[data-id="{order[i]}"]')  # noqa: E731
    card(1).hover()
    card(1).locator(".select-box").click()
    assert selected(page) == [order[1]]
    assert page.is_visible("#selection-bar")
    assert page.text_content("#sel-count") == "1 image selected"
    # Once something is selected, a click selects instead of opening; Shift extends.
    card(4).click(modifiers=["Shift"])
    assert selected(page) == order[1:5]
    assert not page.is_visible("#item-view")
    card(2).click()
    assert selected(page) == [order[1], order[3], order[4]]
    shot(page, "gallery-multiselect")

    page.keyboard.press("Escape")
    assert selected(page) == []
    assert page.is_hidden("#selection-bar")
    # Keyboard: Space toggles the focused card, Shift+arrows extend, Ctrl+A takes all.
    card(0).focus()
    page.keyboard.press(" ")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    assert selected(page) == order[0:3]
    assert page.evaluate("document.activeElement.dataset.id") == order[2]
    page.keyboard.press("Control+a")
    assert len(selected(page)) == len(order)
    page.keyboard.press("Escape")


def test_bulk_edit_download_and_delete(page, env):
    col, order = env["col"], newest_first(env)
    open_ui(page, env["url"])
    wait_for_ids(page, order, ordered=True)
    for i in (7, 8, 9):
        page.locator(f'.card[data-id="{order[i]}"] .select-box').click(force=True)
    assert page.text_content("#sel-count") == "3 images selected"

    page.click("#sel-edit")
    page.wait_for_selector("#edit-view[open]")
    page.fill("#edit-add", "beach, summer")
    page.fill("#edit-album", "Holidays 2024")
    shot(page, "gallery-bulk-edit")
    page.click("#edit-save")
    page.wait_for_selector("#edit-view", state="hidden")
    for i in (7, 8, 9):
        md = col.get(order[i]).metadata
        assert md["tags"] == ["beach", "summer"] and md["album"] == "Holidays 2024"
    assert "tags" not in col.get(order[6]).metadata
    # Removing one tag keeps the other.
    page.click("#sel-edit")
    page.fill("#edit-remove", "beach")
    page.click("#edit-save")
    page.wait_for_selector("#edit-view", state="hidden")
    page.wait_for_function("() => !document.querySelector('#edit-save').hasAttribute('aria-busy')")
    assert col.get(order[7]).metadata["tags"] == ["summer"]

    with page.expect_download() as dl:
        page.click("#sel-download")
    data = Path(dl.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = sorted(zf.namelist())
        assert len(names) == 3 and all(n.endswith(".jpg") for n in names)
        assert zf.read(names[0])[:2] == b"\xff\xd8"

    before = col.count()
    page.click("#sel-delete")
    page.wait_for_selector("#confirm-view[open]")
    assert "Delete 3 images?" in page.text_content("#confirm-title")
    page.click("#confirm-ok")
    wait_for_ids(page, order[:7], ordered=True)
    assert col.count() == before - 3
    assert page.text_content("#collection-count") == f"{before - 3} images"
    assert page.is_hidden("#selection-bar")
    # Put them back for the other tests (same ids; the oldest, so they list last again).
    for i in (7, 8, 9):
        n = [k for k, v in env["ids"].items() if v == order[i]][0]
        path = env["tmp"] / f"photo-{n:02d}.jpg"
        col.insert(str(path), metadata={"n": n}, id=order[i])


def test_bulk_edit_server_errors_per_item(env):
    r = httpx.post(f"{env['url']}/api/collections/photos/items/metadata",
                   json={"ids": [env["ids"][0], "nope"], "add_tags": ["x"]})
    assert r.status_code == 200
    body = r.json()
    assert body["updated"] == 1
    assert body["results"][1]["code"] == "not_found"
    r = httpx.post(f"{env['url']}/api/collections/photos/items/metadata",
                   json={"ids": [env["ids"][0]], "bogus": 1})
    assert r.status_code in (400, 422) and "bogus" in r.text
    r = httpx.post(f"{env['url']}/api/collections/photos/items/zip", json={"ids": []})
    assert r.status_code == 400 and "at least one" in r.json()["error"]["message"]
    env["col"].set_metadata(env["ids"][0], {"n": 0})


# -- history ----------------------------------------------------------------------------------

def test_back_and_forward_walk_searches_filters_and_the_item_view(page, env):
    open_ui(page, env["url"])
    browse = set(card_ids(page))
    page.fill("#q", "a dog")
    page.press("#q", "Enter")
    page.wait_for_selector("#gallery .card .score")
    settle(page)
    searched = card_ids(page)
    page.click("#add-filter")
    page.select_option(".filter >> nth=0 >> .f-key", "metadata.n")
    page.select_option(".filter >> nth=0 >> .f-op", "$lt")
    page.fill(".filter >> nth=0 >> .f-value", "5")
    page.press(".filter >> nth=0 >> .f-value", "Enter")
    low = {env["ids"][i] for i in range(5)}
    wait_for_ids(page, low)
    first = card_ids(page)[0]
    page.locator(f'.card[data-id="{first}"]').click()
    page.wait_for_selector("#item-view[open]")
    assert url_param(page, "item") == first
    shot(page, "gallery-history-item")

    page.go_back()                                     # closes the item view
    page.wait_for_selector("#item-view", state="hidden")
    assert url_param(page, "item") is None
    page.go_back()                                     # drops the filter
    wait_for_ids(page, set(searched))
    assert page.locator(".filter").count() == 0
    assert page.input_value("#q") == "a dog"
    page.go_back()                                     # back to browsing
    wait_for_ids(page, browse)
    assert page.input_value("#q") == ""
    page.go_forward()
    wait_for_ids(page, set(searched))
    page.go_forward()
    wait_for_ids(page, low)
    page.go_forward()
    page.wait_for_selector("#item-view[open]")
    assert page.text_content("#item-title")


def test_a_shared_url_restores_search_filters_and_open_item(browser, env):
    target = env["ids"][3]
    p = new_page(browser)
    hash_ = f'#c=photos&q=people&f=[["metadata.n","$lt","5"]]&item={target}'
    p.goto(f"{env['url']}/{hash_}")
    p.wait_for_selector("#item-view[open]")
    settle(p)
    assert p.input_value("#q") == "people"
    assert p.locator(".filter").count() == 1
    assert set(card_ids(p)) == {env["ids"][i] for i in range(5)}
    assert p.text_content("#item-title") == "photo-03.jpg"
    shot(p, "gallery-shared-url")
    p.keyboard.press("Escape")                         # the link's entry is replaced, not left
    p.wait_for_selector("#item-view", state="hidden")
    assert url_param(p, "item") is None and url_param(p, "q") == "people"
    assert not p.errors
    p.context.close()


# -- infinite scroll --------------------------------------------------------------------------

def scroll_to_end(page) -> None:
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")


def test_infinite_scroll_browses_and_searches_beyond_100(page, env):
    open_ui(page, env["url"], "#c=many")
    wait_for_cards(page, 60)
    scroll_to_end(page)
    wait_for_cards(page, 120)
    scroll_to_end(page)
    wait_for_cards(page, N_MANY)
    assert page.is_hidden("#load-more")
    assert len(set(card_ids(page))) == N_MANY

    page.select_option("#k", "100")
    page.fill("#q", "a red square")
    page.press("#q", "Enter")
    page.wait_for_selector("#gallery .card .score")
    wait_for_cards(page, 100)
    scroll_to_end(page)
    wait_for_cards(page, N_MANY)
    got = web.scores(page)
    assert got == sorted(got, reverse=True)
    assert len(set(card_ids(page))) == N_MANY
    shot(page, "gallery-infinite-scroll")


# -- item view --------------------------------------------------------------------------------

def test_item_view_prev_next_and_swipe_on_a_phone(browser, env):
    order = newest_first(env)
    p = new_page(browser, **PHONE)
    open_ui(p, env["url"])
    wait_for_ids(p, order, ordered=True)
    p.locator(f'.card[data-id="{order[1]}"]').click()
    p.wait_for_selector("#item-view[open]")
    assert p.text_content("#item-position") == f"2 of {len(order)}"

    def swipe(dx: int) -> None:
        p.evaluate("""dx => {
            const m = document.querySelector('.item-media');
            const t = (x) => new Touch({identifier: 1, target: m, clientX: x, clientY: 200});
            m.dispatchEvent(new TouchEvent('touchstart', {touches: [t(200)], bubbles: true}));
            m.dispatchEvent(new TouchEvent('touchend',
                                           {changedTouches: [t(200 + dx)], bubbles: true}));
        }""", dx)

    swipe(-120)
    p.wait_for_function("id => new URLSearchParams(location.hash.slice(1)).get('item') === id",
                        arg=order[2])
    swipe(+120)
    swipe(+120)
    p.wait_for_function("id => new URLSearchParams(location.hash.slice(1)).get('item') === id",
                        arg=order[0])
    assert p.is_hidden("#item-prev")
    shot(p, "gallery-item-phone")
    p.keyboard.press("ArrowRight")
    assert url_param(p, "item") == order[1]
    assert not p.errors
    p.context.close()


def test_phone_selects_by_tapping_the_tick_and_keeps_the_bar_on_screen(browser, env):
    order = newest_first(env)
    p = new_page(browser, **PHONE)
    open_ui(p, env["url"])
    wait_for_ids(p, order, ordered=True)
    p.locator(f'.card[data-id="{order[0]}"] .select-box').tap()
    p.locator(f'.card[data-id="{order[1]}"]').tap()        # once selecting, a tap selects
    assert selected(p) == order[:2]
    assert p.is_hidden("#item-view")
    bar = p.locator("#selection-bar").bounding_box()
    assert bar and bar["x"] >= 0 and bar["x"] + bar["width"] <= 390
    assert p.evaluate("document.documentElement.scrollWidth") <= 390
    shot(p, "gallery-multiselect-phone")
    assert not p.errors
    p.context.close()
