"""Browser tests of the collection menu: indexing a server folder (inside
--allow-path) with live progress and cancel, re-embedding with another model with
live progress, creating a collection with a model, and dropping one after typing its
name.

Real server on 127.0.0.1, real library and photos, headless Chromium.
Screenshots: ``tests/artifacts/web-jobs-*.png``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import web
from tests.conftest import real_photos
from tests.web import LiveServer, needs_chromium, open_ui, shot, wait_for_cards

pytestmark = needs_chromium

N_SMALL, N_BIG = 24, 300


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    import imgfind
    from imgfind.server import create_app

    tmp = tmp_path_factory.mktemp("webjobs")
    root = tmp / "srv"
    small, big = root / "small", root / "big"
    for folder, photos in ((small, real_photos(N_SMALL)), (big, real_photos(N_BIG, start=50))):
        folder.mkdir(parents=True)
        for p in photos:
            shutil.copy(p, folder / p.name)
    lib = imgfind.open(tmp / "home", model_path=tiny_model_dir)
    lib.create_collection("photos")
    lib.create_collection("scratch")
    remodel = lib.create_collection("remodel")
    for p in real_photos(40, start=400):
        remodel.insert(str(p))
    from imgfind.testing import make_model
    wide = make_model(root / "models" / "wide", dim=96, seed=3)
    server = LiveServer(create_app(lib, allow_paths=[root]))
    yield {"lib": lib, "url": server.url, "small": small, "big": big, "root": root,
           "wide": wide}
    server.stop()
    lib.close()


@pytest.fixture(scope="module")
def browser():
    yield from web.launch()


@pytest.fixture
def page(browser):
    yield from web.page_for(browser)


def open_menu(page, item: str) -> None:
    page.click("#collection-menu summary")
    page.click(f"#menu-{item}")


def watch_states(page, prefix: str = "index") -> None:
    """Records every text the job panel shows, to see progress between polls."""
    page.evaluate("""prefix => {
        window.jobTexts = [];
        const text = (name) => document.querySelector(`#${prefix}-${name}`).textContent;
        const note = () => window.jobTexts.push(text('state') + '|' + text('counts'));
        new MutationObserver(note).observe(document.querySelector(`#${prefix}-progress`),
                                           {subtree: true, childList: true, characterData: true});
    }""", prefix)


def test_index_a_server_folder_with_live_progress(page, env):
    col = env["lib"].collection("photos")
    open_ui(page, env["url"])
    open_menu(page, "index")
    page.wait_for_selector("#index-view[open]")
    assert str(env["root"]) in page.text_content("#index-roots")
    watch_states(page)
    page.fill("#index-path", str(env["small"]))
    page.click("#index-start")
    page.wait_for_selector("#index-progress[data-state=running]")
    shot(page, "jobs-index-running")
    page.wait_for_selector("#index-progress[data-state=done]", timeout=120_000)
    assert page.text_content("#index-state") == "Finished"
    assert f"{N_SMALL} indexed" in page.text_content("#index-counts")
    assert page.evaluate("document.querySelector('#index-bar').value") == N_SMALL
    texts = page.evaluate("window.jobTexts")
    assert any(t.startswith("Indexing…") for t in texts)
    shot(page, "jobs-index-done")
    assert col.count() == N_SMALL
    page.click("#index-view [data-close] >> nth=-1")
    wait_for_cards(page, N_SMALL)
    assert page.text_content("#collection-count") == f"{N_SMALL} images"


def test_index_refuses_a_folder_outside_the_allowed_roots(page, env, tmp_path):
    open_ui(page, env["url"])
    open_menu(page, "index")
    page.fill("#index-path", str(tmp_path))
    page.click("#index-start")
    error = page.locator("#index-error")
    error.wait_for()
    assert "is not inside a folder this server may read" in error.inner_text()
    assert page.is_hidden("#index-progress")


def test_cancel_an_index_job(page, env):
    col = env["lib"].collection("scratch")
    open_ui(page, env["url"], "#c=scratch")
    open_menu(page, "index")
    page.fill("#index-path", str(env["big"]))
    page.click("#index-start")
    page.wait_for_selector("#index-progress[data-state=running]")
    page.click("#index-cancel")
    page.wait_for_selector("#index-progress[data-state=cancelled]", timeout=120_000)
    assert page.text_content("#index-state") == "Cancelled"
    assert page.is_hidden("#index-cancel") and page.is_visible("#index-start")
    shot(page, "jobs-index-cancelled")
    assert col.count() < N_BIG


def test_create_a_collection_with_a_model_and_drop_it(page, env):
    lib = env["lib"]
    open_ui(page, env["url"])
    open_menu(page, "create")
    page.wait_for_selector("#create-view[open]")
    page.fill("#create-name", "bad name!")
    page.click("#create-save")
    assert "letters, digits" in page.text_content("#create-error")
    page.fill("#create-name", "trips")
    page.fill("#create-model", "no-such-model")
    page.click("#create-save")
    page.wait_for_function("() => !document.querySelector('#create-error').hidden"
                           " && document.querySelector('#create-error').textContent"
                           ".includes('no-such-model')")
    assert "trips" not in [c.name for c in lib.collections()]
    page.fill("#create-model", "")
    shot(page, "jobs-create")
    page.click("#create-save")
    page.wait_for_selector("#create-view", state="hidden")
    page.wait_for_function("() => location.hash === '#c=trips'")
    page.wait_for_selector("#empty:not([hidden])")
    assert page.input_value("#collection") == "trips"
    assert "trips" in [c.name for c in lib.collections()]

    open_menu(page, "drop")
    page.wait_for_selector("#confirm-view[open]")
    assert page.is_disabled("#confirm-ok")
    page.fill("#confirm-typed", "trip")
    assert page.is_disabled("#confirm-ok")
    page.fill("#confirm-typed", "trips")
    shot(page, "jobs-drop-confirm")
    page.click("#confirm-ok")
    page.wait_for_function("() => ![...document.querySelectorAll('#collection option')]"
                           ".some(o => o.value === 'trips')")
    assert "trips" not in [c.name for c in lib.collections()]


def test_change_the_model_with_live_progress(page, env):
    col = env["lib"].collection("remodel")
    assert col.dim == 64
    open_ui(page, env["url"], "#c=remodel")
    open_menu(page, "reembed")
    page.wait_for_selector("#reembed-view[open]")
    assert "(64-d)" in page.text_content("#reembed-current")
    watch_states(page, "reembed")
    page.fill("#reembed-model", str(env["wide"]))
    page.click("#reembed-start")
    page.wait_for_selector("#reembed-progress[data-state=running]")
    shot(page, "jobs-reembed-running")
    page.wait_for_selector("#reembed-progress[data-state=done]", timeout=180_000)
    counts = page.text_content("#reembed-counts")
    assert "40 of 40 images embedded" in counts and "(96-d)" in counts
    texts = page.evaluate("window.jobTexts")
    assert any(t.startswith("Re-embedding…") for t in texts)
    shot(page, "jobs-reembed-done")
    assert env["lib"].collection("remodel").dim == 96
    assert env["lib"].collection("remodel").count() == 40
