"""The collection database file: its schema, its version and how it is opened.

(Migrations between schema versions are in :mod:`.migrations`.)
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from ...errors import StoreError
from ..base import CollectionInfo

__all__ = ["DB_FILE", "INDEX_FILE", "NAME_RE", "SCHEMA", "SCHEMA_VERSION", "connect",
           "read_info"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DB_FILE = "items.db"
INDEX_FILE = "vectors.index"
SCHEMA_VERSION = 1

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
        con.execute("PRAGMA cache_size=-65536")
        con.execute("PRAGMA temp_store=MEMORY")
    except sqlite3.DatabaseError as e:
        raise StoreError(f"cannot open {path}: {e}; the file is damaged or not an imgfind "
                         "store (restore it from a backup or drop the collection)") from e
    return con


def read_info(con: sqlite3.Connection) -> CollectionInfo:
    try:
        meta = dict(con.execute("SELECT key, value FROM meta"))
    except sqlite3.DatabaseError as e:
        raise StoreError(f"not an imgfind collection database: {e}") from e
    if meta.get("schema") != SCHEMA_VERSION or "dim" not in meta:
        raise StoreError(f"unsupported collection schema {meta.get('schema')!r}; "
                         "this imgfind cannot open it")
    return CollectionInfo(name=meta["name"], model=meta["model"], dim=int(meta["dim"]),
                          model_path=meta.get("model_path"), created=meta.get("created"))

