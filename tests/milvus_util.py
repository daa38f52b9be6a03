"""Milvus Lite for tests: the gRPC server as a subprocess, and backend factories.

Used by the Milvus store tests, the contract suite and the two-server test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_LISTEN = re.compile(r"listening on 127\.0\.0\.1:(\d+)")


def have_milvus() -> bool:
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError:
        return False
    return True


needs_milvus = pytest.mark.skipif(not have_milvus(), reason="needs the milvus extra")


@contextmanager
def milvus_server(data_dir: Path, timeout: float = 90) -> Iterator[int]:
    """Run ``python -m imgfind.testing milvus-server DATA --port 0``; yields its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "imgfind.testing", "milvus-server", str(data_dir), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    try:
        deadline = time.monotonic() + timeout
        port = None
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = _LISTEN.search(line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            proc.kill()
            raise RuntimeError(f"milvus-server did not start: {proc.stdout.read()[-2000:]}")
        yield port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
