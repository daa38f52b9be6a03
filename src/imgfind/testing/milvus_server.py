"""``python -m imgfind.testing milvus-server DIR --port P``: a local Milvus Lite gRPC server.

The same network client path as a Milvus cluster (``--store milvus://127.0.0.1:P``),
for tests and for trying several ``imgfind serve`` processes on one laptop. It binds
127.0.0.1 only, prints ``milvus-server listening on 127.0.0.1:PORT`` once it accepts
connections (``--port 0`` picks a free port), and shuts down cleanly on SIGTERM or
Ctrl-C (the data folder is locked while it runs).
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["serve"]


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def serve(data_dir: str | Path, port: int, host: str = "127.0.0.1") -> int:
    """Run until SIGTERM / SIGINT; returns the exit status."""
    try:
        from milvus_lite.adapter.grpc.server import start_server_in_thread  # type: ignore[import-untyped]
    except ImportError:
        print("milvus-server needs milvus-lite 3.x: pip install 'imgfind[milvus]'",
              file=sys.stderr)
        return 1
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    # gRPC binds with SO_REUSEPORT, so a second server would silently share the port
    # with the first: test the port the plain way first.
    if port and not _port_free(host, port):
        print(f"milvus-server: port {port} on {host} is in use", file=sys.stderr)
        return 1
    try:
        server, db, bound = start_server_in_thread(str(data_dir), host=host, port=port)
    except Exception as e:   # milvus-lite raises several types (lock held, port busy)
        print(f"milvus-server: cannot start on {host}:{port}: {e}", file=sys.stderr)
        return 1
    if not bound:
        print(f"milvus-server: port {port} on {host} is in use", file=sys.stderr)
        db.close()
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"milvus-server listening on {host}:{bound} (data in {data_dir})", flush=True)
    stop.wait()
    server.stop(grace=2).wait()
    db.close()
    return 0
