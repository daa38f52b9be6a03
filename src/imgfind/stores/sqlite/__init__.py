"""The embedded store: one SQLite file per collection, plus a derived faiss index.

Layout::

    <home>/collections/<name>/items.db        source of truth (WAL mode)
    <home>/collections/<name>/vectors.index   derived vector index (rebuildable)

``items.db`` holds the rows (``items``: metadata, EXIF and file facts as
JSON, image facts), their vectors (``vectors``), thumbnails and stored
originals (``blobs``), an FTS5 table over the source path and the text of
metadata, EXIF and the file name (``fts``), and ``tombstones`` of deleted
rowids. Every change bumps a sequence number (``meta.seq``) and stamps the
changed rows with it; the vector index records the ``seq`` it reflects, so any
handle (this process or another one sharing the store) catches up by reading
only what changed since. A kill at any moment loses nothing that was
committed: the index file is replaced atomically and, if missing, stale,
damaged or of the wrong kind, is caught up or rebuilt from the rows on open.

Vectors are stored as little-endian float16 (1 KiB for 512-d, 15 rows a 16 KiB
page where float32 fit 7) and read back as float32 (:func:`.codec.decode_vectors`);
cosines from them are within ~1e-3 of float32 ones, which moves no ranking beyond
near-ties. Stores written before schema 5 hold float32 rows: those are read as
they are (each blob is decoded by its length, so old and new rows mix), converted
to float16 when their item is written again, and all at once by :meth:`rebuild
<SQLiteStore.rebuild>` (batch by batch, each its own transaction); nothing is
rewritten at upgrade. The file itself only shrinks by ``VACUUM``. Schema 5 makes
an older imgfind refuse the store (StoreTooNew) rather than misread float16 rows.

Modules, by job: :mod:`.schema` (the file, its schema version) and
:mod:`.migrations`, :mod:`.codec` (row conversions), :mod:`.core` (connection,
transactions), :mod:`.rows` (reads and writes), :mod:`.sync` (vector index in
step with the rows), :mod:`.planner` (search), :mod:`.store` (the handle and
its health checks), :mod:`.backend` (named collections).

Filtered search (:mod:`.planner`): the filter becomes a rowid bitmap from an
in-memory cache of the filter fields (:mod:`.filter_cache`, no SQL per query);
the IVF index then scans only those rows' codes, probing enough lists to expect
plenty of matches, and a repeated filter with at most 20,000 matches is served
from its own in-memory set (:mod:`.match_vectors`). Either way the few
candidates that can still reach the top k are re-ranked from the stored vectors.
On large collections (>= ``auto_index_min`` items) the JSON fields a filter
reads get SQLite expression indexes the first time they are used, so the
filter itself stays fast; :meth:`SQLiteStore.index_field` creates one
explicitly.

>>> import tempfile, numpy as np
>>> from imgfind.stores.base import CollectionInfo, Record
>>> backend = SQLiteBackend(tempfile.mkdtemp())
>>> store = backend.create(CollectionInfo(name="demo", model="toy", dim=2))
>>> store.put([Record(id="a", source="/x/a.jpg", vector=np.array([1, 0], np.float32),
...                   metadata={"breed": "labrador"})])
['a']
>>> store.search(np.array([[1, 0]], np.float32), k=1, where={"breed": "labrador"})
[[('a', 1.0)]]
>>> backend.close()
"""

from __future__ import annotations

from .backend import SQLiteBackend
from .codec import fts_query
from .core import StoreOptions
from .schema import DB_FILE, INDEX_FILE, NAME_RE
from .store import SQLiteStore

__all__ = ["DB_FILE", "INDEX_FILE", "NAME_RE", "SQLiteBackend", "SQLiteStore", "StoreOptions",
           "fts_query"]
