"""A bounded schemathesis pass (about a minute and a half): requests generated from
/openapi.json, without and with an API key, must never get a 5xx answer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import imgfind
from imgfind.server import BackgroundServer

from .conftest import real_photos

SECONDS = 30
KEY = "schemathesis-key"


class Count5xx:
    """ASGI middleware counting the 5xx answers the app sends."""

    def __init__(self, app, counter: list[int]):
        self.app = app
        self.counter = counter

    async def __call__(self, scope, receive, send):
        async def watch(message):
            if message["type"] == "http.response.start" and message["status"] >= 500:
                self.counter.append(message["status"])
            await send(message)
        try:
            await self.app(scope, receive, watch)
        except Exception:  # answered as a 500 by Starlette's outermost error middleware
            self.counter.append(500)
            raise


@pytest.mark.skipif(shutil.which("schemathesis") is None, reason="schemathesis not installed")
@pytest.mark.parametrize("api_key", [None, KEY], ids=["open", "keyed"])
def test_generated_requests_get_no_5xx(tmp_path: Path, tiny_model_dir: Path,
                                       api_key: str | None) -> None:
    from bench.reliability_suite import run_schemathesis

    lib = imgfind.open(tmp_path / "home", model_path=tiny_model_dir)
    lib.create_collection("default").insert_batch(real_photos(3))
    server_errors: list[int] = []
    srv = BackgroundServer(lib, api_key=api_key)
    srv.app.add_middleware(Count5xx, counter=server_errors)
    with srv:
        res = run_schemathesis(srv.url, SECONDS, api_key, tmp_path / "schemathesis.out")
    lib.close()
    out = (tmp_path / "schemathesis.out").read_text()
    assert res["cases"], out[-3000:]
    assert server_errors == [], out[-3000:]
    assert res["server_error_failures"] == 0, out[-3000:]
