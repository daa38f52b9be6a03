"""The collection database file: its base schema and how it is opened and probed.

Schema versions and the migrations between them are in :mod:`.migrations`;
:data:`SCHEMA` is version 1 and never changes.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from ...errors import StoreError, StoreTooNew
from ..base import CollectionInfo
from .migrations import refuse_newer, stored_version

__all__ = ["DB_FILE", "INDEX_FILE", "NAME_RE", "SCHEMA", "connect", "probe", "read_info"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DB_FILE = "items.db"
INDEX_FILE = "vectors.index"

SCHEMA = """CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE items(
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: the vector index keys on it
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    exif TEXT NOT NULL DEFAULT '{}',
    file TEXT NOT NULL DEFAULT '{}',
    width INTEGER, height INTEGER, format TEXT, sha256 TEXT, taken TEXT,
    stored INTEGER NOT NULL DEFAULT 0,
    added TEXT NOT NULL, updated TEXT NOT NULL,
    seq INTEGER NOT NULL);
CREATE INDEX items_seq ON items(seq);
CREATE INDEX items_source ON items(source);
CREATE INDEX items_sha256 ON items(sha256);
CREATE TABLE vectors(rowid INTEGER PRIMARY KEY REFERENCES items(rowid) ON DELETE CASCADE,
                     v BLOB NOT NULL);
CREATE TABLE blobs(rowid INTEGER PRIMARY KEY REFERENCES items(rowid) ON DELETE CASCADE,
                   thumbnail BLOB, original BLOB);
CREATE TABLE tombstones(rowid INTEGER NOT NULL, seq INTEGER NOT NULL);
CREATE INDEX tombstones_seq ON tombstones(seq);
CREATE VIRTUAL TABLE fts USING fts5(path, body, tokenize='unicode61 remove_diacritics 2');
"""


#: SQLite page cache (PRAGMA cache_size, negative = KiB) while reading: searches touch a
#: few random rows each, so a big cache mostly holds pages never read again (64 MiB of
#: them after 500 queries on 1M items, an eighth of the process).
READ_CACHE = -8192
#: ... and inside write transactions, where index B-tree pages are revisited row after row.
WRITE_CACHE = -65536


def connect(path: Path) -> sqlite3.Connection:
    try:
        con = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        # Takes effect only when the file is created. 16 KiB pages hold several float32
        # vectors each; with 4 KiB pages a 2 KiB (512-d) vector wastes half a page.
        con.execute("PRAGMA page_size=16384")
        con.execute("PRAGMA busy_timeout=30000")
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        # Checkpoints truncate the WAL back to 64 MiB after a big import.
        con.execute("PRAGMA journal_size_limit=67108864")
        con.execute("PRAGMA foreign_keys=ON")
        con.execute(f"PRAGMA cache_size={READ_CACHE}")
        con.execute("PRAGMA temp_store=MEMORY")
    except sqlite3.DatabaseError as e:
        raise StoreError(f"cannot open {path}: {e}; the file is damaged or not an imgfind "
                         "store (restore it from a backup or drop the collection)") from e
    return con


def read_info(con: sqlite3.Connection) -> CollectionInfo:
    """The collection facts in ``meta`` (any schema version); StoreError if there are none."""
    try:
        meta = dict(con.execute("SELECT key, value FROM meta"))
    except sqlite3.DatabaseError as e:
        raise StoreError(f"not an imgfind collection database: {e}") from e
    if not all(k in meta for k in ("name", "model", "dim")):
        raise StoreError("not an imgfind collection database: its meta table lacks "
                         "name, model or dim")
    return CollectionInfo(name=meta["name"], model=meta["model"], dim=int(meta["dim"]),
                          model_path=meta.get("model_path"), created=meta.get("created"),
                          ocr=bool(meta.get("ocr")))


def probe(db: Path) -> CollectionInfo | None:
    """A read-only look at a collection database that never writes to it.

    None if it holds nothing (a create killed before its commit); its facts if it
    is a collection of any version (``problem`` set when a newer imgfind wrote
    it); StoreError if it is damaged or not an imgfind database.
    """
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as e:
        raise StoreError(f"cannot open {db}: {e}") from e
    try:
        if con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            return None
        info = read_info(con)
        try:
            refuse_newer(stored_version(con), info.name)
        except StoreTooNew as e:
            return CollectionInfo(info.name, info.model, info.dim, info.model_path,
                                  info.created, problem=e.message, ocr=info.ocr)
        return info
    except sqlite3.DatabaseError as e:
        raise StoreError(f"cannot read {db}: {e}; the file is damaged or not an imgfind "
                         "store") from e
    finally:
        con.close()
