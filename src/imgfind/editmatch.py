"""Is image B an edited copy of image A? Candidates by edit-invariant hashes, proof by keypoints.

Two stages, both weight-free, so they serve every collection (``phash`` and CLIP alike):

1. **Candidates.** Each image gets 24 pHashes: its 8 rotations/mirrors (the dihedral
   group) times 3 centred crops (100%, 90%, 80% of each side). A copy that was
   resized or re-compressed keeps its identity hash within a few bits; a mirrored or
   rotated copy matches one of the original's 8 orientations; a copy cropped by up to
   10% per side matches one of its centred crops. The variant that matched *predicts*
   the edit. Search is a faiss binary (Hamming) index over all variants.
2. **Proof.** OpenCV ORB keypoints of both thumbnails, the reference turned by the
   predicted orientation first (ORB is rotation-invariant but not mirror-invariant),
   ratio-test matches, then a RANSAC similarity fit (``estimateAffinePartial2D``). The
   pair is an edited copy only when at least :data:`MIN_INLIERS` keypoints agree on a
   fit that *is* such an edit: no residual rotation, a plausible scale, and one frame
   lying inside the other (crops and resizes nest; two shots of a scene from a moved
   camera overlap only partly, so a burst is not called an edit).

>>> from PIL import Image
>>> fp = fingerprint(Image.new("RGB", (64, 48), "gray"))
>>> fp.hashes.shape
(24, 8)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from .embedders.phash import IMG_SIZE, hash_bits

#: centred crops hashed per orientation: the fraction of each side kept
CROPS = (1.0, 0.9, 0.8)
#: orientation names, index t: np.rot90(k=t % 4) of the image, mirrored left-right first
#: when t >= 4 (np.rot90 and PIL's ``rotate`` both turn counter-clockwise)
ORIENTATIONS = ("none", "rotated 90", "rotated 180", "rotated 270",
                "mirrored", "mirrored + rotated 90", "mirrored + rotated 180",
                "mirrored + rotated 270")
#: a candidate pair must have some variant within this many of 64 bits. Measured on
#: ImageNet photos x 8 edits among Flickr photos: edited copies fell at 0-14 bits, but a
#: crop of 10% off one side only (not centred) reached 20; unrelated pairs start at 8,
#: so candidates are also capped per image and the keypoint proof removes the rest.
CANDIDATE_BITS = 20
#: candidates kept per image (nearest first)
CANDIDATES_PER_IMAGE = 10
#: RANSAC inliers needed to call a pair an edited copy (on <=256 px thumbnails)
MIN_INLIERS = 15
#: side of the working image for keypoints (thumbnails are 256 px already)
WORK_SIDE = 256


@dataclass
class Fingerprint:
    """What the matcher keeps of one image: its small grayscale copy and 24 pHashes."""

    gray: np.ndarray        # (h, w) uint8, longest side WORK_SIDE
    hashes: np.ndarray      # (24, 8) uint8: variant v = crop * 8 + orientation
    size: tuple[int, int]   # (width, height) of the full image, for naming resizes

    @property
    def identity(self) -> np.ndarray:
        """The plain pHash (no turn, no crop) as 8 bytes."""
        return self.hashes[0]


@dataclass(frozen=True)
class Proof:
    """A proven edit: ``b`` is ``a`` turned by ``orientation`` then cropped/resized."""

    orientation: int
    inliers: int
    scale: float           # thumbnail-to-thumbnail scale after the turn
    covered: float         # share of the smaller frame's corners inside the other
    cropped: bool
    bits: int              # Hamming distance of the variant that predicted it


def _orient(a: np.ndarray, t: int) -> np.ndarray:
    if t >= 4:
        a = a[:, ::-1]
    return np.ascontiguousarray(np.rot90(a, k=t % 4))


def _centre_crop(a: np.ndarray, frac: float) -> np.ndarray:
    if frac >= 1.0:
        return a
    h, w = a.shape
    dh, dw = round(h * (1 - frac) / 2), round(w * (1 - frac) / 2)
    return a[dh:h - dh, dw:w - dw]


def fingerprint(image: Image.Image, size: tuple[int, int] | None = None) -> Fingerprint:
    """The matcher's view of one image (``size``: the full image's size, if this is a thumbnail).

    >>> fingerprint(Image.new("RGB", (600, 300)), size=(1200, 600)).size
    (1200, 600)
    """
    gray_im = image.convert("L")
    if max(gray_im.size) != WORK_SIDE:
        # Small images are scaled UP too: keypoints of a 150 px original and its 75 px
        # half-size copy only match at one common scale (ImageNet holds such photos).
        s = WORK_SIDE / max(gray_im.size)
        gray_im = gray_im.resize((max(1, round(gray_im.width * s)),
                                  max(1, round(gray_im.height * s))),
                                 Image.Resampling.BILINEAR if s < 1 else Image.Resampling.BICUBIC)
    gray = np.asarray(gray_im, dtype=np.uint8)
    small = []
    for frac in CROPS:
        part = Image.fromarray(_centre_crop(gray, frac))
        small.append(np.asarray(part.resize((IMG_SIZE, IMG_SIZE), Image.Resampling.LANCZOS),
                                dtype=np.uint8))
    # resizing to 32x32 commutes with the 8 turns, so turn the small copies, not the image
    stack = np.stack([_orient(s, t) for s in small for t in range(8)])
    bits = hash_bits(stack)
    return Fingerprint(gray=gray, hashes=np.packbits(bits, axis=1),
                       size=size or image.size)


def candidates(fps: Sequence[Fingerprint]) -> dict[tuple[int, int], tuple[int, int]]:
    """Pairs worth proving: ``(i, j) -> (variant of i, bits)`` where j's plain hash is
    within :data:`CANDIDATE_BITS` of variant ``v`` of i, so j looks like i edited by v.

    >>> from PIL import Image
    >>> im = Image.effect_mandelbrot((200, 150), (-1.8, -0.4, 0.6, 1.3), 60).convert("RGB")
    >>> fps = [fingerprint(im), fingerprint(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT))]
    >>> [variant % 8 for variant, bits in candidates(fps).values()]   # 4: mirrored
    [4]
    """
    import faiss

    n = len(fps)
    if n < 2:
        return {}
    variants = np.concatenate([fp.hashes for fp in fps])      # (24n, 8)
    owner = np.repeat(np.arange(n), len(CROPS) * 8)
    index = faiss.IndexBinaryFlat(64)
    index.add(variants)
    queries = np.stack([fp.identity for fp in fps])
    k = min(len(variants), len(CROPS) * 8 + 8 * CANDIDATES_PER_IMAGE)
    dist, idx = index.search(queries, k)
    out: dict[tuple[int, int], tuple[int, int]] = {}
    for j in range(n):
        kept = 0
        for d, v in zip(dist[j], idx[j]):
            if v < 0 or d > CANDIDATE_BITS or kept >= CANDIDATES_PER_IMAGE:
                break
            i = int(owner[v])
            if i == j or (i, j) in out:
                continue
            kept += 1
            if (j, i) in out and out[(j, i)][1] <= d:
                continue        # the pair is already due for proof, the other way round
            out.pop((j, i), None)
            out[(i, j)] = (int(v) % (len(CROPS) * 8), int(d))
    return out


def best_variant(a: Fingerprint, b: Fingerprint) -> tuple[int, int]:
    """(variant of a, bits) nearest to b's plain hash: the edit most likely taking a to b."""
    x = np.unpackbits(a.hashes, axis=1) != np.unpackbits(b.identity)[None, :]
    d = x.sum(1)
    v = int(np.argmin(d))
    return v, int(d[v])


