"""The OCR pass in the background of ``imgfind serve``: reads the text of new images in
every OCR collection, a small batch at a time, so embedding (and search) never waits
for OCR. Uploads and index jobs only embed; this worker catches up behind them.

>>> worker = OcrWorker(imgfind.open("/tmp/lib"), threads=1).start()   # doctest: +SKIP
>>> worker.state()                                                    # doctest: +SKIP
{'running': True, 'reading': None, 'read': 0, 'errors': 0}
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ..api import Library
from ..errors import ImgfindError

log = logging.getLogger("imgfind.ocr")

#: items read per step: the worker looks at other collections (and stop) between steps
STEP = 8
#: seconds between looks for new work when there was none
IDLE_SECONDS = 2.0


class OcrWorker:
    """One daemon thread running OCR passes over every OCR collection of ``library``."""

    def __init__(self, library: Library, threads: int = 1, idle: float = IDLE_SECONDS):
        self.library = library
        self.threads = max(1, int(threads))
        self.idle = idle
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._reading: str | None = None
        self._read = 0
        self._errors = 0

    def start(self) -> OcrWorker:
        self._thread = threading.Thread(target=self._loop, name="imgfind-ocr-worker",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the step in flight (its results are kept)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Look for work now instead of after the idle pause."""
        self._wake.set()

    def state(self) -> dict[str, Any]:
        """{"running", "reading": collection or None, "read": n, "errors": n} since start."""
        alive = self._thread is not None and self._thread.is_alive()
        return {"running": alive, "reading": self._reading, "read": self._read,
                "errors": self._errors}

    def _loop(self) -> None:
        while not self._stop.is_set():
            worked = False
            try:
                names = [c.name for c in self.library.collections()
                         if getattr(c, "ocr", False) and not getattr(c, "problem", None)]
            except ImgfindError as e:
                log.warning("OCR worker: cannot list collections: %s", e)
                names = []
            for name in names:
                if self._stop.is_set():
                    break
                worked |= self._step(name)
            if not worked:
                self._wake.wait(self.idle)
                self._wake.clear()

    def _step(self, name: str) -> bool:
        try:
            col = self.library.collection(name)
            if not col.ocr_status()["pending"]:
                return False
            self._reading = name
            report = col.run_ocr(limit=STEP, workers=self.threads, stop=self._stop)
        except ImgfindError as e:       # a dropped collection, a store error: try later
            log.warning("OCR worker: collection %r: %s", name, e)
            return False
        except Exception:               # never let one bad step end the worker
            log.exception("OCR worker: collection %r", name)
            return False
        finally:
            self._reading = None
        self._read += report.read
        self._errors += len(report.errors)
        return report.read > 0
