"""Milvus systems for the ``store`` suite: imgfind's Milvus store and raw pymilvus beside it.

``imgfind-milvus`` is imgfind's Milvus store (``imgfind.stores.milvus``) on a Milvus
Lite file; ``milvus-lite-json`` is raw pymilvus on the same Milvus Lite with the same
index (IVF_FLAT, nlist = 4 sqrt(n), inner product on unit vectors), the same nprobe
settings as ``milvus-lite`` and the filter fields in a JSON field as imgfind keeps
user metadata, so the three rows differ only by the layer measured.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from .data import FILTERS, Dataset
from .systems import Filter, Setting, System, _labels_chunk

NPROBES = (8, 32, 128)


def _nlist(n: int) -> int:
    return max(16, int(4 * math.sqrt(n)))


class ImgfindMilvus(System):
    """imgfind's Milvus store through its CollectionStore API (ids and scores returned)."""

    name = "imgfind-milvus"
    filter_mode = "where= dict compiled to a Milvus expression on the metadata JSON field"
    delete_mode = "store.delete"

    def _backend(self, path: Path, n: int):
        from imgfind.stores.milvus import IndexSpec, MilvusBackend, MilvusOptions

        return MilvusBackend(str(path / "milvus.db"), blobs=str(path / "blobs"),
                             options=MilvusOptions(index=IndexSpec(
                                 kind="IVF_FLAT", expected=n, nlist=_nlist(n))))

    def settings(self, n: int) -> list[Setting]:
        return [{"label": f"nprobe{p}", "nprobe": p} for p in NPROBES]

    def build(self, path: Path, ds: Dataset) -> dict[str, float]:
        from imgfind.stores.base import CollectionInfo, Record

        path.mkdir(parents=True, exist_ok=True)
        backend = self._backend(path, ds.n)
        store = backend.create(CollectionInfo(name="bench", model="bench", dim=ds.dim))
        labels = ds.labels()
        t0 = time.perf_counter()
        for start, x in ds.chunks(5_000):
            lab = _labels_chunk(labels, start, len(x))
            store.put([Record(id=str(start + i), source=f"bench://{start + i}", vector=x[i],
                              metadata={f: int(lab[f][i]) for f in FILTERS})
                       for i in range(len(x))])
        insert_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        store.search(ds.queries()[:1], 10)
        index_s = time.perf_counter() - t1
        backend.close()
        return {"insert_s": insert_s, "index_s": index_s,
                "index": f"IVF_FLAT nlist={_nlist(ds.n)}"}

    def open(self, path: Path) -> None:
        # The index settings were stored with the collection at build; these only matter
        # for collections created through this handle.
        self.backend = self._backend(path, 1)
        self.store = self.backend.open("bench")

    def configure(self, setting: Setting) -> None:
        super().configure(setting)
        self.store.index = dataclasses.replace(self.store.index, nprobe=setting["nprobe"])

    def search(self, q: np.ndarray, k: int, filt: Filter) -> list[int]:
        where = {filt[0]: filt[1]} if filt else None
        return [int(i) for i, _s in self.store.search(q[None, :], k, where=where)[0]]

    def delete(self, rows: list[int]) -> None:
        self.store.delete([str(r) for r in rows])

    def close(self) -> None:
        self.backend.close()


class MilvusLiteJSON(System):
    """Raw pymilvus: the same index and settings as imgfind-milvus, filters on a JSON field."""

    name = "milvus-lite-json"
    filter_mode = "boolean expression on a JSON field (metadata[\"f\"] == v)"
    delete_mode = "client.delete"

    def settings(self, n: int) -> list[Setting]:
        return [{"label": f"nprobe{p}", "nprobe": p} for p in NPROBES]

    def build(self, path: Path, ds: Dataset) -> dict[str, float]:
        from pymilvus import DataType, MilvusClient

        path.mkdir(parents=True, exist_ok=True)
        client = MilvusClient(str(path / "milvus.db"))
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=ds.dim)
        schema.add_field("metadata", DataType.JSON)
        ip = client.prepare_index_params()
        ip.add_index("vector", index_type="IVF_FLAT", metric_type="IP",
                     params={"nlist": _nlist(ds.n)})
        client.create_collection("bench", schema=schema, index_params=ip,
                                 consistency_level="Strong")
        labels = ds.labels()
        t0 = time.perf_counter()
        for start, x in ds.chunks(5_000):
            lab = _labels_chunk(labels, start, len(x))
            client.insert("bench", [{"id": str(start + i), "vector": x[i].tolist(),
                                     "metadata": {f: int(lab[f][i]) for f in FILTERS}}
                                    for i in range(len(x))])
        insert_s = time.perf_counter() - t0
        client.close()
        return {"insert_s": insert_s, "index_s": 0.0, "index": f"IVF_FLAT nlist={_nlist(ds.n)}"}

    def open(self, path: Path) -> None:
        from pymilvus import MilvusClient

        self.client = MilvusClient(str(path / "milvus.db"))
        self.client.load_collection("bench")

    def search(self, q: np.ndarray, k: int, filt: Filter) -> list[int]:
        r = self.client.search("bench", [q.tolist()], limit=k, output_fields=[],
                               filter=f'metadata["{filt[0]}"] == {filt[1]}' if filt else "",
                               search_params={"metric_type": "IP",
                                              "params": {"nprobe": self.setting["nprobe"]}})
        return [int(h["id"]) for h in r[0]]

    def delete(self, rows: list[int]) -> None:
        self.client.delete("bench", ids=[str(r) for r in rows])

    def close(self) -> None:
        self.client.close()
