"""The portable filter language: plain dicts, parsed once into a typed tree, compiled per store.

Users never write SQL. A filter is a dict of ``key: condition``; several keys
are ANDed, ``$and`` / ``$or`` / ``$not`` combine at any level, a bare value
means ``$eq``::

    {"breed": "labrador", "width": {"$gte": 1024}}
    {"$or": [{"exif.Make": "Canon"}, {"exif.Make": {"$contains": "Nikon"}}]}
    {"tags": {"$contains": "beach"}, "taken": {"$gte": "2023-01-01"}}

Keys:

* ``id, source, format, width, height, sha256, taken, added, updated, stored``
  are the item's own columns;
* ``exif.X.Y`` reads the EXIF JSON, ``file.X`` the file-facts JSON;
* ``metadata.X`` or any other key (dotted or not) reads the user metadata JSON,
  so ``{"breed": "labrador"}`` means ``metadata.breed``.

Key parts may hold letters, digits, ``_`` and ``-``.

Operators: ``$eq $ne $gt $gte $lt $lte`` (numbers or strings), ``$in $nin``
(a list), ``$exists`` (true/false; JSON null counts as absent), ``$contains``
(case-sensitive substring of a string field, or membership in a JSON array),
and ``$and $or`` (lists of filters) / ``$not`` (a filter, or an operator dict
inside a field).

Comparisons are type-correct: numbers compare with numbers, strings (ISO dates
included) with strings; a number never matches a string condition, and JSON
booleans never match numbers. ``$ne``, ``$nin`` and ``$not`` also match items
that lack the field.

Layout: :mod:`.tree` parses and validates (``parse(where) -> Node``; the
server validates with it alone), :mod:`.compiler` is the base every backend's
compiler extends, :mod:`.sql` compiles to parameterized SQL for SQLite. An
operator a store cannot express raises :class:`~imgfind.errors.UnsupportedFilter`.

>>> parse({"width": {"$gte": 1024}}).op
'$gte'
"""

from __future__ import annotations

from .compiler import Compiler
from .sql import SQLCompiler, compile_filter, field_expression, json_fields
from .tree import COLUMNS, OPS, And, Compare, Field, Node, Not, Or, parse, parse_key

__all__ = ["COLUMNS", "OPS", "And", "Compare", "Compiler", "Field", "Node", "Not", "Or",
           "SQLCompiler", "compile_filter", "field_expression", "json_fields", "parse",
           "parse_key"]