class Prover:
    """Keypoint proofs with per-image, per-orientation ORB features cached.

    >>> from PIL import Image
    >>> im = Image.effect_mandelbrot((240, 180), (-1.8, -0.4, 0.6, 1.3), 80).convert("RGB")
    >>> fps = [fingerprint(im), fingerprint(im.rotate(90, expand=True))]
    >>> Prover(fps).prove(0, 1, 1, 0) is not None
    True
    """

    def __init__(self, fps: Sequence[Fingerprint]) -> None:
        self.fps = fps
        self._orb = cv2.ORB_create(  # type: ignore[attr-defined]
            nfeatures=500, edgeThreshold=15, patchSize=15, fastThreshold=10)
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        self._feats: dict[tuple[int, int], tuple[np.ndarray, np.ndarray | None]] = {}

    def _features(self, i: int, t: int) -> tuple[np.ndarray, np.ndarray | None]:
        key = (i, t)
        if key not in self._feats:
            img = _orient(self.fps[i].gray, t)
            kps, desc = self._orb.detectAndCompute(img, None)
            pts = np.array([k.pt for k in kps], dtype=np.float32).reshape(-1, 2)
            self._feats[key] = (pts, desc)
        return self._feats[key]

    def prove_any(self, i: int, j: int, tries: int = 2) -> tuple[Proof, int] | None:
        """Proof that j is an edit of i under the ``tries`` orientations whose hashes
        agree best (a noisy hash can rank a wrong turn first), or None; with the variant.
        """
        x = np.unpackbits(self.fps[i].hashes, axis=1) != np.unpackbits(self.fps[j].identity)
        d = x.sum(1).reshape(len(CROPS), 8).min(0)            # best crop per orientation
        crop = x.sum(1).reshape(len(CROPS), 8).argmin(0)
        for t in np.argsort(d, kind="stable")[:tries]:
            if d[t] > CANDIDATE_BITS + 4:
                break
            variant = int(crop[t]) * 8 + int(t)
            proof = self.prove(i, j, variant, int(d[t]))
            if proof is not None:
                return proof, variant
        return None

    def prove(self, i: int, j: int, variant: int, bits: int) -> Proof | None:
        """Proof that image j is image i edited as ``variant`` predicts, or None."""
        t = variant % 8
        pa, da = self._features(i, t)
        pb, db = self._features(j, 0)
        if da is None or db is None or len(pa) < MIN_INLIERS or len(pb) < MIN_INLIERS:
            return None
        good = []
        for m in self._matcher.knnMatch(da, db, k=2):
            if len(m) == 2 and m[0].distance < 0.8 * m[1].distance:
                good.append(m[0])
        if len(good) < MIN_INLIERS:
            return None
        src = pa[[m.queryIdx for m in good]]
        dst = pb[[m.trainIdx for m in good]]
        fit, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                ransacReprojThreshold=3.0, maxIters=2000,
                                                confidence=0.995)
        if fit is None:
            return None
        inliers = int(mask.sum())
        if inliers < MIN_INLIERS:
            return None
        scale = float(np.hypot(fit[0, 0], fit[1, 0]))
        angle = float(np.degrees(np.arctan2(fit[1, 0], fit[0, 0])))
        # the turn was applied already: what is left of an edit is a crop and a resize
        if abs(angle) > 6 or not 0.6 < scale < 1.7:
            return None
        ga = _orient(self.fps[i].gray, t)
        gb = self.fps[j].gray
        covered_b = _inside(fit, ga.shape, gb.shape)               # a's frame in b
        covered_a = _inside(cv2.invertAffineTransform(fit), gb.shape, ga.shape)
        # an edit nests one frame inside the other; moved-camera shots only overlap
        if max(covered_a, covered_b) < 0.97:
            return None
        return Proof(orientation=t, inliers=inliers, scale=scale,
                     covered=max(covered_a, covered_b),
                     cropped=min(covered_a, covered_b) < 0.93 or scale > 1.08,
                     bits=bits)


