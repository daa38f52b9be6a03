"""Edited copies of real photos, built in code, for near-duplicate tests and the bench.

The edits the duplicate finder must see through, each saved as a JPEG (q90 unless the
edit is the compression itself), so a copy never shares bytes with its original:

>>> from PIL import Image
>>> im = Image.new("RGB", (200, 100), "red")
>>> sorted(make_edits(im, seed=1))
['crop10', 'crop_random', 'half', 'mirror', 'q30', 'rot180', 'rot270', 'rot90']
>>> Image.open(io.BytesIO(make_edits(im, seed=1)["rot90"])).size
(100, 200)
"""

from __future__ import annotations

import io
import random

from PIL import Image

#: edit name -> what it does (the names tests and the bench report per transform)
EDITS = {
    "half": "resized to half width and height",
    "q30": "re-compressed as JPEG quality 30",
    "mirror": "mirrored left-right",
    "rot90": "rotated 90 degrees counter-clockwise",
    "rot180": "rotated 180 degrees",
    "rot270": "rotated 270 degrees counter-clockwise",
    "crop10": "cropped by 10% on every side",
    "crop_random": "cropped by a random 0-10% on each side",
}


def _jpeg(im: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    im.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def make_edits(image: Image.Image, seed: int = 0) -> dict[str, bytes]:
    """JPEG bytes of every edit in :data:`EDITS` applied to ``image``."""
    rng = random.Random(seed)
    im = image.convert("RGB")
    w, h = im.size
    left, top, right, bottom = (rng.uniform(0, 0.1) for _ in range(4))
    return {
        "half": _jpeg(im.resize((w // 2, h // 2), Image.Resampling.LANCZOS)),
        "q30": _jpeg(im, 30),
        "mirror": _jpeg(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        "rot90": _jpeg(im.transpose(Image.Transpose.ROTATE_90)),
        "rot180": _jpeg(im.transpose(Image.Transpose.ROTATE_180)),
        "rot270": _jpeg(im.transpose(Image.Transpose.ROTATE_270)),
        "crop10": _jpeg(im.crop((round(0.1 * w), round(0.1 * h), round(0.9 * w),
                                 round(0.9 * h)))),
        "crop_random": _jpeg(im.crop((round(left * w), round(top * h),
                                      round(w - right * w), round(h - bottom * h)))),
    }


def pair_scores(groups: list, families: dict[str, str], kinds: dict[str, str]
                ) -> dict[str, float]:
    """Pair recall per edit and pair precision of duplicate ``groups``.

    ``families``: id -> the original's id (originals map to themselves, unrelated
    photos to their own id); ``kinds``: id -> edit name for the edited copies. Recall of
    an edit: share of (original, copy) pairs in one group. Precision: share of the
    pairs inside groups that belong to one family.

    >>> class G: ids = ["o", "c"]
    >>> pair_scores([G()], {"o": "o", "c": "o"}, {"c": "mirror"})
    {'mirror': 1.0, 'precision': 1.0, 'pairs': 1.0}
    """
    group_of = {i: n for n, g in enumerate(groups) for i in g.ids}
    out: dict[str, float] = {}
    for kind in sorted(set(kinds.values())):
        copies = [i for i, k in kinds.items() if k == kind]
        hits = sum(1 for c in copies if c in group_of
                   and group_of.get(families[c]) == group_of[c])
        out[kind] = hits / len(copies)
    good = total = 0
    for g in groups:
        for x in range(len(g.ids)):
            for y in range(x + 1, len(g.ids)):
                total += 1
                good += families.get(g.ids[x]) == families.get(g.ids[y])
    out["precision"] = good / total if total else 1.0
    out["pairs"] = float(total)
    return out
