"""Duplicate groups, tiered: exact copies, edited copies (near), same scene (similar).

How the groups are built (see ``editmatch`` for the matching itself):

1. Items with the same sha256 are one *node* (an exact group on their own).
2. Candidate node pairs come from the edit-invariant pHashes of the stored thumbnails
   (any model) and from the collection's own vectors (cosine >= ``threshold``).
3. Each candidate is *proven* with OpenCV keypoints under the edit its hash predicts;
   a proof is a ``near`` link naming the edit. A model candidate without a proof is a
   ``similar`` link, but only for models that can tell scenes apart (CLIP): a pHash
   only knows "same picture", and that is what the proof decides.
4. Links join nodes strongest first. A node on its own joins a group through one link;
   two groups of several nodes merge only through at least :data:`LINKS_TO_MERGE` links
   between them (more pairs across them are proven on demand), so one weak link (a wrong
   proof, a look-alike) cannot chain two groups.

The ``threshold`` (cosine of the collection's vectors) means, per model:

* ``phash``: vectors are +-1/8 per bit, so cosine = 1 - 2 * bits / 64 (0.95 = at most
  1 bit of 64 apart). It only adds candidates; every near link is proven by keypoints,
  so at any threshold a pair is grouped only when one image is an edit of the other.
* CLIP models: cosine of the image embeddings. Pairs at or above it that no edit
  explains become ``similar`` links (bursts, the same scene re-shot). The scale
  depends on the model; for OpenAI ViT-B/32 0.95 keeps mostly re-shots of one scene.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from . import editmatch
from .stores.base import CollectionStore
from .types import DuplicateGroup, DuplicateLink, Item

#: neighbours per item asked of the collection's vectors for model candidates
NEIGHBOURS = 8
#: links needed between two groups of several items before they merge
LINKS_TO_MERGE = 2
#: members per side tried when two groups are joined by too few links
CONFIRM_TRIES = 4
#: models whose vectors only say "same picture" (no similar tier)
HASH_MODELS = frozenset({"phash"})


@dataclass
class _Edge:
    a: int
    b: int
    tier: str
    score: float
    edit: str | None = None
    inliers: int = 0

    def strength(self) -> tuple[int, float]:
        return (1 if self.tier == "near" else 0, self.inliers + self.score)


def find_groups(store: CollectionStore, threshold: float) -> list[DuplicateGroup]:
    """Tiered duplicate groups of the whole collection, every item in at most one.

    Groups come sorted: exact first, then near, then similar; larger groups first.
    """
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    for chunk_ids, chunk in store.all_vectors():
        ids += chunk_ids
        vectors.append(np.asarray(chunk, dtype=np.float32))
    if len(ids) < 2:
        return []
    items = {it.id: it for it in store.get(ids) if it is not None}
    ids = [i for i in ids if i in items]
    by_sha: dict[str, list[str]] = defaultdict(list)
    for i in ids:
        by_sha[items[i].sha256 or f"id:{i}"].append(i)
    nodes = list(by_sha.values())                      # each node: ids with one content
    reps = [n[0] for n in nodes]
    pos = {i: k for k, i in enumerate(ids)}
    vec = np.concatenate(vectors)[[pos[r] for r in reps]] if vectors else None

    fps, has_fp = _fingerprints(store, [items[r] for r in reps])
    usable = [k for k in range(len(reps)) if has_fp[k]]
    prover = editmatch.Prover(fps)
    cand: dict[tuple[int, int], tuple[int, int]] = {}
    for (a, b), v in editmatch.candidates([fps[k] for k in usable]).items():
        cand[(usable[a], usable[b])] = v
    model_pairs = _model_pairs(store, vec, threshold) if vec is not None else {}
    for (a, b) in model_pairs:
        if (a, b) not in cand and (b, a) not in cand and has_fp[a] and has_fp[b]:
            cand[(a, b)] = editmatch.best_variant(fps[a], fps[b])

    edges: list[_Edge] = []
    proven: set[tuple[int, int]] = set()
    for (a, b) in cand:
        edge = _near_edge(prover, a, b)
        if edge is not None:
            proven.add((min(a, b), max(a, b)))
            edges.append(edge)
    if store.info.model not in HASH_MODELS:
        for (a, b), cos in model_pairs.items():
            if (min(a, b), max(a, b)) not in proven:
                edges.append(_Edge(a, b, "similar", cos))

    tried = set(cand) | {(b, a) for a, b in cand}

    def confirm(ga: list[int], gb: list[int], needed: int) -> list[_Edge]:
        """Prove more pairs across two groups (a few, largest-first members)."""
        found: list[_Edge] = []
        for a in ga[:CONFIRM_TRIES]:
            for b in gb[:CONFIRM_TRIES]:
                if len(found) >= needed or (a, b) in tried or not (has_fp[a] and has_fp[b]):
                    continue
                tried.update({(a, b), (b, a)})
                edge = _near_edge(prover, a, b) or _near_edge(prover, b, a)
                if edge is not None:
                    found.append(edge)
        return found

    clusters = _cluster(len(nodes), edges, confirm)
    groups = [_group(c, nodes, items, edges, fps, has_fp, prover) for c in clusters]
    groups += [DuplicateGroup(ids=_order(n, items), score=1.0, exact=True, tier="exact",
                              scores={i: 1.0 for i in _order(n, items)[1:]},
                              edits={i: "exact copy" for i in _order(n, items)[1:]},
                              links=_exact_links(_order(n, items)))
               for k, n in enumerate(nodes) if len(n) > 1 and not any(k in c for c in clusters)]
    rank = {"exact": 0, "near": 1, "similar": 2}
    groups.sort(key=lambda g: (rank[g.tier], -len(g.ids), -g.score, g.ids[0]))
    return groups


def _near_edge(prover: editmatch.Prover, a: int, b: int) -> _Edge | None:
    """A proven "b is a edited" link, or None."""
    found = prover.prove_any(a, b)
    if found is None:
        return None
    proof, _variant = found
    return _Edge(a, b, "near", 1 - 2 * proof.bits / 64,
                 editmatch.describe(proof, prover.fps[a], prover.fps[b]), proof.inliers)


def _fingerprints(store: CollectionStore, reps: list[Item]
                  ) -> tuple[list[editmatch.Fingerprint], list[bool]]:
    fps, ok = [], []
    blank = editmatch.fingerprint(Image.new("L", (8, 8)))
    for it in reps:
        data = store.thumbnail(it.id)
        try:
            with Image.open(io.BytesIO(data or b"")) as im:
                size = (it.width, it.height) if it.width and it.height else im.size
                fps.append(editmatch.fingerprint(im, size=size))
                ok.append(True)
        except (OSError, ValueError):
            # no thumbnail to look at: only exact copies can be told for this item
            fps.append(blank)
            ok.append(False)
    return fps, ok


def _model_pairs(store: CollectionStore, vec: np.ndarray,
                 threshold: float) -> dict[tuple[int, int], float]:
    """Node pairs whose stored vectors have cosine >= threshold (each pair once)."""
    out: dict[tuple[int, int], float] = {}
    norms = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
    k = min(NEIGHBOURS + 1, len(vec))
    for start in range(0, len(vec), 1024):
        block = norms[start:start + 1024]
        sims = block @ norms.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for r, row in enumerate(top):
            a = start + r
            for b in row:
                b = int(b)
                if b != a and sims[r, b] >= threshold:
                    out[(min(a, b), max(a, b))] = float(sims[r, b])
    return out


def _cluster(n: int, edges: list[_Edge],
             confirm: Callable[[list[int], list[int], int], list[_Edge]] | None = None
             ) -> list[list[int]]:
    """Join nodes through links, strongest first; several links to merge two groups.

    ``confirm(group_a, group_b, needed)`` may look for more links between two groups
    that one link connects (it returns the links it proved; they join ``edges``).
    """
    parent = list(range(n))
    members: dict[int, list[int]] = {x: [x] for x in range(n)}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    order = sorted(edges, key=lambda e: e.strength(), reverse=True)
    asked: set[tuple[int, int]] = set()
    changed = True
    while changed:
        changed = False
        for e in list(order):
            ra, rb = find(e.a), find(e.b)
            if ra == rb:
                continue
            if min(len(members[ra]), len(members[rb])) > 1:
                cross = sum(1 for f in order if {find(f.a), find(f.b)} == {ra, rb})
                key = (min(members[ra]), min(members[rb]))
                if cross < LINKS_TO_MERGE and confirm is not None and key not in asked:
                    asked.add(key)
                    found = confirm(members[ra], members[rb], LINKS_TO_MERGE - cross)
                    edges.extend(found)
                    order.extend(found)
                    cross += len(found)
                if cross < LINKS_TO_MERGE:
                    continue
            if len(members[ra]) < len(members[rb]):
                ra, rb = rb, ra
            parent[rb] = ra
            members[ra] += members.pop(rb)
            changed = True
    return [m for m in members.values() if len(m) > 1]


def _order(ids: list[str], items: dict[str, Item]) -> list[str]:
    """The likely original first: most pixels, then oldest file, then added first, then
    largest file, then id (copies are made after their original)."""
    def key(i: str) -> tuple[int, int, str, int, str]:
        it = items[i]
        return (-(it.width or 0) * (it.height or 0), int(it.file.get("mtime_ns") or 0),
                it.added or "", -int(it.file.get("size") or 0), i)
    return sorted(ids, key=key)


def _exact_links(ordered: list[str]) -> list[DuplicateLink]:
    return [DuplicateLink(ordered[0], i, "exact", 1.0, "exact copy") for i in ordered[1:]]


def _group(cluster: list[int], nodes: list[list[str]], items: dict[str, Item],
           edges: list[_Edge], fps: list[editmatch.Fingerprint], has_fp: list[bool],
           prover: editmatch.Prover) -> DuplicateGroup:
    inside = set(cluster)
    rep_ids = _order([nodes[k][0] for k in cluster], items)
    node_of = {nodes[k][0]: k for k in cluster}
    ref = node_of[rep_ids[0]]
    ordered = _order(nodes[ref], items) + [i for r in rep_ids[1:] for i in
                                            _order(nodes[node_of[r]], items)]
    links = [lk for k in cluster for lk in _exact_links(_order(nodes[k], items))]
    mine = [e for e in edges if e.a in inside and e.b in inside]
    for e in mine:
        links.append(DuplicateLink(nodes[e.a][0], nodes[e.b][0], e.tier, round(e.score, 4),
                                   e.edit, e.inliers))
    tier = "similar" if any(e.tier == "similar" for e in mine) else "near"
    scores: dict[str, float] = {}
    edits: dict[str, str | None] = {}
    for i in ordered[1:]:
        k = next(c for c in cluster if i in nodes[c])
        if k == ref:
            scores[i], edits[i] = 1.0, "exact copy"
            continue
        edit, score = _edit_from(ref, k, fps, has_fp, prover, mine)
        scores[i], edits[i] = score, edit
    return DuplicateGroup(ids=ordered, score=min(scores.values()), exact=False, tier=tier,
                          scores=scores, edits=edits, links=links)


def _edit_from(ref: int, k: int, fps: list[editmatch.Fingerprint], has_fp: list[bool],
               prover: editmatch.Prover, mine: list[_Edge]) -> tuple[str | None, float]:
    """The edit making node k from the reference node, proven directly when possible."""
    if has_fp[ref] and has_fp[k]:
        edge = _near_edge(prover, ref, k)
        if edge is not None:
            return edge.edit, round(edge.score, 4)
    direct = [e for e in mine if {e.a, e.b} == {ref, k}]
    if direct:
        return None, round(direct[0].score, 4)
    # related only through other members: as strong as its weakest path is unknown here,
    # so report its strongest own link
    own = [e.score for e in mine if k in (e.a, e.b)]
    return None, round(max(own), 4) if own else 0.0
