"""Named imgfind collections in a Milvus database (Lite file, server or cluster).

Each imgfind collection is one Milvus collection named ``<prefix><name>``
(``prefix`` keeps imgfind apart from other users of a shared cluster); its
model, dimension and index settings live in a property of the Milvus
collection, so every stateless imgfind server pointed at the same Milvus sees
the same collections.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> b = MilvusBackend(os.path.join(d, "m.db"), blobs=os.path.join(d, "blobs"))
>>> _ = b.create(CollectionInfo(name="photos", model="toy", dim=4))
>>> [c.name for c in b.collections()]
['photos']
>>> b.close()
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ...errors import AlreadyExists, InvalidInput, NotFound, StoreError
from ..base import CollectionInfo
from .blobs import BlobStore
from .schema import (
    INFO_KEY,
    IndexSpec,
    build_schema,
    collection_name,
    index_params,
    info_from_description,
    info_to_description,
    now,
)
from .store import MilvusStore

__all__ = ["MilvusBackend", "MilvusOptions"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LITE_GRPC = {"grpc.keepalive_time_ms": 600_000}
_PREFIX_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]{0,63})?$")


@dataclass(frozen=True)
class MilvusOptions:
    """Settings applied when collections are created (shards, replicas, index)."""

    prefix: str = "imgfind_"
    shards: int = 1
    replicas: int = 1
    index: IndexSpec = IndexSpec()


class MilvusBackend:
    """A :class:`~imgfind.stores.base.Backend` on Milvus.

    ``uri``: a Milvus Lite file (``/abs/path/file.db``) or a server address
    (``http://host:19530``, ``https://...``); ``token`` for servers that need one
    (Zilliz Cloud, auth-enabled Milvus); ``db`` the Milvus database name;
    ``blobs`` the blob store URL for thumbnails and stored originals.
    """

    def __init__(self, uri: str, *, blobs: str, token: str | None = None,
                 db: str | None = None, options: MilvusOptions | None = None):
        self.uri = str(uri)
        self.options = options or MilvusOptions()
        if not _PREFIX_RE.match(self.options.prefix):
            raise InvalidInput(f"bad Milvus collection prefix {self.options.prefix!r}: use "
                               "letters, digits and '_', starting with a letter or '_'")
        for what in ("shards", "replicas"):
            n = getattr(self.options, what)
            if not isinstance(n, int) or not 1 <= n <= 64:
                raise InvalidInput(f"{what} must be an integer from 1 to 64, got {n!r}")
        self.options.index.resolved()
        self.blobs = BlobStore(blobs)
        self.db = db
        self._lock = threading.Lock()
        self._open: dict[str, MilvusStore] = {}
        try:
            from pymilvus import MilvusClient  # type: ignore[import-untyped]
        except ImportError as e:
            raise StoreError("the Milvus store needs pymilvus and milvus-lite: "
                             "pip install 'imgfind[milvus]'") from e
        kw: dict[str, Any] = {}
        if token:
            kw["token"] = token
        if db:
            kw["db_name"] = db
        if self.uri.endswith(".db"):
            Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client = MilvusClient(self.uri, **kw)
            self.server = str(self.client.get_server_version())
            if self.server.startswith("milvus_lite"):
                # Milvus Lite's gRPC server refuses pymilvus' 10 s keepalive pings
                # ("too_many_pings" on stderr); it is local, so ping rarely.
                self.client.close()
                self.client = MilvusClient(self.uri, grpc_options=_LITE_GRPC, **kw)
        except Exception as e:   # pymilvus raises several types for one failure
            raise StoreError(f"cannot connect to Milvus at {_safe(self.uri)}: {e}") from e

    def _cname(self, name: str) -> str:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise InvalidInput(
                f"bad collection name {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or digit")
        return collection_name(self.options.prefix, name)

    def _describe(self, cname: str) -> tuple[CollectionInfo, IndexSpec, dict] | None:
        from pymilvus.exceptions import MilvusException  # type: ignore[import-untyped]
        try:
            d = self.client.describe_collection(cname)
        except MilvusException:
            return None
        raw = (d.get("properties") or {}).get(INFO_KEY, "")
        parsed = info_from_description(raw)
        if parsed is None:
            return None
        extra = {"shards": d.get("num_shards"), "uri": _safe(self.uri), "db": self.db,
                 "server": self.server, "replicas": int(json.loads(raw).get("replicas") or 1)}
        return parsed[0], parsed[1], extra

    def collections(self) -> list[CollectionInfo]:
        """Every imgfind collection under this backend's prefix, by name."""
        out = []
        for cname in sorted(self._call(self.client.list_collections)):
            if not cname.startswith(self.options.prefix):
                continue
            d = self._describe(cname)
            if d is not None and collection_name(self.options.prefix, d[0].name) == cname:
                out.append(d[0])
        return sorted(out, key=lambda c: c.name)

    def create(self, info: CollectionInfo) -> MilvusStore:
        """Create a collection; AlreadyExists if the name is taken."""
        cname = self._cname(info.name)
        if not isinstance(info.dim, int) or info.dim <= 0:
            raise InvalidInput(f"a collection needs a positive vector dimension, got {info.dim!r}")
        if not info.model:
            raise InvalidInput("a collection needs the name of its embedding model")
        info = info if info.created else replace(info, created=now())
        spec = self.options.index
        with self._lock:
            if self._call(self.client.has_collection, cname):
                raise AlreadyExists(f"collection {info.name!r} already exists; open it, or "
                                    "drop it first")
            c, replicas = self.client, self.options.replicas
            self._call(c.create_collection, cname, schema=build_schema(c, info.dim),
                       index_params=index_params(c, spec), consistency_level="Strong",
                       properties={INFO_KEY: info_to_description(info, spec, replicas)},
                       num_shards=self.options.shards)
            if replicas > 1:
                try:
                    self._call(c.release_collection, cname)
                    self._call(c.load_collection, cname, replica_number=replicas)
                except StoreError:
                    # Not enough query nodes for the replicas: leave no half-made collection.
                    self._call(c.drop_collection, cname)
                    raise
            store = MilvusStore(c, cname, info, spec, self.blobs,
                                {"shards": self.options.shards,
                                 "replicas": self.options.replicas, "uri": _safe(self.uri),
                                 "db": self.db, "server": self.server})
            self._open[info.name] = store
            return store

    def open(self, name: str) -> MilvusStore:
        """The collection's store; NotFound if absent."""
        cname = self._cname(name)
        with self._lock:
            store = self._open.get(name)
            if store is not None and not store.closed:
                return store
            d = self._describe(cname)
            if d is None:
                raise NotFound(f"no collection {name!r}; create it first")
            info, spec, extra = d
            state = self._call(self.client.get_load_state, cname).get("state")
            if getattr(state, "name", str(state)) != "Loaded":
                # With the replica count it was created with: a cluster refuses to reload
                # a loaded collection with another.
                self._call(self.client.load_collection, cname,
                           replica_number=extra["replicas"])
            store = MilvusStore(self.client, cname, info, spec, self.blobs, extra)
            self._open[name] = store
            return store

    def drop(self, name: str) -> None:
        """Delete a collection; NotFound if absent. Blobs stay (content-addressed, shared)."""
        cname = self._cname(name)
        with self._lock:
            store = self._open.pop(name, None)
            if store is not None:
                store.close()
            if self._describe(cname) is None:
                raise NotFound(f"no collection {name!r}")
            self._call(self.client.drop_collection, cname)

    def close(self) -> None:
        with self._lock:
            for store in self._open.values():
                store.close()
            self._open.clear()
            try:
                self.client.close()
            except Exception:   # closing a dead connection must not fail shutdown
                pass

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        from pymilvus.exceptions import MilvusException  # type: ignore[import-untyped]
        try:
            return fn(*args, **kw)
        except MilvusException as e:
            raise StoreError(f"Milvus at {_safe(self.uri)} failed: "
                             f"{getattr(e, 'message', e)}") from e


def _safe(uri: str) -> str:
    """The URI without credentials, for messages."""
    return re.sub(r"//[^@/]*@", "//", uri)
