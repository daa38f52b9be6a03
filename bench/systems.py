"""One adapter per vector store under test, all speaking row indices.

Every adapter builds from a :class:`bench.data.Dataset`, reopens from disk in a
fresh process, searches one query at a time under a named accuracy setting,
optionally restricted to ``field == value``, and deletes rows. Imports of the
peer libraries happen inside the adapters so a missing peer only disables its
own row.

Example::

    sys_ = SYSTEMS["faiss-hnsw32"]()
    sys_.build(Path("/tmp/h"), ds)
    sys_.open(Path("/tmp/h"))
    sys_.configure(sys_.settings(ds.n)[0])
    rows = sys_.search(ds.queries()[0], 10, ("group", 7))
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from .data import FILTERS, INDEXED_AT_BUILD, Dataset

Setting = dict[str, Any]
Filter = tuple[str, int] | None


class System:
    """Base adapter. ``filter_mode`` says how a filter is applied (it decides recall)."""

    name = "?"
    filter_mode = "?"
    delete_mode = "?"

    def settings(self, n: int) -> list[Setting]:
        return [{"label": "default"}]

    def build(self, path: Path, ds: Dataset) -> dict[str, float]:
        raise NotImplementedError

    def open(self, path: Path) -> None:
        raise NotImplementedError

    def configure(self, setting: Setting) -> None:
        self.setting = setting

    def search(self, q: np.ndarray, k: int, filt: Filter) -> list[int]:
        raise NotImplementedError

    #: a second search path through the system's public API (imgfind: Collection.search,
    #: ids, scores and items returned); None when ``search`` already is that API
    api_search: Any = None

    def delete(self, rows: list[int]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        return None


def _labels_chunk(labels: dict[str, np.ndarray], start: int, cnt: int) -> dict[str, np.ndarray]:
    return {f: a[start:start + cnt] for f, a in labels.items()}


# --------------------------------------------------------------------------- imgfind
class Imgfind(System):
    """imgfind's embedded store (SQLite source of truth + derived faiss index)."""

    name = "imgfind"
    filter_mode = "store planner (where= dict)"
    delete_mode = "store.delete"
    batch = 10_000

    def build(self, path: Path, ds: Dataset) -> dict[str, float]:
        from imgfind.stores import open_backend
        from imgfind.stores.base import CollectionInfo, Record

        labels = ds.labels()
        backend = open_backend(path)
        store = backend.create(CollectionInfo(name="bench", model="bench", dim=ds.dim))
        t0 = time.perf_counter()
        for start, x in ds.chunks(self.batch):
            lab = _labels_chunk(labels, start, len(x))
            recs = [Record(id=str(start + i), source=f"bench://{start + i}", vector=x[i],
                           metadata={f: int(lab[f][i]) for f in FILTERS})
                    for i in range(len(x))]
            store.put(recs)
        insert_s = time.perf_counter() - t0
        # the ANN index is derived data; force it now so build time is counted here,
        # not in the first query of the cold-open measurement
        t1 = time.perf_counter()
        store.search(ds.queries()[:1], 10)
        index_s = time.perf_counter() - t1
        # SQLite indexes on the filter fields, as a user who filters on them would make
        # (the store makes them itself on first use from 100k items on); LanceDB gets
        # BITMAP scalar indexes on the same fields
        t2 = time.perf_counter()
        for f in INDEXED_AT_BUILD:
            store.index_field(f)
        field_index_s = time.perf_counter() - t2
        store.close()
        backend.close()
        return {"insert_s": insert_s, "index_s": index_s + field_index_s,
                "field_index_s": field_index_s}

    def open(self, path: Path) -> None:
        from imgfind.stores import open_backend

        self.backend = open_backend(path)
        self.store = self.backend.open("bench")
        self.path = path
        self.collection: Any = None

    def api_search(self, q: np.ndarray, k: int, filt: Filter) -> list[int]:
        """The public API users call: ``Collection.search(vector)`` returns Hits with items."""
        if self.collection is None:
            import imgfind

            self.library = imgfind.open(self.path)
            self.collection = self.library.collection("bench")
        self.collection.store.options.nprobe = self.store.options.nprobe
        where = {filt[0]: filt[1]} if filt else None
        return [int(h.id) for h in self.collection.search(q, k=k, where=where)]

    def settings(self, n: int) -> list[Setting]:
        info = self.store.index_info()
        if not info["kind"].startswith("ivf"):
            return [{"label": f"default ({info['kind']})"}]
        tuned = int(info["details"]["tuned_nprobe"])
        return [{"label": f"nprobe{max(1, tuned // 2)}", "nprobe": max(1, tuned // 2)},
                {"label": f"default (nprobe{tuned})", "nprobe": tuned},
                {"label": f"nprobe{tuned * 2}", "nprobe": tuned * 2}]

    def configure(self, setting: Setting) -> None:
        super().configure(setting)
        if "nprobe" in setting:
            # the store's public knob (StoreOptions.nprobe), checked through index_info()
            self.store.options.nprobe = setting["nprobe"]
            got = self.store.index_info()["details"]["nprobe"]
            if got != setting["nprobe"]:
                raise RuntimeError(f"could not set nprobe {setting['nprobe']} (index has {got})")

    def search(self, q: np.ndarray, k: int, filt: Filter) -> list[int]:
        where = {filt[0]: filt[1]} if filt else None
        hits = self.store.search(q[None, :], k, where=where)[0]
        return [int(i) for i, _s in hits]

    def delete(self, rows: list[int]) -> None:
        self.store.delete([str(r) for r in rows])

    def close(self) -> None:
        if self.collection is not None:
            self.library.close()
        self.store.close()
        self.backend.close()


# --------------------------------------------------------------------------- faiss
class FaissFlat(System):
    """Exact inner-product scan: the ground truth and the floor for filtered search."""

    name = "faiss-flat"
    filter_mode = "exact scan of matching rows (IDSelectorBitmap)"
    delete_mode = "remove_ids"

    def _index(self, dim: int):
        import faiss

        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def build(self, path: Path, ds: Dataset) -> dict[str, float]:
        import faiss

        path.mkdir(parents=True, exist_ok=True)
        index = self._index(ds.dim)
        t0 = time.perf_counter()
        for start, x in ds.chunks():
            self._add(index, start, x)
        insert_s = time.perf_counter() - t0
        faiss.write_index(index, str(path / "index.faiss"))
        for f, a in ds.labels().items():
            np.save(path / f"{f}.npy", a)
        return {"insert_s": insert_s, "index_s": 0.0}

    def _add(self, index, start: int, x: np.ndarray) -> None:
        index.add_with_ids(x, np.arange(start, start + len(x), dtype=np.int64))

    def open(self, path: Path) -> None:
        import faiss

        self.faiss = faiss
        self.index = faiss.read_index(str(path / "index.faiss"))
        self.labels = {f: np.load(path / f"{f}.npy") for f in FILTERS}
        self.alive = np.ones(len(next(iter(self.labels.values()))), dtype=bool)
        self._sel: dict[Any, Any] = {}

    def _selector(self, filt: Filter):
        key = filt
        if key not in self._sel:
            mask = self.alive if filt is None else (self.labels[filt[0]] == filt[1]) & self.alive
            bits = np.packbits(mask, bitorder="little")
            sel = self.faiss.IDSelectorBitmap(len(mask), self.faiss.swig_ptr(bits))
            self._sel[key] = (sel, bits)  # keep the buffer alive as long as the selector
        return self._sel[key][0]

    def _params(self, filt: Filter):
        return self.faiss.SearchParameters(sel=self._selector(filt)) if filt else None

    def search(self, q: np.ndarray, k: int, filt: Filter) -> list[int]:
        _d, i = self.index.search(q[None, :], k, params=self._params(filt))
        return [int(x) for x in i[0] if x >= 0]

    def delete(self, rows: list[int]) -> None:
        self.index.remove_ids(np.asarray(rows, dtype=np.int64))


class FaissHNSW(FaissFlat):
    """faiss HNSW32; filters are applied inside the graph walk via an IDSelector."""

    name = "faiss-hnsw32"
    filter_mode = "in-graph (IDSelectorBitmap during HNSW walk)"
    delete_mode = "tombstones (IDSelector; HNSW cannot remove)"
    ef_construction = 40

    def settings(self, n: int) -> list[Setting]:
        return [{"label": f"ef{e}", "efSearch": e} for e in (16, 32, 64, 128, 256, 512)]

    def _index(self, dim: int):
        import faiss

        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        return index  # rows are added in order, so faiss's own ids are the row indices

    def _add(self, index, start: int, x: np.ndarray) -> None:
        index.add(x)

    def _params(self, filt: Filter):
        ef = self.setting.get("efSearch", 64)
        deleted = not self.alive.all()
        sel = self._selector(filt) if (filt or deleted) else None
        return self.faiss.SearchParametersHNSW(efSearch=ef, sel=sel) if sel else \
            self.faiss.SearchParametersHNSW(efSearch=ef)

    def delete(self, rows: list[int]) -> None:
        self.alive[np.asarray(rows)] = False
        self._sel.clear()


class FaissIVF(FaissFlat):
    """faiss IVF-Flat (exact distances within the probed lists): the raw faiss form of
    imgfind's own index, without a store around it, so the engine-overhead reference."""

    name = "faiss-ivf"
    filter_mode = "IDSelectorBitmap while scanning the probed lists"
    delete_mode = "remove_ids"

    def settings(self, n: int) -> list[Setting]:
        return [{"label": f"nprobe{p}", "nprobe": p} for p in (1, 2, 4, 8, 16, 32, 64, 128)]

    def build(self, path: Path, ds: Dataset) -> dict[str, float]:
        import faiss

        path.mkdir(parents=True, exist_ok=True)
        nlist = int(max(8, min(4096, 2 * math.sqrt(ds.n), ds.n / 39)))  # as imgfind's
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(ds.dim), ds.dim, nlist,
                                   faiss.METRIC_INNER_PRODUCT)
        t0 = time.perf_counter()
        rng = np.random.default_rng(0)
        take = np.sort(rng.choice(ds.n, size=min(ds.n, 40 * nlist), replace=False))
        train = np.concatenate([x[take[(take >= s) & (take < s + len(x))] - s]
                                for s, x in ds.chunks()])
        index.train(train)
        del train
        index_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        for start, x in ds.chunks():
            index.add_with_ids(x, np.arange(start, start + len(x), dtype=np.int64))
        insert_s = time.perf_counter() - t1
        faiss.write_index(index, str(path / "index.faiss"))
        for f, a in ds.labels().items():
            np.save(path / f"{f}.npy", a)
        return {"insert_s": insert_s, "index_s": index_s}

    def _params(self, filt: Filter):
        p = self.setting.get("nprobe", 8)
        return self.faiss.SearchParametersIVF(nprobe=p, sel=self._selector(filt)) if filt \
            else self.faiss.SearchParametersIVF(nprobe=p)


# --------------------------------------------------------------------------- LanceDB
class Lance(System):
    """LanceDB with an IVF_PQ index (its default ANN index) plus float re-rank."""

    name = "lancedb"
    filter_mode = "prefilter (where(..., prefilter=True))"
    delete_mode = "table.delete"

    def settings(self, n: int) -> list[Setting]:
        return [{"label": "np10-rf1", "nprobes": 10, "refine": None},
                {"label": "np20-rf10", "nprobes": 20, "refine": 10},
                {"label": "np50-rf10", "nprobes": 50, "refine": 10},
                {"label": "np100-rf20", "nprobes": 100, "refine": 20}]

    def build(self, path: Path, ds: Dataset) -> dict[str, float]:
        import lancedb
        import pyarrow as pa

        db = lancedb.connect(str(path))
        labels = ds.labels()
        table = None
        t0 = time.perf_counter()
        for start, x in ds.chunks():
            lab = _labels_chunk(labels, start, len(x))
            vec = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), ds.dim)
            batch = pa.table({"id": pa.array(np.arange(start, start + len(x), dtype=np.int64)),
                              "vector": vec,
                              **{f: pa.array(a.astype(np.int64)) for f, a in lab.items()}})
            if table is None:
                table = db.create_table("bench", batch)
            else:
                table.add(batch)
        insert_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        parts = max(16, int(math.sqrt(ds.n)))
        table.create_index(metric="cosine", vector_column_name="vector", index_type="IVF_PQ",
                           num_partitions=parts, num_sub_vectors=64)
        for f in INDEXED_AT_BUILD:
            table.create_scalar_index(f, index_type="BITMAP")
        return {"insert_s": insert_s, "index_s": time.perf_counter() - t1}

    def open(self, path: Path) -> None:
        import lancedb

        self.table = lancedb.connect(str(path)).open_table("bench")

    def search(self, q: np.ndarray, k: int, filt: Filter) -> list[int]:
        s = self.setting
        qb = (self.table.search(q, vector_column_name="vector").distance_type("cosine")
              .limit(k).nprobes(s.get("nprobes", 20)).select(["id"]))
        if s.get("refine"):
            qb = qb.refine_factor(s["refine"])
        if filt:
            qb = qb.where(f"{filt[0]} = {filt[1]}", prefilter=True)
        return [int(i) for i in qb.to_arrow()["id"].to_pylist()]

    def delete(self, rows: list[int]) -> None:
        self.table.delete(f"id IN ({','.join(str(r) for r in rows)})")