def _inside(fit: np.ndarray, src_shape: tuple[int, ...], dst_shape: tuple[int, ...]) -> float:
    """Share of the dst frame covered by the src frame mapped through ``fit`` (sampled)."""
    h, w = dst_shape[:2]
    ys, xs = np.mgrid[0:h:complex(0, 12), 0:w:complex(0, 12)]
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1)
    inv = cv2.invertAffineTransform(fit)
    back = pts @ inv[:, :2].T + inv[:, 2]
    sh, sw = src_shape[:2]
    tol = 2.0
    ok = ((back[:, 0] >= -tol) & (back[:, 0] <= sw - 1 + tol)
          & (back[:, 1] >= -tol) & (back[:, 1] <= sh - 1 + tol))
    return float(ok.mean())


def describe(proof: Proof, a: Fingerprint, b: Fingerprint) -> str:
    """Plain words for the edit taking a to b, e.g. ``"mirrored + cropped"``, ``"resized"``.

    Resizing is told from the full images' sizes (thumbnails hide it), cropping from the
    keypoint fit; an edit with neither and no turn is a re-encode (same pixels, new bytes).
    """
    parts = [] if proof.orientation == 0 else [ORIENTATIONS[proof.orientation]]
    if proof.cropped:
        parts.append("cropped")
    aw, ah = a.size
    if proof.orientation % 2:
        aw, ah = ah, aw
    bw, bh = b.size
    if not proof.cropped and (abs(bw - aw) > 0.02 * aw or abs(bh - ah) > 0.02 * ah):
        parts.append("resized")
    elif proof.cropped and bw * bh < 0.5 * aw * ah:
        parts.append("resized")
    return " + ".join(parts) if parts else "re-encoded"
