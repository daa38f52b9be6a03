"""Schema versions of a collection database, and the ordered steps between them.

A database records its version in ``meta.schema``. Version 1 is the base
:data:`~.schema.SCHEMA`, which never changes. Every later version is one
entry of :data:`MIGRATIONS`. Opening a store whose version is older applies
the missing steps in order, all in ONE transaction with the new version
number: a kill or a failing step leaves the store exactly as it was. New
stores are created at version 1 and run every step, in that same creating
transaction, so a fresh store and a migrated one are the same by construction.

A store written by a NEWER imgfind (version above :func:`current_version`)
is refused with :class:`~imgfind.errors.StoreTooNew` ("upgrade imgfind")
before anything writes to it; it stays byte-identical and is still listed.

**Adding a migration** (OCR, re-embed, sort indexes, ...): append one entry
to :data:`MIGRATIONS` with the next number::

    MIGRATIONS: list[Migration] = [
        Migration(2, "ocr text", "ALTER TABLE items ADD COLUMN ocr TEXT; "
                                 "CREATE INDEX items_ocr ON items(ocr)"),
        Migration(3, "staged vectors", _create_staging),   # a function(con) for the rest
    ]

Rules: numbers are consecutive from 2 (if two branches both took the next
number, the one that rebases second renumbers); never edit, reorder or delete
a landed step (stores in the wild already ran it); a step runs inside the
open's transaction and must not COMMIT (SQL text is split on ``;``, so write
triggers as a function); a step must work on an empty store too (a create
runs it). tests/test_migrations.py opens the committed v1 fixture with every
step, so a new step is tested on old data without further work.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from ...errors import StoreError, StoreTooNew

__all__ = ["BASE_VERSION", "MIGRATIONS", "Migration", "current_version", "migrate",
           "stored_version"]

BASE_VERSION = 1


@dataclass(frozen=True)
class Migration:
    version: int                                          # the version this step produces
    what: str                                             # a few words, for error messages
    step: str | Callable[[sqlite3.Connection], None]      # SQL text or a function(con)


#: Every step after the base schema, in order (see the module docstring).
MIGRATIONS: list[Migration] = [
    # Listing sorts (imgfind.query.LIST_SORTS) read these instead of sorting every row:
    # "taken" is the date taken, falling back to the date added; scans go both ways.
    Migration(2, "date sort indexes",
              "CREATE INDEX IF NOT EXISTS items_date ON items(COALESCE(taken, added)); "
              "CREATE INDEX IF NOT EXISTS items_added ON items(added)"),
    # OCR (imgfind.ocr): the text read from each image and its lines (JSON: text,
    # confidence, box), NULL until the OCR pass reaches the item; a trigram full-text
    # index so words OCR ran together ("EXITcoffee") are still found by "exit".
    Migration(3, "ocr text",
              "ALTER TABLE items ADD COLUMN ocr TEXT; "
              "ALTER TABLE items ADD COLUMN ocr_lines TEXT; "
              "CREATE INDEX items_ocr_todo ON items(rowid) WHERE ocr IS NULL; "
              "CREATE VIRTUAL TABLE ocr_fts USING fts5(text, tokenize='trigram')"),
    # Re-embedding (imgfind.reembed): the next model's vectors, built beside the live
    # ones; item_seq is the item's seq when embedded, so a rewritten item is stale.
    Migration(4, "staged vectors",
              "CREATE TABLE staged_vectors("
              "rowid INTEGER PRIMARY KEY REFERENCES items(rowid) ON DELETE CASCADE, "
              "v BLOB NOT NULL, item_seq INTEGER NOT NULL)"),
    # float16 vectors (codec.encode_vectors): new rows in ``vectors`` and ``staged_vectors``
    # take half the bytes. Nothing is rewritten here (a million rows would stall the
    # open): older float32 rows are read by their length. The step exists for its number:
    # an imgfind from before it would misread the new rows, and refuses a store at 5.
    Migration(5, "float16 vectors", lambda con: None),
]


def current_version() -> int:
    """The schema version this imgfind writes (and reads up to)."""
    _check_order()
    return MIGRATIONS[-1].version if MIGRATIONS else BASE_VERSION


def stored_version(con: sqlite3.Connection) -> int | None:
    """``meta.schema`` of an open database; None if it has none."""
    row = con.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    return row[0] if row and isinstance(row[0], int) else None


def refuse_newer(version: int | None, name: str) -> None:
    """StoreTooNew when ``version`` is above what this imgfind reads."""
    current = current_version()
    if version is not None and version > current:
        raise StoreTooNew(
            f"collection {name!r} was written by a newer imgfind (schema {version}; this "
            f"imgfind reads up to {current}): upgrade imgfind (pip install -U imgfind) to "
            "open it; it was left untouched")


def migrate(con: sqlite3.Connection, name: str) -> int:
    """Bring an open database (autocommit connection) up to :func:`current_version`.

    One IMMEDIATE transaction for all steps, so concurrent openers queue and a
    failure rolls everything back. Returns the version the store now has.
    """
    target = current_version()
    version = stored_version(con)
    refuse_newer(version, name)
    if version == target:
        return target
    con.execute("BEGIN IMMEDIATE")
    try:
        version = stored_version(con)       # another process may have migrated meanwhile
        refuse_newer(version, name)
        if version is None:
            raise StoreError(f"collection {name!r} has no schema version; it is not an "
                             "imgfind store or is damaged")
        apply(con, version)
        con.execute("COMMIT")
    except BaseException as e:
        if con.in_transaction:
            con.execute("ROLLBACK")
        if isinstance(e, sqlite3.Error):
            raise StoreError(f"collection {name!r}: upgrading its schema failed ({e}); the "
                             "store is unchanged (check free disk space and permissions)") from e
        raise
    return target


def apply(con: sqlite3.Connection, version: int) -> None:
    """Run every step above ``version`` and record the new version (caller's transaction)."""
    for m in MIGRATIONS:
        if m.version <= version:
            continue
        try:
            if callable(m.step):
                m.step(con)
            else:
                for stmt in m.step.split(";"):
                    if stmt.strip():
                        con.execute(stmt)
        except sqlite3.Error as e:
            raise sqlite3.OperationalError(f"migration {m.version} ({m.what}): {e}") from e
    con.execute("UPDATE meta SET value=? WHERE key='schema'", (current_version(),))


def _check_order() -> None:
    for i, m in enumerate(MIGRATIONS):
        if m.version != BASE_VERSION + 1 + i:
            raise RuntimeError(f"imgfind.stores.sqlite.migrations: migration {m.version} "
                               f"({m.what}) is out of order; expected {BASE_VERSION + 1 + i}")
