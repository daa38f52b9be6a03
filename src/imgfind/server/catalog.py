"""The field catalog: every filterable key of a collection, with its type, how many
items have it and a few sample values, for the web UI's filter picker.

It covers the whole collection, not a sample: the first read walks every item (in
pages), later reads fold in only the items written since (one filtered query on
``updated``), and a collection that shrank (items deleted) or was created again is
walked again, so a key whose last item went away disappears. Counts are exact after a
walk; an edit since then adds the keys it brought but leaves the counts of keys that
were already listed as they were.

>>> catalogs = Catalogs()                                      # doctest: +SKIP
>>> catalogs.get(library.collection("photos"))["fields"][0]    # doctest: +SKIP
{'key': 'format', 'type': 'string', 'count': 21, 'values': ['JPEG']}
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..api import Collection
from ..types import Item

#: Items read per page while walking a collection.
PAGE = 500
#: Sample values kept per key (the picker's suggestions).
SAMPLES = 10
#: Item columns offered as filters, with their type.
COLUMNS = {"format": "string", "width": "number", "height": "number", "taken": "date",
           "added": "date", "updated": "date", "stored": "boolean", "source": "string"}
_KEY = re.compile(r"^[A-Za-z0-9_-]{1,128}(\.[A-Za-z0-9_-]{1,128}){0,15}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?)?$")


def value_type(value: Any) -> str | None:
    """The picker type of one JSON value: number, boolean, date, string, list or None."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "date" if _DATE.match(value) else "string"
    if isinstance(value, list) and value and all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return "list"
    return None


@dataclass
class _Field:
    key: str
    types: dict[str, int] = field(default_factory=dict)
    count: int = 0
    values: list[Any] = field(default_factory=list)

    def note(self, value: Any, kind: str, *, counted: bool) -> None:
        self.types[kind] = self.types.get(kind, 0) + 1
        if counted:
            self.count += 1
        for v in value if kind == "list" else [value]:
            if len(self.values) < SAMPLES and v not in self.values:
                self.values.append(v)

    def to_dict(self) -> dict[str, Any]:
        # A key holding both numbers and strings is offered as text, which fits both.
        kind = max(self.types, key=lambda t: self.types[t])
        if len(self.types) > 1 and "list" not in self.types:
            kind = "string" if "string" in self.types or "date" in self.types else kind
        return {"key": self.key, "type": kind, "count": self.count, "values": self.values}


def _walk(values: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in values.items():
        key = f"{prefix}.{k}"
        if isinstance(v, dict):
            _walk(v, key, out)
        else:
            out[key] = v


def item_fields(item: Item) -> dict[str, Any]:
    """The filterable ``key -> value`` pairs of one item (dotted keys into its JSON)."""
    out: dict[str, Any] = {}
    for key in COLUMNS:
        v = getattr(item, key, None)
        if v is not None:
            out[key] = v
    for name in ("metadata", "exif", "file"):
        _walk(getattr(item, name) or {}, name, out)
    ocr = getattr(item, "ocr", None)
    if ocr:
        out["ocr"] = ocr.get("text") if isinstance(ocr, dict) else ocr
    return {k: v for k, v in out.items() if _KEY.match(k)}


class Catalog:
    """The catalog of one collection, kept up to date by :meth:`read`."""

    def __init__(self) -> None:
        self.fields: dict[str, _Field] = {}
        self.count = 0          # items in the collection at the last look
        self.since: str | None = None   # newest ``updated`` folded in
        self.created: str | None = None  # the collection's creation time (a re-created one is new)
        self.lock = threading.Lock()

    def _fold(self, items: list[Item], *, counted: bool) -> None:
        for it in items:
            for key, value in item_fields(it).items():
                kind = COLUMNS.get(key) if key in COLUMNS else value_type(value)
                if kind is None:
                    continue
                f = self.fields.get(key)
                if f is None:
                    f = self.fields[key] = _Field(key)
                    f.note(value, kind, counted=True)
                else:
                    f.note(value, kind, counted=counted)
            if it.updated is not None and (self.since is None or it.updated > self.since):
                self.since = it.updated

    def _pages(self, collection: Collection, where: dict | None) -> Iterator[list[Item]]:
        """The items matching ``where``, a page at a time, oldest added first.

        Each page continues after the last ``added`` time read (an index walk), not
        from an offset, which would make a walk of n items cost n squared. The items
        of a page's last time are read whole (they may go on past the page), so items
        sharing one time are neither skipped nor read twice.
        """
        def both(cond: dict) -> dict:
            return cond if where is None else {"$and": [where, cond]}

        last: str | None = None
        while True:
            flt = where if last is None else both({"added": {"$gt": last}})
            page = collection.items(where=flt, limit=PAGE, sort="added")
            if not page:
                return
            newest = page[-1].added
            head = [it for it in page if it.added != newest]
            if head:
                yield head
            offset = 0
            while True:
                same = collection.items(where=both({"added": newest}), limit=PAGE,
                                        offset=offset)
                if same:
                    yield same
                if len(same) < PAGE:
                    break
                offset += PAGE
            if len(page) < PAGE:
                return
            last = newest

    def _rebuild(self, collection: Collection) -> None:
        self.fields, self.since = {}, None
        for page in self._pages(collection, None):
            self._fold(page, counted=True)

    def read(self, collection: Collection) -> dict[str, Any]:
        with self.lock:
            count, created = collection.count(), collection.info.created
            if self.since is None or count < self.count or created != self.created:
                self._rebuild(collection)
            elif self.since is not None:
                # Items written since the last look: new ones count, edited ones (counted
                # before) only add keys they did not have.
                for page in self._pages(collection, {"updated": {"$gt": self.since}}):
                    new = [it for it in page if (it.added or "") > self.since]
                    old = [it for it in page if (it.added or "") <= self.since]
                    self._fold(new, counted=True)
                    self._fold(old, counted=False)
            self.count, self.created = count, created
            fields = sorted(self.fields.values(), key=lambda f: (f.key.count("."), f.key))
            return {"fields": [f.to_dict() for f in fields], "items": count}


class Catalogs:
    """One :class:`Catalog` per collection of a server."""

    def __init__(self) -> None:
        self._by_name: dict[str, Catalog] = {}
        self._lock = threading.Lock()

    def get(self, collection: Collection) -> dict[str, Any]:
        with self._lock:
            catalog = self._by_name.setdefault(collection.name, Catalog())
        return catalog.read(collection)

    def forget(self, name: str) -> None:
        with self._lock:
            self._by_name.pop(name, None)
