"""Folders that index themselves: keep a collection in step with folders as they change.

A :class:`Watcher` listens to filesystem events (the ``watchdog`` library:
inotify, FSEvents, ReadDirectoryChangesW) and turns them into batched index
work in one worker thread:

* new and changed image files are indexed once they have *settled*: no event
  for ``settle`` seconds and the same size and mtime on two looks, so a file
  still being written (a copy, a download, a camera import) is never indexed
  half-written; a burst of 1,000 files becomes a few batches, not 1,000 runs;
* a moved or renamed file (or folder) keeps its item id: the item is rewritten
  under the new path with its vector, metadata and thumbnail, nothing re-embedded;
* a deleted file (or folder) removes its items.

Events can be lost (network filesystems, a full inotify queue, changes made
while no watcher ran), so a *rescan* compares the folders with the store: on
start (catching up on what changed while stopped) and every ``rescan``
seconds. A rescan recognises moves too: a new file with the sha256 of an item
whose file disappeared takes over that item's id.

>>> import imgfind                                                   # doctest: +SKIP
>>> col = imgfind.open().collection("photos")                        # doctest: +SKIP
>>> with Watcher(col, ["~/Pictures"]) as w:                          # doctest: +SKIP
...     w.wait_idle(timeout=60)
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput, SourceError
from .stores.base import Record

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent

    from .api import Collection

log = logging.getLogger("imgfind.watch")

#: Most files indexed in one batch (one ``Collection.add`` call), so progress shows.
BATCH_FILES = 256


@dataclass
class WatchStats:
    """What a watcher did so far (``batch`` is one round of work; totals add them up)."""

    indexed: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    skipped: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def add(self, other: WatchStats) -> None:
        self.indexed += other.indexed
        self.updated += other.updated
        self.moved += other.moved
        self.removed += other.removed
        self.skipped += other.skipped
        self.errors.extend(other.errors)

    def empty(self) -> bool:
        return not (self.indexed or self.updated or self.moved or self.removed
                    or self.errors)

    def to_dict(self) -> dict[str, Any]:
        return {"indexed": self.indexed, "updated": self.updated, "moved": self.moved,
                "removed": self.removed, "skipped": self.skipped, "errors": list(self.errors)}


def _is_image_path(path: str) -> bool:
    """What ``index`` would take from a folder: an image name, or image content (a JPEG
    without extension); never a hidden file."""
    from .sources import _sniff_image, has_image_name

    name = os.path.basename(path)
    return not name.startswith(".") and (has_image_name(name) or _sniff_image(path))


def _hidden(path: str, roots: Sequence[str]) -> bool:
    """Whether ``path`` lies in a hidden file or folder below its root (the walk skips those)."""
    for root in roots:
        if path == root or path.startswith(root + os.sep):
            rel = path[len(root):].lstrip(os.sep)
            return any(part.startswith(".") for part in rel.split(os.sep) if part)
    return True     # outside every root: not ours


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if os.path.isfile(path) else None


class Watcher:
    """Keeps ``collection`` in step with the folders ``paths`` until stopped.

    ``debounce``: seconds without events before a deletion is applied;
    ``settle``: seconds a new or changed file must stay unchanged before it is
    indexed; ``rescan``: seconds between full rescans (``None``: only on start);
    ``events=False`` relies on rescans alone; ``polling=True`` uses watchdog's
    polling observer (for filesystems without change notification).
    ``on_batch`` is called with the :class:`WatchStats` of every round that did
    something. Thread-safe; one worker thread does every store write.

    >>> w = Watcher(col, ["/photos"], rescan=600).start()            # doctest: +SKIP
    >>> w.stop()                                                     # doctest: +SKIP
    """

    def __init__(self, collection: Collection, paths: Iterable[str | Path], *,
                 debounce: float = 0.5, settle: float = 1.0, rescan: float | None = 300.0,
                 events: bool = True, polling: bool = False,
                 on_batch: Callable[[WatchStats], None] | None = None):
        roots = []
        for p in paths:
            path = os.path.abspath(os.path.expanduser(str(p)))
            if not os.path.isdir(path):
                raise SourceError(f"cannot watch {p}: not a folder")
            roots.append(path)
        if not roots:
            raise InvalidInput("watch needs at least one folder")
        for name, value in (("debounce", debounce), ("settle", settle)):
            if not isinstance(value, (int, float)) or value < 0:
                raise InvalidInput(f"{name} must be a number of seconds >= 0")
        if rescan is not None and (not isinstance(rescan, (int, float)) or rescan <= 0):
            raise InvalidInput("rescan must be a positive number of seconds, or None")
        self.collection = collection
        self.roots = roots
        self.debounce = float(debounce)
        self.settle = float(settle)
        self.rescan_every = rescan
        self.use_events = events
        self.polling = polling
        self.on_batch = on_batch
        self.stats = WatchStats()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        # path -> time of its last event; a file waits here until it settles
        self._dirty: dict[str, float] = {}
        # path -> (size, mtime_ns) at the previous look, for the settle check
        self._looked: dict[str, tuple[int, int]] = {}
        self._deleted: dict[str, float] = {}
        self._moves: list[tuple[str, str]] = []
        self._rescan_due = True            # the start-up catch-up
        self._busy = False
        self._observer: Any = None
        self._thread: threading.Thread | None = None
        self.rounds = 0

    # ------------------------------------------------------------------ control
    def start(self) -> Watcher:
        """Start listening and the worker thread; the first round catches up."""
        if self._thread is not None:
            return self
        if self.use_events:
            self._observer = self._make_observer()
            self._observer.start()
        self._thread = threading.Thread(target=self._loop, name="imgfind-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop listening; the batch in flight is committed first."""
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
            self._observer = None
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pending(self) -> int:
        """Changes seen but not yet applied."""
        with self._lock:
            return len(self._dirty) + len(self._deleted) + len(self._moves) + \
                int(self._rescan_due) + int(self._busy)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until nothing is pending; False if ``timeout`` passed first."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.pending() == 0:
                return True
            time.sleep(0.05)
        return False

    def rescan(self) -> None:
        """Ask for a full rescan at the next round (as a periodic rescan does)."""
        with self._lock:
            self._rescan_due = True
        self._wake.set()

    # ------------------------------------------------------------------- events
    def _make_observer(self) -> Any:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                watcher._event(event)

        observer = PollingObserver(timeout=1.0) if self.polling else Observer()
        handler = Handler()
        for root in self.roots:
            observer.schedule(handler, root, recursive=True)
        return observer

    def _event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return
        src = os.fsdecode(event.src_path)
        now = time.monotonic()
        with self._lock:
            if kind == "moved":
                dst = os.fsdecode(event.dest_path)
                self._moves.append((src, dst))
            elif kind == "deleted":
                self._dirty.pop(src, None)
                self._deleted[src] = now
            elif event.is_directory:
                if kind == "created":     # files copied in with it may come without events
                    self._dirty[src] = now
            else:                         # created, modified, closed
                self._deleted.pop(src, None)
                self._dirty[src] = now
        self._wake.set()

    # ------------------------------------------------------------------- worker
    def _loop(self) -> None:
        next_rescan = time.monotonic() + (self.rescan_every or 0)
        while not self._stop.is_set():
            self._wake.wait(0.25)
            self._wake.clear()
            if self._stop.is_set():
                break
            if self.rescan_every is not None and time.monotonic() >= next_rescan:
                with self._lock:
                    self._rescan_due = True
                next_rescan = time.monotonic() + self.rescan_every
            try:
                self.run_once()
            except Exception:   # a failing round must not end the watch; the next retries
                log.exception("watch round failed; retrying")
                time.sleep(1.0)

    def run_once(self) -> WatchStats:
        """One round: apply moves, due deletions, a due rescan and settled files."""
        with self._lock:
            self._busy = True
            moves, self._moves = self._moves, []
            now = time.monotonic()
            deleted = [p for p, t in self._deleted.items() if now - t >= self.debounce]
            for p in deleted:
                del self._deleted[p]
            rescan, self._rescan_due = self._rescan_due, False
        stats = WatchStats()
        try:
            for src, dst in _final_moves(moves):
                self._apply_move(src, dst, stats)
            if deleted:
                self._remove(deleted, stats)
            if rescan:
                self._scan(stats)
            ready = self._settled()
            for i in range(0, len(ready), BATCH_FILES):
                self._index(ready[i:i + BATCH_FILES], stats)
                if self._stop.is_set():
                    break
        finally:
            with self._lock:
                self._busy = False
        self.rounds += 1
        with self._lock:
            self.stats.add(stats)
        if not stats.empty() and self.on_batch is not None:
            self.on_batch(stats)
        return stats

    def _settled(self) -> list[str]:
        """Dirty paths that are quiet and unchanged since the last look; folders expand."""
        now = time.monotonic()
        ready: list[str] = []
        with self._lock:
            candidates = [(p, t) for p, t in self._dirty.items() if now - t >= self.settle]
        for path, _ in candidates:
            if os.path.isdir(path):
                with self._lock:
                    self._dirty.pop(path, None)
                    for dirpath, dirnames, filenames in os.walk(path):
                        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                        for f in filenames:
                            self._dirty.setdefault(os.path.join(dirpath, f), now - self.settle)
                continue
            if not _is_image_path(path) or _hidden(path, self.roots):
                with self._lock:
                    self._dirty.pop(path, None)
                continue
            st = _stat(path)
            with self._lock:
                if st is None:                       # gone again (a temp file)
                    self._dirty.pop(path, None)
                    self._looked.pop(path, None)
                elif self._looked.get(path) == st and \
                        time.time_ns() - st[1] >= self.settle * 1e9:
                    self._dirty.pop(path, None)
                    self._looked.pop(path, None)
                    ready.append(path)
                else:                                # still changing: look again later
                    self._looked[path] = st
        return sorted(ready)

    def _index(self, files: list[str], stats: WatchStats) -> None:
        try:
            report = self.collection.add(*files, remove_missing=False, show_progress=False)
        except Exception:
            # A failed batch (locked store, a model switch mid-batch) is retried next round.
            with self._lock:
                for f in files:
                    self._dirty.setdefault(f, time.monotonic() - self.settle)
            raise
        stats.indexed += report.indexed
        stats.updated += report.updated
        stats.skipped += report.skipped + report.duplicates  # both: nothing new stored
        stats.errors.extend(report.errors)

    def _known(self, path: str) -> dict[str, str]:
        """source -> id of the items at ``path`` or below it."""
        store = self.collection.store
        out = {ref: s.id for ref, s in store.source_states(path).items()
               if ref == path or ref.startswith(path + os.sep)}
        return out

    def _remove(self, paths: list[str], stats: WatchStats) -> None:
        ids: list[str] = []
        for p in paths:
            if os.path.exists(p):              # re-created since: the file events index it
                continue
            ids.extend(self._known(p).values())
        if ids:
            stats.removed += sum(self.collection.store.delete(ids))

    def _apply_move(self, src: str, dst: str, stats: WatchStats) -> None:
        inside = not _hidden(dst, self.roots)
        known = self._known(src)
        if not known:
            if inside:                          # moved in from elsewhere, or a temp file renamed
                with self._lock:
                    self._dirty[dst] = time.monotonic()
            return
        if not inside or not os.path.exists(dst) or (
                not os.path.isdir(dst) and not _is_image_path(dst)):
            stats.removed += sum(self.collection.store.delete(list(known.values())))
            return
        pairs = [(id, dst + ref[len(src):]) for ref, id in known.items()]
        stats.moved += self._rewrite(pairs)

    def _rewrite(self, pairs: list[tuple[str, str]]) -> int:
        """Point items at new paths, keeping ids, vectors, metadata and blobs."""
        from . import metadata

        store = self.collection.store
        moved = 0
        for i in range(0, len(pairs), 256):
            chunk = [(id, path) for id, path in pairs[i:i + 256] if os.path.isfile(path)]
            if not chunk:
                continue
            ids = [id for id, _ in chunk]
            items = store.get(ids)
            vectors = store.vectors([id for id, it in zip(ids, items) if it is not None])
            records, v = [], 0
            for (id, path), item in zip(chunk, items):
                if item is None:
                    continue
                try:
                    facts = metadata.file_facts(path)
                except SourceError:
                    continue
                records.append(Record(
                    id=id, source=path, vector=vectors[v], metadata=item.metadata,
                    exif=item.exif, file=facts, width=item.width, height=item.height,
                    format=item.format, sha256=item.sha256, taken=item.taken,
                    thumbnail=store.thumbnail(id), original=store.original(id)))
                v += 1
            store.put(records)
            moved += len(records)
        return moved

    def _scan(self, stats: WatchStats) -> None:
        """Compare the folders with the store: queue new and changed files, find moves,
        remove items whose files are gone."""
        from . import sources

        store = self.collection.store
        for root in self.roots:
            known = store.source_states(os.path.join(root, ""))
            on_disk: dict[str, tuple[int, int]] = {}
            for src in sources.iter_sources(root):
                st = _stat(src.ref)
                if st is not None:
                    on_disk[src.ref] = st
            new = [p for p in on_disk if p not in known]
            changed = [p for p, st in on_disk.items() if p in known and
                       (known[p].size, known[p].mtime_ns) != st]
            gone = {ref: s for ref, s in known.items() if ref not in on_disk}
            if gone and new:
                by_sha = {s.sha256: s.id for s in gone.values() if s.sha256}
                pairs = []
                for p in new:
                    digest = _sha256(p)
                    if digest in by_sha:
                        pairs.append((by_sha.pop(digest), p))
                if pairs:
                    stats.moved += self._rewrite(pairs)
                    taken = {id for id, _ in pairs}
                    gone = {ref: s for ref, s in gone.items() if s.id not in taken}
                    new = [p for p in new if p not in {path for _, path in pairs}]
            if gone:
                stats.removed += sum(store.delete([s.id for s in gone.values()]))
            now = time.monotonic()
            with self._lock:
                for p in new + changed:
                    self._dirty.setdefault(p, now - self.settle)


def _final_moves(moves: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Collapse chains (a -> b, then b -> c) into where each path ended up (a -> c)."""
    final: list[list[str]] = []
    for src, dst in moves:
        prefix = src + os.sep
        for pair in final:
            if pair[1] == src or pair[1].startswith(prefix):
                pair[1] = dst + pair[1][len(src):]
        final.append([src, dst])
    return [(a, b) for a, b in final]


def _sha256(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()
