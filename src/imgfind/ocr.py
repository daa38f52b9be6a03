"""Text inside images: rapidocr_onnxruntime (PP-OCRv4 detection + recognition, offline).

OCR costs several times an embedding, so it never runs inside the embedding pass: a
collection created with ``ocr=True`` gets it as its own resumable pass afterwards
(``index`` runs it, ``imgfind ocr`` resumes it, ``serve`` runs it in the background).

Kept cheap where photos have no text:

* the image is scaled so its longest side is at most :data:`MAX_SIDE` before detection,
  and detection runs at that size (rapidocr's default *upscales* the shorter side to
  736 px: 2.6x the pixels of a 500x375 photo);
* recognition runs only on the boxes detection found (none: no recognition at all);
* the 0/180-degree line classifier is off (photos rarely hold upside-down text).

>>> engine = OcrEngine()                                        # doctest: +SKIP
>>> engine.read(Image.open("sign.jpg")).text                    # doctest: +SKIP
'EXIT'
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

#: longest side (px) OCR looks at; text must stay >= ~10 px high at this scale
MAX_SIDE = 1024
#: lines recognised with less confidence than this are dropped
MIN_CONFIDENCE = 0.5
#: what ``OcrResult.engine`` records, so a later engine change can tell stale results
ENGINE = "rapidocr-onnxruntime/PP-OCRv4"


@dataclass(frozen=True)
class OcrLine:
    """One recognised line: its text, confidence (0-1) and box as 4 (x, y) corners in
    the original image's pixels (clockwise from top-left of the text)."""

    text: str
    confidence: float
    box: list[list[int]]


@dataclass(frozen=True)
class OcrResult:
    """Everything OCR found in one image. ``text`` is the lines joined by newlines.

    >>> OcrResult.from_dict(OcrResult(text="", lines=[]).to_dict()).text
    ''
    """

    text: str
    lines: list[OcrLine] = field(default_factory=list)
    engine: str = ENGINE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OcrResult:
        return cls(text=d.get("text", ""), engine=d.get("engine", ENGINE),
                   lines=[OcrLine(text=x["text"], confidence=float(x["confidence"]),
                                  box=[list(map(int, p)) for p in x["box"]])
                          for x in d.get("lines", [])])


class OcrEngine:
    """A loaded rapidocr pipeline; ``read`` is thread-safe (one image at a time).

    ``threads``: ONNX Runtime intra-op threads per model (None: its default, all cores).
    """

    def __init__(self, max_side: int = MAX_SIDE, min_confidence: float = MIN_CONFIDENCE,
                 threads: int | None = None) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]
        except ImportError as e:  # pragma: no cover - depends on the install
            from .errors import NotSupported

            raise NotSupported("OCR needs rapidocr_onnxruntime: pip install "
                               "'imgfind[ocr]'") from e
        n = -1 if threads is None else int(threads)
        self.max_side = int(max_side)
        self.min_confidence = float(min_confidence)
        self._ocr = RapidOCR(use_cls=False, text_score=self.min_confidence,
                             max_side_len=self.max_side, print_verbose=False,
                             det_limit_type="max", det_limit_side_len=self.max_side,
                             intra_op_num_threads=n)
        self._lock = threading.Lock()

    def read(self, image: Image.Image) -> OcrResult:
        """Recognise the text in one image (any mode; EXIF rotation already applied)."""
        im = image.convert("RGB")
        scale = 1.0
        if max(im.size) > self.max_side:
            scale = self.max_side / max(im.size)
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                           Image.Resampling.BILINEAR)
        bgr = np.ascontiguousarray(np.asarray(im)[:, :, ::-1])
        with self._lock:
            found, _elapsed = self._ocr(bgr, use_cls=False)
        lines = []
        for box, text, conf in found or []:
            text = str(text).strip()
            if not text or float(conf) < self.min_confidence:
                continue
            pts = [[round(float(x) / scale), round(float(y) / scale)] for x, y in box]
            lines.append(OcrLine(text=text, confidence=round(float(conf), 4), box=pts))
        return OcrResult(text="\n".join(line.text for line in lines), lines=lines)


