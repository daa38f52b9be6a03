"""Shared plumbing: machine facts, library versions, result files, tables, timing.

A suite returns a result dict with ``params``, ``figures`` (anything machine
readable) and ``tables`` (list of ``{"title", "columns", "rows", "note"}``); the
same tables are printed with rich and rendered into docs/benchmarks.md.

Example::

    res = new_result("store", quick=True, params={"n": 20000})
    res["tables"].append(table("Latency", ["system", "p50 ms"], [["faiss", 0.2]]))
    path = save_result(res, Path("bench/results"))
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
DATASETS = Path(os.environ.get("IMGFIND_DATASETS", REPO.parent / "shared" / "datasets"))
#: file the random-weight model maker writes into its folders (imgfind.testing)
MODEL_STAMP = ".imgfind-test-model.json"
CACHE = Path(os.environ.get("IMGFIND_BENCH_CACHE", Path.home() / ".cache" / "imgfind-bench"))

#: every library any suite may touch; versions of the installed ones go into each result
LIBRARIES = [
    "numpy", "faiss-cpu", "onnxruntime", "tokenizers", "pillow", "pillow-heif", "psutil",
    "lancedb", "pylance", "pyarrow", "chromadb", "pymilvus", "milvus-lite", "httpx",
    "fastapi", "uvicorn", "matplotlib", "rich",
]


def machine_facts() -> dict[str, Any]:
    """CPU model, cores, RAM, OS and Python of this machine."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        ram = psutil.virtual_memory().total
    except ImportError:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def library_versions(extra: Sequence[str] = ()) -> dict[str, str]:
    """Installed versions of the benchmarked libraries plus imgfind's git commit."""
    out: dict[str, str] = {}
    for name in [*LIBRARIES, *extra]:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "src"],
                               capture_output=True, text=True, check=False).stdout.strip()
        out["imgfind"] = sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        out["imgfind"] = "unknown"
    return out


class CpuWatch:
    """How much of the machine's CPU other processes used while a suite ran.

    Busy CPU time of the whole machine (/proc/stat) minus that of this process
    and its children (waited-for ones through ``os.times``, live ones through
    psutil). A share near 0 means the figures were taken on a quiet machine.
    """

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.busy0 = self._machine_busy()
        self.own0 = self._own()

    @staticmethod
    def _machine_busy() -> float:
        f = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        v = [float(x) for x in f]
        idle = v[3] + (v[4] if len(v) > 4 else 0.0)  # idle + iowait
        return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        try:
            import psutil

            for c in psutil.Process().children(recursive=True):
                try:
                    ct = c.cpu_times()
                    own += ct.user + ct.system
                except psutil.Error:
                    pass
        except ImportError:
            pass
        return own

    def result(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        busy = self._machine_busy() - self.busy0
        own = self._own() - self.own0
        cap = wall * (os.cpu_count() or 1)
        return {"wall_s": round(wall, 1), "own_cpu_s": round(own, 1),
                "other_cpu_s": round(max(0.0, busy - own), 1),
                "other_cpu_share": round(max(0.0, busy - own) / cap, 3) if cap else 0.0}


def new_result(suite: str, quick: bool, params: dict[str, Any]) -> dict[str, Any]:
    """An empty result document for ``suite`` stamped with machine facts and start time."""
    return {
        "suite": suite,
        "date": _dt.date.today().isoformat(),
        "started": _dt.datetime.now().isoformat(timespec="seconds"),
        "quick": quick,
        # 1/5/15-min load averages: above the core count, something else shared the CPUs
        "load_start": list(os.getloadavg()),
        "machine": machine_facts(),
        "versions": library_versions(),
        "params": params,
        "figures": {},
        "tables": [],
        "notes": [],
        "_t0": time.perf_counter(),
        "_cpu": CpuWatch(),
    }


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
          note: str | None = None) -> dict[str, Any]:
    return {"title": title, "columns": list(columns), "rows": [list(r) for r in rows],
            "note": note}


def result_path(out: Path, suite: str, date: str, quick: bool, tag: str = "") -> Path:
    """``<suite>-<date>[-<tag>][.quick].json``.

    Quick runs get their own name so a later smoke run never clobbers the full
    figures; ``tag`` keeps partial runs of one suite apart (the store suite tags
    its sizes and systems, so a 1M run never overwrites the 100k one).
    """
    return out / f"{suite}-{date}{'-' + tag if tag else ''}{'.quick' if quick else ''}.json"


def save_result(res: dict[str, Any], out: Path) -> Path:
    """Write ``res`` as JSON (with its duration) and return the file path."""
    res = dict(res)
    res["duration_s"] = round(time.perf_counter() - res.pop("_t0"), 1)
    res["load_end"] = list(os.getloadavg())
    res["cpu_contention"] = res.pop("_cpu").result()
    res["versions"] = library_versions()  # peers may have been imported since the start
    out.mkdir(parents=True, exist_ok=True)
    path = result_path(out, res["suite"], res["date"], res["quick"], res.get("file_tag", ""))
    path.write_text(json.dumps(res, indent=1, default=_json_default) + "\n")
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o)}")


