"""OCR through the installed console script: create --ocr, index runs the pass, `imgfind
ocr` resumes it, `text` finds the words, `get` shows them; error paths and exit codes."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from .conftest import real_photos
from .test_ocr import _signed

pytest.importorskip("rapidocr_onnxruntime")


def _run(home, *args, code=0):
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    out = subprocess.run(["imgfind", "--home", str(home), *args], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == code, (args, out.returncode, out.stdout, out.stderr)
    return out


def test_cli_ocr_flow(tmp_path):
    home = tmp_path / "home"
    photos = tmp_path / "photos"
    photos.mkdir()
    signed = _signed(real_photos(3, start=340), seed0=30, n_words=1)
    for n, (data, _w) in enumerate(signed[:2]):
        (photos / f"sign{n}.jpg").write_bytes(data)
    _run(home, "create", "default", "--model", "phash", "--ocr")
    first = json.loads(_run(home, "index", str(photos), "--json").stdout)
    assert first["indexed"] == 2 and first["ocr"]["read"] == 2
    assert first["ocr"]["pending"] == 0
    # deferred: indexed now, read later by `imgfind ocr`
    (photos / "sign2.jpg").write_bytes(signed[2][0])
    later = json.loads(_run(home, "index", str(photos), "--no-ocr", "--json").stdout)
    assert later["indexed"] == 1 and "ocr" not in later
    status = json.loads(_run(home, "ocr", "--status", "--json").stdout)
    assert status == {"enabled": True, "done": 2, "pending": 1, "with_text": status["with_text"]}
    resumed = json.loads(_run(home, "ocr", "--json").stdout)
    assert resumed["read"] == 1 and resumed["pending"] == 0
    text = _run(home, "ocr").stdout
    assert "OCR read 0" in text and "pending 0" in text
    # the words are searchable and shown with the item
    items = {}
    for n in range(3):
        hits = json.loads(_run(home, "text", f"sign{n}", "--json").stdout)
        items[n] = hits[0]["item"]
    found = [(n, w) for n, (_d, words) in enumerate(signed) for w in words
             if w.lower() in items[n]["ocr"]["text"].lower()]
    assert len(found) >= 2, (items, signed)
    n, word = found[0]
    hits = json.loads(_run(home, "text", word.lower(), "--json").stdout)
    assert items[n]["id"] in [h["id"] for h in hits]
    got = json.loads(_run(home, "get", items[n]["id"], "--json").stdout)
    assert word.lower() in got["ocr"]["text"].lower() and got["ocr"]["lines"]
    where = json.dumps({"ocr": {"$contains": word.upper()}})
    assert json.loads(_run(home, "text", f"sign{n}", "--where", where, "--json").stdout)


def test_cli_ocr_errors(tmp_path):
    home = tmp_path / "home"
    _run(home, "create", "plain", "--model", "phash")
    out = _run(home, "ocr", "-c", "plain", code=1)
    assert "without OCR" in out.stderr and "Traceback" not in out.stderr
    out = _run(home, "ocr", "-c", "plain", "--limit", "0", code=2)
    assert "Traceback" not in out.stderr
    status = json.loads(_run(home, "ocr", "-c", "plain", "--status", "--json").stdout)
    assert status["enabled"] is False
    _run(home, "ocr", "-c", "ghost", code=1)
