"""Issue 12 part 1: the installed ``imgfind`` console script tells the truth.

Every case runs the console script pip installed (``imgfind``, whatever typer/click
versions pip resolved) as a subprocess, with PYTHONPATH pointing at this tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import typer

import imgfind
from imgfind.cli import app

from .conftest import FLICKR, real_photos

SCRIPT = shutil.which("imgfind")
pytestmark = pytest.mark.skipif(SCRIPT is None, reason="the imgfind console script is not "
                                "installed (pip install -e .)")
SRC = str(Path(imgfind.__file__).resolve().parents[1])


def env() -> dict[str, str]:
    e = {**os.environ, "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"}
    e.pop("IMGFIND_HOME", None)
    e.pop("IMGFIND_MODEL_PATH", None)
    return e


def imgfind_cli(*args: str, home: Path | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess:
    pre = ["--home", str(home)] if home is not None else []
    return subprocess.run([SCRIPT, *pre, *args], capture_output=True, text=True, env=env(),
                          timeout=timeout)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture
def phash_home(tmp_path: Path) -> Path:
    """A library with an empty weight-free collection 'default' (no model files needed)."""
    home = tmp_path / "H"
    proc = imgfind_cli("create", "default", "--model", "phash", home=home)
    assert proc.returncode == 0, proc.stderr
    return home


@pytest.mark.parametrize("args", [["serach", "x"], ["get"], ["search", "-k", "abc", "dog"],
                                  ["search", "--bogus", "x"], []],
                         ids=["typo", "missing-arg", "bad-int", "bad-option", "bare"])
def test_usage_errors_exit_2_with_usage_and_no_traceback(tmp_path, args):
    proc = imgfind_cli(*args, home=tmp_path / "H")
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    text = proc.stderr + proc.stdout
    assert "Usage: imgfind" in text
    if args:  # one "Error:" line naming what was wrong, plus the usage hint
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error:")]
        assert len(errors) == 1, proc.stderr
        assert "--help" in proc.stderr
    if args[:1] == ["serach"]:
        assert "search" in errors[0]


def test_missing_item_exits_1(phash_home):
    for args in (["rm", "nosuchid"], ["get", "nosuchid"]):
        proc = imgfind_cli(*args, home=phash_home)
        assert proc.returncode == 1, (args, proc.returncode, proc.stderr)
        assert "nosuchid" in one_error_line(proc)


def test_no_collection_lists_collections_and_names_the_option(phash_home):
    assert imgfind_cli("create", "holiday", "--model", "phash", home=phash_home).returncode == 0
    proc = imgfind_cli("-c", "ghost", "search", "x", home=phash_home)
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "'ghost'" in line and "'default'" in line and "'holiday'" in line
    assert "--collection" in line


def _photos(folder: Path, n: int) -> Path:
    folder.mkdir()
    for p in real_photos(n):
        shutil.copy(p, folder / p.name)
    return folder


def test_index_exit_code_says_whether_items_failed(phash_home, tmp_path):
    folder = _photos(tmp_path / "ok", 3)
    proc = imgfind_cli("index", str(folder), home=phash_home)
    assert proc.returncode == 0, proc.stderr
    assert "indexed 3" in proc.stdout and "duplicates 0" in proc.stdout
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    for extra in ([], ["--json"]):
        proc = imgfind_cli("index", str(folder), *extra, home=phash_home)
        assert proc.returncode == 3, (proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr
        if extra:
            report = json.loads(proc.stdout)  # still valid JSON
            assert [e["source"] for e in report["errors"]] == [str(folder / "broken.jpg")]
            assert report["skipped"] == 3
        else:
            assert "errors 1" in proc.stdout and "broken.jpg" in proc.stderr


def test_index_with_another_model_names_both(phash_home, tmp_path, tiny_model_dir):
    folder = _photos(tmp_path / "p", 1)
    proc = imgfind_cli("index", str(folder), "--model", "ViT-B-32__openai", home=phash_home)
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "'phash'" in line and "'ViT-B-32__openai'" in line


def _count(home: Path) -> int:
    proc = imgfind_cli("collections", "--json", home=home, timeout=60)
    if proc.returncode != 0:
        return 0
    rows = json.loads(proc.stdout)
    return rows[0]["count"] if rows else 0


def test_ctrl_c_during_index_saves_and_exits_130(tmp_path, tiny_model_dir):
    folder = tmp_path / "many"
    folder.mkdir()
    photos = sorted(FLICKR.glob("*.jpg"))[:600]
    if len(photos) < 600:
        pytest.skip("needs 600 photos")
    for p in photos:
        (folder / p.name).symlink_to(p)
    home = tmp_path / "H"
    cmd = [SCRIPT, "--home", str(home), "index", str(folder), "--model-path",
           str(tiny_model_dir), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env())
    try:
        deadline = time.monotonic() + 120
        while _count(home) == 0:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "indexing never committed a batch"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err
    m = re.search(r"^interrupted: (\d+) items saved; run again to resume$", err, re.M)
    assert m, err
    saved = int(m.group(1))
    assert 0 < saved < 600
    assert _count(home) == saved
    again = imgfind_cli("index", str(folder), "--model-path", str(tiny_model_dir), "--json",
                        home=home)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["indexed"] == 600 - saved and report["skipped"] == saved
    assert report["errors"] == []


def test_serve_on_a_busy_port_is_one_line(phash_home):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = imgfind_cli("serve", "--port", str(port), home=phash_home, timeout=60)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    line = one_error_line(proc)
    assert str(port) in line and "in use" in line


def test_search_by_an_existing_image_path(phash_home, tmp_path):
    folder = _photos(tmp_path / "p", 4)
    assert imgfind_cli("index", str(folder), home=phash_home).returncode == 0
    target = sorted(folder.iterdir())[2]
    by_path = imgfind_cli("search", str(target), "-k", "2", "--json", home=phash_home)
    assert by_path.returncode == 0, by_path.stderr
    by_option = imgfind_cli("search", "--image", str(target), "-k", "2", "--json",
                            home=phash_home)
    hits = json.loads(by_path.stdout)
    assert hits == json.loads(by_option.stdout)
    assert hits[0]["source"] == str(target)


def test_models_lists_phash():
    proc = imgfind_cli("models", "--json")
    assert proc.returncode == 0, proc.stderr
    names = [m["name"] for m in json.loads(proc.stdout)]
    assert "phash" in names
    assert "phash" in imgfind_cli("models").stdout


def test_every_option_has_help_and_workers_are_threads():
    root = typer.main.get_command(app)
    missing = []
    walked = 0
    todo: list[tuple[str, Any]] = [("imgfind", root)]
    while todo:  # the whole tree: sub-command groups too
        name, cmd = todo.pop()
        walked += 1
        for param in cmd.params:
            if param.param_type_name == "option" and not (param.help or "").strip():
                missing.append(f"{name} {param.opts[0]}")
        todo += [(f"{name} {sub}", c) for sub, c in getattr(cmd, "commands", {}).items()]
    assert walked > 10 and missing == []
    workers = next(p for p in root.commands["index"].params  # type: ignore[attr-defined]
                   if p.name == "workers")
    assert "thread" in workers.help.lower() and "process" not in workers.help.lower()
