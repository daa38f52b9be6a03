"""Data builders and exact references shared by the contract tests."""

from __future__ import annotations

import numpy as np

from imgfind.stores import Record

__all__ = ["DIM", "SCORE_TOL", "VEC_ATOL", "VEC_RTOL", "clustered", "exact_top", "recall",
           "records"]

DIM = 32

# A store may keep vectors at half precision (the SQLite store writes float16): a value
# read back is then within 2**-11 of the one written, relatively (float16 keeps 11
# significant bits; VEC_ATOL covers values near 0, float16's subnormal step), and a
# cosine of unit vectors scored from stored values is within 2**-11 of the float32 one
# (|q . e| <= |q| |e| <= 2**-11 for the rounding error e). Only values get these
# tolerances: ids and their order are compared exactly.
VEC_RTOL = 2.0 ** -11
VEC_ATOL = 2.0 ** -24
SCORE_TOL = 2.0 ** -11 + 1e-5      # plus float32 arithmetic


def clustered(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    """Unit vectors around 40 centres: clustered like real embeddings."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((40, dim))
    x = centres[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def records(x: np.ndarray, start: int = 0, **meta) -> list[Record]:
    return [Record(id=f"r{start + i}", source=f"/data/img{start + i}.jpg", vector=v,
                   metadata={"n": start + i, "g10": (start + i) % 10,
                             "g100": (start + i) % 100, "half": (start + i) % 2, **meta})
            for i, v in enumerate(x)]


def exact_top(x: np.ndarray, q: np.ndarray, k: int, keep: np.ndarray | None = None,
              start: int = 0) -> list[list[str]]:
    s = q @ x.T
    if keep is not None:
        s[:, ~keep] = -np.inf
    top = np.argsort(-s, axis=1)[:, :k]
    return [[f"r{start + j}" for j in row if np.isfinite(s[i, j])] for i, row in enumerate(top)]


def recall(got: list[list[tuple[str, float]]], truth: list[list[str]]) -> float:
    hits = sum(len({h[0] for h in g} & set(t)) for g, t in zip(got, truth, strict=True))
    return hits / max(1, sum(len(t) for t in truth))
