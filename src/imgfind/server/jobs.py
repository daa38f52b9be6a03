"""Background index jobs: ``Collection.add`` in a thread, with progress and cancellation.

>>> jobs = JobManager(max_running=2)                                  # doctest: +SKIP
>>> job = jobs.start(library.collection("default"), ["/srv/photos"])  # doctest: +SKIP
>>> jobs.get(job.id).to_dict()["state"]                              # doctest: +SKIP
'running'
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..api import Collection
from ..errors import ImgfindError, InvalidInput, NotFound
from ..types import IndexReport

log = logging.getLogger("imgfind.server")

#: Finished jobs kept for status queries; older ones are forgotten first.
KEEP_FINISHED = 100


#: Other work a job may run instead of an index: ``work(progress, cancel)`` -> a report
#: with ``to_dict()`` (e.g. ``Collection.reembed``).
Work = Callable[[Callable[[int, int | None], None], threading.Event], Any]


class Job:
    """One index run (or other ``work``): its progress while it runs, its report once it ends."""

    def __init__(self, collection: Collection, paths: list[str], options: dict[str, Any],
                 guard: Callable[[], None] | None = None, work: Work | None = None,
                 kind: str = "index"):
        self.id = uuid.uuid4().hex[:12]
        self.kind = kind
        self.work = work
        self.collection = collection
        self.paths = paths
        self.options = options
        self.guard = guard
        self.state = "running"
        self.done = 0
        self.total: int | None = None
        self.report: Any = None
        self.error: dict[str, str] | None = None
        self.started = _now()
        self.finished: str | None = None
        self.cancel_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"imgfind-job-{self.id}",
                                       daemon=True)

    def _progress(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total

    def _run(self) -> None:
        try:
            if self.guard is not None:
                self.guard()
            if self.work is not None:
                self.report = self.work(self._progress, self.cancel_event)
            else:
                self.report = self.collection.add(*self.paths, progress=self._progress,
                                                  cancel=self.cancel_event, show_progress=False,
                                                  **self.options)
            self.state = "cancelled" if self.cancel_event.is_set() else "done"
        except ImgfindError as e:
            self.error, self.state = e.to_dict(), "failed"
        except Exception as e:  # a crash must end as a failed job, never a stuck "running" one
            log.exception("%s job %s crashed", self.kind, self.id)
            self.error = {"code": "error", "message": f"{type(e).__name__}: {e}"}
            self.state = "failed"
        finally:
            self.finished = _now()

    def to_dict(self) -> dict[str, Any]:
        report = self.report or (IndexReport() if self.work is None else None)
        return {"id": self.id, "kind": self.kind, "collection": self.collection.name,
                "paths": self.paths,
                "state": self.state, "done": self.done, "total": self.total,
                **(report.to_dict() if report is not None else {}), "error": self.error,
                "started": self.started,
                "finished": self.finished}


class JobManager:
    """Starts, tracks and cancels index jobs; at most ``max_running`` at once."""

    def __init__(self, max_running: int = 2):
        self.max_running = max_running
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, collection: Collection, paths: list[str], *,
              guard: Callable[[], None] | None = None, work: Work | None = None,
              kind: str = "index", **options: Any) -> Job:
        """Run ``collection.add(*paths, **options)`` (or ``work``) in a thread; ``guard`` runs
        first in that thread and fails the job by raising (e.g. a path check that walks a big
        folder)."""
        with self._lock:
            running = sum(j.state == "running" for j in self._jobs.values())
            if running >= self.max_running:
                raise InvalidInput(f"{running} index jobs are already running (the limit); "
                                   "wait for one to finish or cancel it")
            job = Job(collection, paths, options, guard, work, kind)
            self._jobs[job.id] = job
            finished = [k for k, j in self._jobs.items() if j.state != "running"]
            for k in finished[:max(0, len(finished) - KEEP_FINISHED)]:
                del self._jobs[k]
        job.thread.start()
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no index job {job_id!r} (finished jobs are kept for a while, "
                           "then forgotten)")
        return job

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop; it finishes the batch in flight and ends ``cancelled``."""
        job = self.get(job_id)
        job.cancel_event.set()
        return job

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel every running job and wait a little for them to commit and stop."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel_event.set()
        for job in jobs:
            job.thread.join(timeout)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
