"""Store URIs: which backend holds the collections, and where.

======================================  ==============================================
URI                                     store
======================================  ==============================================
``sqlite`` (default)                    SQLite + faiss files in the home folder
``milvus:///abs/path/file.db``          Milvus Lite, embedded, in that file
``milvus://HOST:PORT``                  a Milvus server or cluster over gRPC/HTTP
``milvus+https://HOST:PORT``            the same over TLS (e.g. Zilliz Cloud)
======================================  ==============================================

Milvus URIs take query parameters: ``db`` (database name; servers only),
``prefix`` (of imgfind's Milvus collection names, default ``imgfind_``, so
several imgfind libraries can share a cluster), ``shards`` and ``replicas``
(used when a collection is created) and ``index`` (vector index type, e.g.
``HNSW`` or ``IVF_SQ8``; ``auto`` picks by size). The token for a server comes
from ``$IMGFIND_MILVUS_TOKEN``, never from the URI (URIs end up in process lists
and logs). Anything else is an :class:`~imgfind.errors.InvalidInput` naming it.

>>> parse_store_uri("milvus://127.0.0.1:19530?db=photos&shards=2").address
'http://127.0.0.1:19530'
>>> parse_store_uri("milvus:///tmp/m.db").path
PosixPath('/tmp/m.db')
>>> parse_store_uri("sqlite").backend
'sqlite'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ..errors import InvalidInput

__all__ = ["INDEX_TYPES", "MILVUS_PARAMS", "TOKEN_ENV", "StoreSpec", "parse_store_uri"]

TOKEN_ENV = "IMGFIND_MILVUS_TOKEN"
#: Query parameters a milvus URI may carry (a backend needing another adds it here).
MILVUS_PARAMS = ("db", "prefix", "shards", "replicas", "index")
#: Vector index types the ``index`` parameter accepts (``auto``: the store decides by size).
INDEX_TYPES = ("auto", "FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "DISKANN", "AUTOINDEX")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_FORMS = ("sqlite, milvus:///ABSOLUTE/path.db, milvus://HOST:PORT or "
          "milvus+https://HOST:PORT")


@dataclass(frozen=True)
class StoreSpec:
    """A parsed store URI. ``backend`` names the registered backend that opens it."""

    backend: str                    # "sqlite" or "milvus"
    uri: str                        # as given
    path: Path | None = None        # Milvus Lite file
    host: str | None = None         # Milvus server
    port: int | None = None
    secure: bool = False            # milvus+https
    token: str | None = field(default=None, repr=False)
    db: str | None = None
    prefix: str = "imgfind_"
    shards: int | None = None
    replicas: int | None = None
    index: str = "auto"

    @property
    def address(self) -> str:
        """What pymilvus' ``MilvusClient(uri=...)`` takes: the file path or the server URL."""
        if self.path is not None:
            return str(self.path)
        if self.host is None:
            return self.backend
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.secure else 'http'}://{host}:{self.port}"


def parse_store_uri(uri: str | None, environ: dict[str, str] | None = None) -> StoreSpec:
    """Parse a store URI (None or ``""`` means ``sqlite``); InvalidInput says what is wrong."""
    env = os.environ if environ is None else environ
    if uri is None or uri.strip() in ("", "sqlite", "sqlite:", "sqlite://"):
        return StoreSpec("sqlite", uri or "sqlite")
    if not isinstance(uri, str):
        raise InvalidInput(f"a store URI must be a string, got {type(uri).__name__}")
    try:
        parts = urlsplit(uri.strip())
        port = parts.port
    except ValueError as e:
        raise InvalidInput(f"bad store URI {uri!r}: {e}; use {_FORMS}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("milvus", "milvus+https"):
        what = "sqlite takes no path or options (its files live in the home folder); " \
            if scheme == "sqlite" else f"unknown store {scheme or uri!r}; "
        raise InvalidInput(f"bad store URI {uri!r}: {what}use {_FORMS}")
    if parts.username or parts.password:
        raise InvalidInput(f"bad store URI {uri!r}: put the Milvus token in ${TOKEN_ENV}, "
                           "not in the URI")
    if parts.fragment:
        raise InvalidInput(f"bad store URI {uri!r}: a '#' fragment means nothing here")
    params = _params(uri, parts.query)
    if not parts.netloc:                                   # milvus:///abs/file.db
        if scheme != "milvus":
            raise InvalidInput(f"bad store URI {uri!r}: milvus+https needs HOST:PORT")
        if not parts.path.startswith("/") or parts.path.endswith("/"):
            raise InvalidInput(f"bad store URI {uri!r}: a Milvus Lite store is a file, "
                               "milvus:///ABSOLUTE/path/file.db")
        if "db" in params:
            raise InvalidInput(f"bad store URI {uri!r}: Milvus Lite has one database; "
                               "drop ?db=")
        return StoreSpec("milvus", uri, path=Path(parts.path), **_options(uri, params))
    if port is None:
        hint = (" (for a Milvus Lite file use three slashes: milvus:///ABSOLUTE/path.db)"
                if parts.netloc.endswith(".db") or parts.path else "")
        raise InvalidInput(f"bad store URI {uri!r}: a Milvus server needs HOST:PORT, "
                           f"e.g. milvus://127.0.0.1:19530{hint}")
    if parts.path not in ("", "/"):
        raise InvalidInput(f"bad store URI {uri!r}: a Milvus server URI has no path; "
                           "name the database with ?db=NAME")
    return StoreSpec("milvus", uri, host=parts.hostname, port=port,
                     secure=scheme == "milvus+https", token=env.get(TOKEN_ENV) or None,
                     **_options(uri, params))


def _params(uri: str, query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise InvalidInput(f"bad store URI {uri!r}: cannot read the query {query!r}") from None
    out: dict[str, str] = {}
    for k, v in pairs:
        if k not in MILVUS_PARAMS:
            raise InvalidInput(f"bad store URI {uri!r}: unknown parameter {k!r}; "
                               f"known: {', '.join(MILVUS_PARAMS)}")
        if k in out:
            raise InvalidInput(f"bad store URI {uri!r}: parameter {k!r} given twice")
        out[k] = v
    return out


def _options(uri: str, params: dict[str, str]) -> dict:
    out: dict = {}
    for key in ("db", "prefix"):
        if key in params:
            value = params[key]
            if not _NAME_RE.match(value) and not (key == "prefix" and value == ""):
                raise InvalidInput(f"bad store URI {uri!r}: {key} must be letters, digits "
                                   f"and '_', not starting with a digit, got {value!r}")
            out[key] = value
    for key, top in (("shards", 64), ("replicas", 100)):
        if key in params:
            value = params[key]
            if not (value.isdigit() and 1 <= int(value) <= top):
                raise InvalidInput(f"bad store URI {uri!r}: {key} must be a whole number "
                                   f"from 1 to {top}, got {value!r}")
            out[key] = int(value)
    if "index" in params:
        wanted = params["index"]
        known = {t.upper(): t for t in INDEX_TYPES}
        if wanted.upper() not in known:
            raise InvalidInput(f"bad store URI {uri!r}: index must be one of "
                               f"{', '.join(INDEX_TYPES)}, got {wanted!r}")
        out["index"] = known[wanted.upper()]
    return out