_shared: dict[tuple[int, float, int | None], list[OcrEngine]] = {}
_shared_lock = threading.Lock()


def shared_engine(max_side: int = MAX_SIDE, min_confidence: float = MIN_CONFIDENCE,
                  threads: int | None = None) -> OcrEngine:
    """One engine per setting per process (loading the models takes ~0.5 s)."""
    return shared_engines(1, max_side, min_confidence, threads)[0]


def shared_engines(n: int, max_side: int = MAX_SIDE, min_confidence: float = MIN_CONFIDENCE,
                   threads: int | None = None) -> list[OcrEngine]:
    """``n`` engines of one setting, kept for the process: a pass (and each step of the
    server's worker) reuses them instead of loading the models again."""
    key = (max_side, min_confidence, threads)
    with _shared_lock:
        engines = _shared.setdefault(key, [])
        while len(engines) < n:
            engines.append(OcrEngine(max_side, min_confidence, threads))
        return engines[:n]


@dataclass
class OcrReport:
    """What one OCR pass did: items ``read``, how many had text, per-item ``errors``
    (images that could not be read: stored with an empty text and the error, so a
    pass never stalls on them), items still ``pending`` after it, and its ``seconds``."""

    read: int = 0
    with_text: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    pending: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_workers() -> int:
    """Threads for the pass: one engine each, single-threaded inside (ONNX Runtime's own
    threads spin and doubled the CPU per photo on 2 cores)."""
    import os

    return max(1, min(4, os.cpu_count() or 1))


def _read_one(col: Any, engine: OcrEngine, item_id: str) -> dict[str, Any]:
    from . import imageio
    from .errors import ImgfindError

    try:
        data = col.image(item_id)
        decoded = imageio.decode(data, limits=col.library.limits,
                                 min_size=engine.max_side // 2)
        return engine.read(decoded.image).to_dict()
    except ImgfindError as e:
        return {"text": "", "lines": [], "engine": ENGINE, "error": e.message}
    except Exception as e:  # a decoder bug fails one item, never the pass
        return {"text": "", "lines": [], "engine": ENGINE,
                "error": f"{type(e).__name__}: {e}"}


def run_pass(col: Any, *, workers: int | None = None, limit: int | None = None,
             progress: Callable[[int, int | None], None] | None = None,
             stop: threading.Event | None = None, batch: int = 16) -> OcrReport:
    """Read the text of every item of ``col`` (a :class:`imgfind.Collection`) that OCR
    has not read yet; resumable: results are committed every ``batch`` items, so a
    killed pass loses at most one batch and the next one starts where it stopped.

    ``limit``: read at most this many; ``stop``: an event that ends the pass after the
    batch in flight; ``progress(done, total)``: called after every batch.
    """
    import time
    from concurrent.futures import ThreadPoolExecutor

    store = col.store
    t0 = time.perf_counter()
    report = OcrReport()
    n = workers or default_workers()
    free = list(shared_engines(n, threads=1))
    free_lock = threading.Lock()

    def work(item_id: str) -> dict[str, Any]:
        with free_lock:
            engine = free.pop()
        try:
            return _read_one(col, engine, item_id)
        finally:
            with free_lock:
                free.append(engine)

    total = store.ocr_progress()["pending"]
    if limit is not None:
        total = min(total, limit)
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="imgfind-ocr") as pool:
        while (limit is None or report.read < limit) and not (stop and stop.is_set()):
            size = batch if limit is None else min(batch, limit - report.read)
            todo = store.ocr_todo(size)
            if not todo:
                break
            ids = [i for i, _src in todo]
            results = dict(zip(ids, pool.map(work, ids)))
            store.set_ocr(results)
            report.read += len(results)
            for i, r in results.items():
                if r.get("error"):
                    report.errors.append({"id": i, "error": r["error"]})
                elif r["text"]:
                    report.with_text += 1
            if progress:
                progress(report.read, total)
    report.pending = store.ocr_progress()["pending"]
    report.seconds = round(time.perf_counter() - t0, 3)
    return report
