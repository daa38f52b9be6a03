"""Clustered unit vectors that behave like CLIP image embeddings, plus exact ground truth.

The base set and the held-out queries come from one Gaussian mixture on the
512-d unit sphere:

* ``clusters`` centres drawn uniformly on the sphere;
* cluster sizes uneven (Dirichlet weights), per-cluster spread drawn uniformly
  from ``spread`` (noise norm relative to the unit centre, so a point's cosine
  to its centre is about 1/sqrt(1+s^2): 0.64-0.86 for s in 0.6-1.2, the range
  seen between CLIP embeddings of photos of one subject);
* a fraction ``dup_frac`` of points are near-duplicates of an earlier point
  (noise norm 0.05: re-encoded or resized copies).

Vectors are written as raw float32 rows so workers read them in chunks with
``np.fromfile`` (anonymous memory freed per chunk) instead of a memory map,
whose file pages would count towards the worker's RSS.

Example::

    ds = make_dataset(Path("/tmp/vecs"), n=20000, n_queries=100)
    q = ds.queries()            # (100, 512) float32
    gt = ds.ground_truth()      # {"all": (100, 10) int64, "group": ..., "bucket": ...}
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIM = 512
K = 10
#: filter fields: ``group`` has 10 values (a filter on one matches 10%), ``bucket`` 100 (1%),
#: ``shard`` 1000 (0.1%)
FILTERS = {"group": ("10%", 10, 7), "bucket": ("1%", 100, 7), "shard": ("0.1%", 1000, 7)}
#: fields a user would have indexed before searching; ``shard`` is left as a key no index
#: has seen yet, so the first filtered query on it shows what a new JSON key costs
INDEXED_AT_BUILD = ("group", "bucket")


@dataclass
class Dataset:
    root: Path
    n: int
    n_queries: int
    dim: int = DIM

    @property
    def base_path(self) -> Path:
        return self.root / "base.f32"

    def chunks(self, size: int = 50_000) -> Iterator[tuple[int, np.ndarray]]:
        """(first row index, rows) over the base set, reading one chunk at a time."""
        with open(self.base_path, "rb") as f:
            for start in range(0, self.n, size):
                cnt = min(size, self.n - start)
                yield start, np.fromfile(f, dtype=np.float32, count=cnt * self.dim).reshape(
                    cnt, self.dim)

    def labels(self) -> dict[str, np.ndarray]:
        """The integer metadata fields, one int32 array of length n per field."""
        return {f: np.load(self.root / f"{f}.npy") for f in FILTERS}

    def queries(self) -> np.ndarray:
        return np.load(self.root / "queries.npy")

    def ground_truth(self) -> dict[str, np.ndarray]:
        """Exact top-K row indices per query: unfiltered ("all") and per filter field."""
        return {name: np.load(self.root / f"gt_{name}.npy") for name in ["all", *FILTERS]}

    def describe(self) -> dict:
        return json.loads((self.root / "meta.json").read_text())


def _mixture(rng: np.random.Generator, centres: np.ndarray, weights: np.ndarray,
             spreads: np.ndarray, n: int) -> np.ndarray:
    which = rng.choice(len(centres), size=n, p=weights)
    noise = rng.standard_normal((n, centres.shape[1]), dtype=np.float32)
    noise *= (spreads[which] / np.sqrt(centres.shape[1]))[:, None]
    x = centres[which] + noise
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_dataset(root: Path, n: int, n_queries: int, clusters: int = 1000,
                 spread: tuple[float, float] = (0.6, 1.2), dup_frac: float = 0.03,
                 seed: int = 0) -> Dataset:
    """Generate (or reuse, when the parameters match) a dataset under ``root``."""
    meta = {"n": n, "n_queries": n_queries, "dim": DIM, "clusters": clusters,
            "spread": list(spread), "dup_frac": dup_frac, "seed": seed, "k": K,
            "filters": {f: {"selectivity": s, "values": v, "value": x}
                        for f, (s, v, x) in FILTERS.items()},
            "version": 3}
    ds = Dataset(root, n, n_queries)
    mp = root / "meta.json"
    if mp.exists() and json.loads(mp.read_text()) == meta:
        return ds
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = rng.dirichlet(np.full(clusters, 2.0))
    spreads = rng.uniform(*spread, size=clusters).astype(np.float32)

    chunk = 100_000
    with open(ds.base_path, "wb") as f:
        for start in range(0, n, chunk):
            cnt = min(chunk, n - start)
            x = _mixture(rng, centres, weights, spreads, cnt)
            # near-duplicates copy a row of the same chunk (cheap, and the pairs stay close)
            ndup = int(cnt * dup_frac)
            if ndup:
                dst = rng.choice(cnt, size=ndup, replace=False)
                src = rng.integers(0, cnt, size=ndup)
                d = x[src] + rng.standard_normal((ndup, DIM), dtype=np.float32) * (
                    0.05 / np.sqrt(DIM))
                x[dst] = d / np.linalg.norm(d, axis=1, keepdims=True)
            x.astype(np.float32).tofile(f)
    for field, (_s, values, _v) in FILTERS.items():
        np.save(root / f"{field}.npy", rng.integers(0, values, size=n).astype(np.int32))
    q = _mixture(rng, centres, weights, spreads, n_queries).astype(np.float32)
    np.save(root / "queries.npy", q)
    _write_ground_truth(ds, q)
    mp.write_text(json.dumps(meta))
    return ds


def _write_ground_truth(ds: Dataset, q: np.ndarray) -> None:
    """Exact top-K by brute-force inner product (vectors are unit length: cosine)."""
    labels = ds.labels()
    masks = {f: labels[f] == v for f, (_s, _n, v) in FILTERS.items()}
    best = {name: (np.full((len(q), K), -np.inf, np.float32), np.zeros((len(q), K), np.int64))
            for name in ["all", *FILTERS]}
    for start, x in ds.chunks():
        sims = q @ x.T  # (nq, chunk)
        for name, (bs, bi) in list(best.items()):
            s = sims if name == "all" else np.where(masks[name][start:start + len(x)],
                                                    sims, -np.inf)
            cand_s = np.concatenate([bs, s], axis=1)
            cand_i = np.concatenate([bi, np.broadcast_to(
                np.arange(start, start + len(x)), s.shape)], axis=1)
            top = np.argpartition(-cand_s, K - 1, axis=1)[:, :K]
            rows = np.arange(len(q))[:, None]
            best[name] = (cand_s[rows, top], cand_i[rows, top])
    for name, (s, i) in best.items():
        order = np.argsort(-s, axis=1)
        np.save(ds.root / f"gt_{name}.npy", np.take_along_axis(i, order, axis=1))


def recall_at_k(found: list[list[int]], truth: np.ndarray, k: int = K) -> float:
    """Mean fraction of the exact top-k that each result list contains."""
    hits = sum(len(set(f[:k]) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True))
    return hits / (k * len(truth))
