"""Duplicate groups: exact copies by content hash, near-duplicates by vector similarity."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .stores.base import CollectionStore
from .types import DuplicateGroup

#: neighbours looked at per item; a near-duplicate group larger than this is still
#: joined through its members' own neighbours (union-find is transitive).
NEIGHBOURS = 8


def find_groups(store: CollectionStore, threshold: float) -> list[DuplicateGroup]:
    """Exact groups (same sha256) first, then near-duplicate groups (cosine >= threshold),
    each item in at most one group, groups sorted by size then score."""
    sha_of: dict[str, str] = {}
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    best: dict[tuple[str, str], float] = {}
    for ids, vecs in store.all_vectors():
        for item in store.get(ids):
            if item is not None and item.sha256:
                sha_of[item.id] = item.sha256
        results = store.search(np.asarray(vecs, dtype=np.float32), NEIGHBOURS + 1)
        for qid, hits in zip(ids, results):
            for hid, score in hits:
                if hid == qid or score < threshold:
                    continue
                a, b = sorted((qid, hid))
                best[(a, b)] = max(best.get((a, b), -1.0), score)
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[ra] = rb

    by_sha: dict[str, list[str]] = defaultdict(list)
    for i, h in sha_of.items():
        by_sha[h].append(i)
    exact = [sorted(v) for v in by_sha.values() if len(v) > 1]

    members: dict[str, set[str]] = defaultdict(set)
    weakest: dict[str, float] = {}
    for (a, b), score in best.items():
        root = find(a)
        members[root].update((a, b))
        weakest[root] = min(weakest.get(root, 1.0), score)
    groups = [DuplicateGroup(ids=g, score=1.0, exact=True) for g in exact]
    for root, ids in members.items():
        # a cluster made only of identical copies is already an exact group
        if len({sha_of.get(i, i) for i in ids}) < 2:
            continue
        groups.append(DuplicateGroup(ids=sorted(ids), score=weakest[root], exact=False))
    groups.sort(key=lambda g: (not g.exact, -len(g.ids), -g.score))
    return groups
