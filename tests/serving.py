"""`imgfind serve` as a real subprocess on a free 127.0.0.1 port, for the tests that run
the installed server end to end (tests/test_server.py, tests/test_ocr_rest.py)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(command: list[str], env: Mapping[str, str] | None = None,
          timeout: float = 60) -> Iterator[str]:
    """Run ``command + ["--port", PORT]`` until /api/health answers; yields the base URL.
    A server that exits or stays down past ``timeout`` fails the test with its output;
    the server is terminated on the way out."""
    port = free_port()
    proc = subprocess.Popen([*command, "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(url + "/api/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
