"""ONNX Runtime sessions that load fast: a cached optimized copy with memory-mapped weights.

Creating a session for a 250 MB text tower from its ``.onnx`` file takes most
of a cold text query: the protobuf is parsed, every weight is copied onto the
heap, the graph is optimized and the weights are pre-packed for the matrix
kernels (copied again). :func:`open_session` keeps ONNX Runtime's own
optimized copy of the graph in the cache, with the weights in a separate data
file that ONNX Runtime maps into memory instead of reading, so a later load
only parses the small graph and runs no optimization passes. With
``prepack=False`` the weights are not pre-packed either, and the session is
ready in tens of milliseconds; each run then packs the weights it uses as it
goes (a short query runs ~2x slower), which pays for a process that runs one
query (``OnnxClipEmbedder`` upgrades to a pre-packed session on its second).

The copy lives in ``text_trim.TrimCache(path).dir / "optimized-ort<version>"``:
keyed by the model file's path, size and modification time (a changed model
never loads a stale copy) and by ONNX Runtime's version (an optimized graph is
tied to it). It is written into a temporary folder and renamed into place, so
a reader sees a whole copy or none; a cache that cannot be written is logged
and the model loads from its own file.

>>> session, loaded_from = open_session(Path("textual/model.onnx"), opts,   # doctest: +SKIP
...                                     ["CPUExecutionProvider"], prepack=False)
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .text_trim import TrimCache

log = logging.getLogger(__name__)

_MODEL = "model.onnx"
_DATA = "model.onnx.data"
#: weights smaller than this stay inside the graph file (the rest are memory-mapped)
_EXTERNAL_MIN_BYTES = 1024
#: temporary folders older than this are left over from a killed writer
_STALE_TMP_S = 3600


def open_session(path: Path, opts: Any, providers: Sequence[str], *, prepack: bool = True,
                 on_start: Callable[[], None] | None = None) -> tuple[Any, Path]:
    """An ONNX Runtime session for ``path`` -> (session, the file it was loaded from).

    On the CPU the cached optimized copy is loaded when there is one (with the
    optimization passes off), else made from ``path`` by this load. A damaged
    copy is dropped (logged) and made again. Other providers load ``path`` as is.
    ``prepack=False`` skips pre-packing the weights (see the module docstring).
    ``on_start`` is called just before ONNX Runtime takes over (and releases the GIL).
    """
    import onnxruntime as ort

    started = on_start or (lambda: None)

    if not prepack:
        opts.add_session_config_entry("session.disable_prepacking", "1")
    providers = list(providers)
    if providers != ["CPUExecutionProvider"]:
        started()
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers), path
    folder = TrimCache(path).dir / f"optimized-ort{ort.__version__}"
    cached = folder / _MODEL
    if cached.is_file():
        level = opts.graph_optimization_level
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            started()
            return ort.InferenceSession(str(cached), sess_options=opts,
                                        providers=providers), cached
        except Exception as e:  # ORT raises untyped errors
            log.warning("dropping the unreadable optimized graph %s: %s", folder, e)
            shutil.rmtree(folder, ignore_errors=True)
        opts.graph_optimization_level = level
    return _load_and_save(path, folder, opts, providers, started), path


def _load_and_save(path: Path, folder: Path, opts: Any, providers: list[str],
                   started: Callable[[], None]) -> Any:
    """Load ``path`` and have ONNX Runtime write its optimized copy to ``folder``."""
    import onnxruntime as ort

    tmp = folder.with_name(f".{folder.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        log.warning("cannot cache the optimized text graph in %s: %s", folder.parent, e)
        started()
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    level = opts.graph_optimization_level
    # The extended level: the level above it only rearranges convolutions, which a
    # text tower has none of, and its result is tied to this CPU's instruction set.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(tmp / _MODEL)
    opts.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                  _DATA)
    opts.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes",
        str(_EXTERNAL_MIN_BYTES))
    try:
        started()
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as e:  # ORT's own error types: e.g. the disk is full
        shutil.rmtree(tmp, ignore_errors=True)
        log.warning("cannot cache the optimized text graph of %s (%s); loading it as it is",
                    path, e)
        opts.optimized_model_filepath = ""  # empty: save nothing
        opts.graph_optimization_level = level
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    try:
        for name in (_MODEL, _DATA):
            if (tmp / name).is_file():
                _fsync(tmp / name)  # a crash after the rename must not leave zeroed weights
        os.rename(tmp, folder)  # a folder already there (another process's copy) stays
    except OSError as e:
        if not (folder / _MODEL).is_file():
            log.warning("cannot cache the optimized text graph %s: %s", folder, e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    drop_optimized(folder.parent, keep=folder)
    return session


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drop_optimized(folder: Path, keep: Path | None = None) -> None:
    """Remove the optimized copies in ``folder`` (those of other ONNX Runtime versions,
    or all when ``keep`` is None), older single-file copies, and temporary folders
    left by killed writers."""
    now = time.time()
    for old in folder.glob("optimized-ort*"):
        if old == keep:
            continue
        with contextlib.suppress(OSError):
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink()
    for tmp in folder.glob(".optimized-ort*.tmp"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > _STALE_TMP_S:
                shutil.rmtree(tmp)
