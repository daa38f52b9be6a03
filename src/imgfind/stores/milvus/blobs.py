"""Thumbnails and stored originals in a blob store given by URL (fsspec).

Content-addressed: a blob's key is the sha256 of its bytes, stored at
``<root>/<key[:2]>/<key>``. Writing the same bytes twice is one file, a
crashed write leaves at most an unreferenced file (rows are written after their
blobs, so a row never points at a missing blob), and readers never see a
half-written blob (local files are written to a temp name and renamed; object
stores publish whole objects).

>>> import tempfile
>>> b = BlobStore(tempfile.mkdtemp())
>>> key = b.put(b"hello")
>>> b.get(key)
b'hello'
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any

from ...errors import StoreError

__all__ = ["BlobStore"]


class BlobStore:
    """Blobs under ``url``: a local folder, ``file://``, ``s3://``, ``gs://``, ``memory://``..."""

    def __init__(self, url: str):
        import fsspec  # type: ignore[import-untyped]

        self.url = str(url)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as e:
            raise StoreError(f"cannot open blob store {self.url!r}: {e}") from e
        self.root = self.root.rstrip("/")
        self._local = "file" in _protocols(self.fs)

    def _path(self, key: str) -> str:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise StoreError(f"bad blob key {key!r}")
        return f"{self.root}/{key[:2]}/{key}"

    def put(self, data: bytes) -> str:
        """Store ``data`` (once per content); returns its key."""
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        try:
            if self.fs.exists(path):
                return key
            if self._local:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                tmp = f"{path}.{uuid.uuid4().hex}.tmp"
                with open(tmp, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            else:
                self.fs.pipe_file(path, data)
        except OSError as e:
            raise StoreError(f"cannot write to blob store {self.url!r}: {e}") from e
        return key

    def get(self, key: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._path(key)))
        except FileNotFoundError as e:
            raise StoreError(f"blob {key} is missing from {self.url!r}; run check") from e
        except OSError as e:
            raise StoreError(f"cannot read blob store {self.url!r}: {e}") from e

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def describe(self) -> dict[str, Any]:
        return {"url": self.url}


def _protocols(fs: Any) -> tuple[str, ...]:
    p = fs.protocol
    return tuple(p) if isinstance(p, (list, tuple)) else (p,)