# --------------------------------------------------------------------------- Chroma
class Chroma(System):
    """Chroma (embedded PersistentClient) with its HNSW index, cosine space."""

    name = "chroma"
    filter_mode = "metadata pre-filter, then HNSW over allowed ids"
    delete_mode = "collection.delete"

    def settings(self, n: int) -> list[Setting]:
        return [{"label": f"ef{e}", "ef_search": e} for e in (10, 32, 64, 128)]

    def build(self, path: Path, ds: Dataset) -> dict[str, float]:
        import chromadb

        client = chromadb.PersistentClient(path=str(path))
        col = client.create_collection(
            "bench", configuration={"hnsw": {"space": "cosine", "ef_construction": 100,
                                             "ef_search": 32}})
        batch = min(5000, client.get_max_batch_size())
        labels = ds.labels()
        t0 = time.perf_counter()
        for start, x in ds.chunks(batch):
            lab = _labels_chunk(labels, start, len(x))
            col.add(ids=[str(start + i) for i in range(len(x))], embeddings=x,
                    metadatas=[{f: int(lab[f][i]) for f in FILTERS} for i in range(len(x))])
        return {"insert_s": time.perf_counter() - t0, "index_s": 0.0}

    def open(self, path: Path) -> None:
        import chromadb

        self.path = path
        self.client = chromadb.PersistentClient(path=str(path))
        self.col = self.client.get_collection("bench")

    def configure(self, setting: Setting) -> None:
        super().configure(setting)
        if "ef_search" in setting:
            self.col.modify(configuration={"hnsw": {"ef_search": setting["ef_search"]}})
            # a loaded HNSW segment keeps the ef it was loaded with: reopen to apply it
            from chromadb.api.client import SharedSystemClient

            path = self.path
            SharedSystemClient.clear_system_cache()
            self.open(path)

    def search(self, q: np.ndarray, k: int, filt: Filter) -> list[int]:
        r = self.col.query(query_embeddings=q[None, :], n_results=k,
                           where={filt[0]: filt[1]} if filt else None, include=[])
        return [int(i) for i in r["ids"][0]]

    def delete(self, rows: list[int]) -> None:
        self.col.delete(ids=[str(r) for r in rows])


