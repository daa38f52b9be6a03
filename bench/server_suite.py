"""Suite ``server``: warm text-search latency and throughput through the REST API.

Starts ``python -m imgfind --home H serve --port P --model-path DIR`` on
127.0.0.1 over the same 10k-item collection as the ``cli`` suite, waits until
it answers, warms it, then measures ``POST /api/collections/default/search``
with ``{"text": ..., "k": 10}``: one client in a loop (p50/p99), then 8
concurrent clients (threads, one httpx client each) for a bounded time.

Example::

    res = run(quick=True)
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .cli_suite import home_for
from .common import LAYOUTS, REPO, ensure_model, new_result, python_env, table
from .common import log as blog

QUERIES = ["a dog", "a dog running on a beach", "two children playing in the snow",
           "a man riding a bike", "a red car parked on a street", "people at a concert",
           "a cat sleeping on a sofa", "a mountain lake at sunset"]
CLIENTS = 8
TARGET_P50_MS = 30.0
TARGET_QPS = 40.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    import httpx

    t = time.monotonic()
    while time.monotonic() - t < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not answer within {timeout:.0f} s")


def _latency(url: str, n: int) -> dict[str, float]:
    import httpx

    lat = []
    with httpx.Client(timeout=30.0) as c:
        for i in range(n):
            t = time.perf_counter()
            r = c.post(url, json={"text": QUERIES[i % len(QUERIES)], "k": 10})
            lat.append(time.perf_counter() - t)
            r.raise_for_status()
    a = np.asarray(lat) * 1000.0
    return {"requests": n, "p50_ms": float(np.percentile(a, 50)),
            "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean())}


def _throughput(url: str, seconds: float) -> dict[str, float]:
    import httpx

    stop = time.monotonic() + seconds
    counts = [0] * CLIENTS
    errors = [0] * CLIENTS
    lat: list[float] = []
    lock = threading.Lock()

    def worker(w: int) -> None:
        mine = []
        with httpx.Client(timeout=30.0) as c:
            i = w
            while time.monotonic() < stop:
                t = time.perf_counter()
                r = c.post(url, json={"text": QUERIES[i % len(QUERIES)], "k": 10})
                mine.append(time.perf_counter() - t)
                if r.status_code == 200:
                    counts[w] += 1
                else:
                    errors[w] += 1
                i += 1
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(CLIENTS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    a = np.asarray(lat) * 1000.0
    return {"clients": CLIENTS, "seconds": wall, "ok": sum(counts), "errors": sum(errors),
            "qps": sum(counts) / wall, "p50_ms": float(np.percentile(a, 50)),
            "p99_ms": float(np.percentile(a, 99))}


def _serve_and_measure(layout: str, n_lat: int, secs: float) -> dict[str, Any]:
    model = ensure_model("vit-b-32", layout)
    home = home_for(layout)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/api/collections/default/search"
    log = Path(home) / "bench-server.log"
    with open(log, "w") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "imgfind", "--home", str(home), "serve",
                                 "--port", str(port), "--model-path", str(model)],
                                stdout=logf, stderr=subprocess.STDOUT, env=python_env(),
                                cwd=str(REPO))
    try:
        _wait_ready(f"{base}/openapi.json", proc)
        _latency(url, 10)  # loads the text tower and warms caches
        return {"latency": _latency(url, n_lat), "throughput": _throughput(url, secs)}
    except Exception as e:
        raise SystemExit(f"server suite failed: {e}; server log: {log}") from e
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def run(quick: bool) -> dict[str, Any]:
    n_lat, secs = (100, 10.0) if quick else (500, 60.0)
    res = new_result("server", quick, {"items": 10_000, "latency_requests": n_lat,
                                       "throughput_seconds": secs, "clients": CLIENTS,
                                       "endpoint": "POST /api/collections/default/search",
                                       "model": "random-weight ViT-B-32 shapes (ONNX)",
                                       "layouts": list(LAYOUTS)})
    res["figures"] = {"layouts": {}}
    rows = []
    for layout in LAYOUTS:
        blog(f"server: {layout} layout")
        f = res["figures"]["layouts"][layout] = _serve_and_measure(layout, n_lat, secs)
        lat, thr = f["latency"], f["throughput"]
        rows += [
            [layout, "warm latency p50 ms (1 client)", lat["p50_ms"],
             f"<= {TARGET_P50_MS:.0f}", lat["p50_ms"] <= TARGET_P50_MS],
            [layout, "warm latency p99 ms (1 client)", lat["p99_ms"], None, None],
            [layout, f"queries/s ({CLIENTS} clients, {thr['seconds']:.0f} s)", thr["qps"],
             f">= {TARGET_QPS:.0f}", thr["qps"] >= TARGET_QPS],
            [layout, f"latency p50 ms under load ({CLIENTS} clients)", thr["p50_ms"], None,
             None],
            [layout, "errors under load", thr["errors"], "0", thr["errors"] == 0],
        ]
    res["tables"].append(table("REST text search on 10,000 items", [
        "model layout", "measure", "value", "target", "pass"], rows,
        note="transformers.js layout: text tower with a dynamic sequence axis (query "
             "padding trimmed); immich layout: text tower fixed at 77 tokens, run at the query's "
             "length once a rewrite is proven exact (verdict cached in IMGFIND_CACHE)."))
    return res