def fmt(v: Any) -> str:
    """Human formatting for table cells: 3 significant digits, thousands separators."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if np.isnan(v):
            return "–"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        if abs(v) >= 1:
            return f"{v:.2f}"
        return f"{v:.3f}"
    return str(v)


def print_tables(res: dict[str, Any]) -> None:
    """Print every table of a result with rich."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(140, shutil.get_terminal_size().columns))
    for t in res["tables"]:
        rt = Table(title=t["title"], caption=t.get("note"), caption_justify="left")
        for c in t["columns"]:
            rt.add_column(c, overflow="fold")
        for r in t["rows"]:
            rt.add_row(*(fmt(v) for v in r))
        console.print(rt)
    for n in res.get("notes", []):
        console.print(f"[dim]note:[/dim] {n}")


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    a = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "mean_ms": float(a.mean())}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    Linux's VmHWM, not ``getrusage``'s ru_maxrss: the latter survives fork + exec,
    so a worker started by a big parent would report the parent's peak as its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0   # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def dir_size_mb(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total / 2**20


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def python_env() -> dict[str, str]:
    """Environment for child processes: imgfind importable from src/ without installing."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(SRC), str(REPO), env.get("PYTHONPATH", "")] if p)
    return env


def run_json_subprocess(args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run ``python -m <args>`` in a fresh process; its last stdout line is a JSON object.

    Failures come back as ``{"error": "..."}`` so one broken system never stops a suite.
    A process that timed out after printing a JSON line (marked ``"partial"``) gives
    that line, with the error beside it.
    """
    cmd = [sys.executable, "-m", *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=python_env(), cwd=str(REPO), check=False)
    except subprocess.TimeoutExpired as e:
        error = f"timed out after {timeout:.0f} s"
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        partial = [ln for ln in out.splitlines() if ln.startswith("{")]
        return {**json.loads(partial[-1]), "error": error} if partial else {"error": error}
    lines = [ln for ln in p.stdout.strip().splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr or p.stdout).strip().splitlines()[-6:]
        return {"error": f"exit {p.returncode}: " + " | ".join(tail)[-600:]}
    return json.loads(lines[-1])


def have_imgfind(*modules: str) -> str | None:
    """None when every ``imgfind.<module>`` imports, else why not (for 'unavailable' rows)."""
    import importlib

    for m in modules:
        try:
            importlib.import_module(f"imgfind.{m}" if m else "imgfind")
        except Exception as e:  # noqa: BLE001 - any import failure means "not there yet"
            return f"imgfind.{m} not importable: {type(e).__name__}: {e}"
    return None


#: model layouts the bench measures: the folder layout of public ONNX CLIP exports
LAYOUTS = {
    # Optimum / transformers.js exports (e.g. Xenova/clip-vit-base-patch32): the text
    # tower has a dynamic sequence axis, so imgfind trims a query's padding
    "transformers.js": "tjs",
    # Immich's exports: the text tower is fixed at 77 tokens
    "immich": "immich",
}
DEFAULT_LAYOUT = "transformers.js"


def ensure_model(size: str = "vit-b-32", layout: str = DEFAULT_LAYOUT) -> Path:
    """The bench's random-weight CLIP model folder, made once and reused from the cache.

    ``vit-b-32`` has the real ViT-B-32 shapes, so its speed is the real model's speed.
    Each layout gets its own folder (``vit-b-32-tjs``, ``vit-b-32-immich``).

    >>> ensure_model("vit-b-32", "immich").name   # doctest: +SKIP
    'vit-b-32-immich'
    """
    folder = CACHE / f"{size}-{LAYOUTS[layout]}"
    # remade when missing, half-written or made with other settings (make-model's stamp)
    from imgfind.testing import is_current

    if not is_current(folder, size, reference=False, layout=layout):
        folder.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "imgfind.testing", "make-model", str(folder),
                        "--size", size, "--layout", layout, "--no-reference"],
                       check=True, env=python_env(), cwd=str(REPO))
    return folder


def flickr_images(n: int) -> list[Path]:
    """The first ``n`` Flickr8k photos of the shared data set, in a stable order."""
    files = sorted((DATASETS / "flickr8k-1k" / "images").glob("*.jpg"))
    if not files:
        raise SystemExit(f"no photos under {DATASETS / 'flickr8k-1k' / 'images'}; "
                         "set IMGFIND_DATASETS to the datasets folder")
    return files[:n]


def log(msg: str) -> None:
    """One progress line on stderr, so long runs show where they are."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