# --------------------------------------------------------------------------- Milvus Lite
class Milvus(System):
    """Milvus Lite (embedded Milvus); IVF_FLAT where it accepts one, else its default."""

    name = "milvus-lite"
    filter_mode = "boolean expression evaluated before the vector search"
    delete_mode = "client.delete"

    def settings(self, n: int) -> list[Setting]:
        return [{"label": f"nprobe{p}", "nprobe": p} for p in (8, 32, 128)]

    def build(self, path: Path, ds: Dataset) -> dict[str, float]:
        from pymilvus import DataType, MilvusClient

        path.mkdir(parents=True, exist_ok=True)
        client = MilvusClient(str(path / "milvus.db"))
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=ds.dim)
        for f in FILTERS:
            schema.add_field(f, DataType.INT64)
        client.create_collection("bench", schema=schema)
        labels = ds.labels()
        t0 = time.perf_counter()
        for start, x in ds.chunks(10_000):
            lab = _labels_chunk(labels, start, len(x))
            client.insert("bench", [{"id": start + i, "vector": x[i],
                                     **{f: int(lab[f][i]) for f in FILTERS}}
                                    for i in range(len(x))])
        insert_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        ip = client.prepare_index_params()
        ip.add_index("vector", index_type="IVF_FLAT", metric_type="COSINE",
                     params={"nlist": max(16, int(4 * math.sqrt(ds.n)))})
        client.create_index("bench", ip)
        client.load_collection("bench")
        index_s = time.perf_counter() - t1
        info = client.describe_index("bench", "vector")
        client.close()
        return {"insert_s": insert_s, "index_s": index_s,
                "index": f"{info.get('index_type')} {info.get('params', '')}".strip()}

    def open(self, path: Path) -> None:
        from pymilvus import MilvusClient

        self.client = MilvusClient(str(path / "milvus.db"))
        self.client.load_collection("bench")

    def search(self, q: np.ndarray, k: int, filt: Filter) -> list[int]:
        r = self.client.search("bench", [q.tolist()], limit=k, output_fields=[],
                               filter=f"{filt[0]} == {filt[1]}" if filt else "",
                               search_params={"metric_type": "COSINE",
                                              "params": {"nprobe": self.setting.get("nprobe",
                                                                                    16)}})
        return [int(h["id"]) for h in r[0]]

    def delete(self, rows: list[int]) -> None:
        self.client.delete("bench", ids=rows)

    def close(self) -> None:
        self.client.close()


def _systems() -> dict[str, type[System]]:
    from .systems_milvus import ImgfindMilvus, MilvusLiteJSON

    return {s.name: s for s in (Imgfind, FaissFlat, FaissHNSW, FaissIVF, Lance, Chroma, Milvus,
                                ImgfindMilvus, MilvusLiteJSON)}


SYSTEMS: dict[str, type[System]] = _systems()
#: import probe per system, to report a peer as unavailable (with the reason) before running it
REQUIRES = {"imgfind": "imgfind.stores", "faiss-flat": "faiss", "faiss-hnsw32": "faiss",
            "faiss-ivf": "faiss",
            "lancedb": "lancedb", "chroma": "chromadb", "milvus-lite": "pymilvus",
            "imgfind-milvus": "pymilvus", "milvus-lite-json": "pymilvus"}
