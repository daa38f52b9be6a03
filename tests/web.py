"""Shared harness of the browser tests (tests/test_web_*.py): a real server on
127.0.0.1 in a thread, headless Debian Chromium through Playwright, and helpers that
wait for the page to settle and save screenshots.

Screenshots go to ``$IMGFIND_ARTIFACTS`` or ``tests/artifacts/`` (git-ignored).
A test module declares its two fixtures from :func:`launch` and :func:`page_for`::

    @pytest.fixture(scope="module")
    def browser():
        yield from web.launch()

    @pytest.fixture
    def page(browser):
        yield from web.page_for(browser)
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("IMGFIND_ARTIFACTS") or Path(__file__).parent / "artifacts")
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason=f"needs Chromium at {CHROMIUM}")


class LiveServer:
    """uvicorn serving ``app`` in a thread, on a free port of 127.0.0.1."""

    def __init__(self, app) -> None:
        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def launch() -> Iterator:
    """Headless Chromium for a module's ``browser`` fixture."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def new_page(browser, **context):
    """A page in a fresh context that records uncaught script errors in ``page.errors``."""
    ctx = browser.new_context(**({"viewport": DESKTOP} | context))
    p = ctx.new_page()
    p.set_default_timeout(15_000)
    p.errors = []
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    return p


def page_for(browser) -> Iterator:
    """A fresh desktop page for a ``page`` fixture; fails the test on any script error."""
    p = new_page(browser)
    yield p
    p.context.close()
    assert not p.errors, f"script errors in the page: {p.errors}"


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"))


def open_ui(page, url: str, hash_: str = "#c=photos") -> None:
    page.goto(f"{url}/{hash_}")
    page.wait_for_selector("#gallery .card:not(.skeleton), #empty:not([hidden]), "
                           "#banner:not([hidden]), #dup-status:not(:empty)")
    settle(page)


def settle(page) -> None:
    """Waits until the gallery has left its loading state."""
    page.wait_for_function("() => !document.querySelector('#gallery').hasAttribute('aria-busy')"
                           " && !document.querySelector('#gallery .skeleton')")


def card_ids(page) -> list[str]:
    return page.eval_on_selector_all("#gallery .card:not(.skeleton)",
                                     "els => els.map(e => e.dataset.id)")


def scores(page) -> list[float]:
    return [float(s) for s in page.eval_on_selector_all("#gallery .card .score",
                                                        "els => els.map(e => e.textContent)")]


def wait_for_cards(page, n: int) -> None:
    """Waits until the gallery shows exactly ``n`` result cards (skeletons don't count)."""
    settle(page)
    page.wait_for_function("n => document.querySelectorAll('#gallery .card:not(.skeleton)')"
                           ".length === n", arg=n)


def wait_for_ids(page, expected: set[str] | list[str], ordered: bool = False) -> None:
    """Waits until the settled gallery shows exactly ``expected`` (in that order if asked)."""
    want = list(expected) if ordered else sorted(expected)
    page.wait_for_function(
        """([want, ordered]) => {
            const g = document.querySelector('#gallery');
            if (g.hasAttribute('aria-busy') || g.querySelector('.skeleton')) return false;
            let ids = [...g.querySelectorAll('.card')].map(e => e.dataset.id);
            if (!ordered) ids = ids.sort();
            return JSON.stringify(ids) === JSON.stringify(want);
        }""", arg=[want, ordered])


def url_param(page, name: str) -> str | None:
    return page.evaluate("n => new URLSearchParams(location.hash.slice(1)).get(n)", name)
