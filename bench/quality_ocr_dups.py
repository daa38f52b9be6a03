"""Quality figures that need no model weights: OCR word recall and cost, near-duplicates.

* **OCR**: Flickr photos scaled to 0.2 MP with 1-3 words rendered on each (every font
  ``imgfind.testing.textset.fonts`` finds, 16-48 px, five colours, 0/15/-30 degrees;
  ground truth kept in code), read by the real OCR pass of an OCR collection. Word
  recall overall, for horizontal text >= 24 px (the target, >= 0.9) and per angle and
  size; throughput of the pass (photos/s, wall, decode included) on the same photos
  with and without text, with the CPU seconds per photo and the load beside it.
* **Near-duplicates**: ImageNet photos, each with the 8 edits of
  ``imgfind.testing.editset`` (half size, JPEG q30, mirror, rotations, crops), among
  unrelated Flickr photos, in a ``phash`` collection; ``duplicates()`` at the default
  threshold. Pair recall per edit and pair precision (targets >= 0.95 and >= 0.98).
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from PIL import Image

from .common import DATASETS, flickr_images, table

FLICKR = DATASETS / "flickr8k-1k" / "images"
IMAGENET = DATASETS / "imagenet-sample-1000"


def _jpeg(im: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    im.convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _small(path: Path, pixels: int = 200_000) -> Image.Image:
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    s = (pixels / (rgb.width * rgb.height)) ** 0.5
    return rgb.resize((round(rgb.width * s), round(rgb.height * s)), Image.Resampling.LANCZOS)


def _timed_pass(col: Any) -> dict[str, Any]:
    load0 = os.getloadavg()[0]
    cpu0, t0 = time.process_time(), time.perf_counter()
    report = col.run_ocr()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"photos": report.read, "seconds": round(wall, 2),
            "photos_per_s": round(report.read / wall, 2),
            "cpu_s_per_photo": round(cpu / max(report.read, 1), 4),
            "load_1min_before": round(load0, 2), "errors": len(report.errors)}


def ocr_quality(n_photos: int) -> dict[str, Any]:
    """Word recall and pass throughput on ``n_photos`` 0.2 MP photos (with and without text)."""
    import imgfind
    from imgfind.ocr import default_workers
    from imgfind.testing.textset import fonts, render_words, word_found

    photos = flickr_images(500 + n_photos)[500:]
    font_files = fonts()
    with tempfile.TemporaryDirectory(prefix="imgfind-bench-ocr-") as tmp, \
            imgfind.open(Path(tmp) / "home") as lib:
        plain = lib.create_collection("plain", model="phash", ocr=True)
        signs = lib.create_collection("signs", model="phash", ocr=True)
        truth: dict[str, list[Any]] = {}
        for n, p in enumerate(photos):
            small = _small(p)
            plain.insert(_jpeg(small), id=f"p{n}")
            rendered, words = render_words(small, seed=n, font_files=font_files)
            signs.insert(_jpeg(rendered), id=f"s{n}")
            truth[f"s{n}"] = words
        # one warm-up read so model loading is not counted as throughput
        from imgfind.ocr import shared_engine
        shared_engine(threads=1).read(_small(photos[0]))
        without = _timed_pass(plain)
        with_text = _timed_pass(signs)
        got = {i: (signs.get(i).ocr or {}).get("text", "") for i in truth}
    rows = [(w, word_found(w.text, got[i])) for i, ws in truth.items() for w in ws]
    by: dict[str, list[bool]] = defaultdict(list)
    for w, ok in rows:
        by["all"].append(ok)
        if w.angle == 0 and w.size >= 24:
            by["horizontal >= 24 px"].append(ok)
        by[f"angle {w.angle}"].append(ok)
        by[f"size {'16-20' if w.size <= 20 else '24-32' if w.size <= 32 else '40-48'} px"
           ].append(ok)
        by[f"font {Path(w.font).stem}"].append(ok)
    recall = {k: {"recall": round(sum(v) / len(v), 4), "words": len(v)}
              for k, v in sorted(by.items())}
    return {"photos": len(photos), "fonts": [f.name for f in font_files],
            "workers": default_workers(), "recall": recall,
            "throughput": {"without_text": without, "with_text": with_text}}


def dup_quality(n_originals: int, n_distractors: int) -> dict[str, Any]:
    """Pair recall per edit and precision of ``duplicates()`` in a phash collection."""
    import imgfind
    from imgfind.testing.editset import make_edits, pair_scores

    originals = sorted(IMAGENET.glob("*.JPEG"))[100:100 + n_originals]
    distractors = flickr_images(700 + n_distractors)[700:]
    families: dict[str, str] = {}
    kinds: dict[str, str] = {}
    entries: list[dict[str, Any]] = []
    for n, p in enumerate(originals):
        entries.append({"image": p.read_bytes(), "id": f"o{n}"})
        families[f"o{n}"] = f"o{n}"
        with Image.open(p) as im:
            for kind, data in make_edits(im, seed=n).items():
                entries.append({"image": data, "id": f"o{n}-{kind}"})
                families[f"o{n}-{kind}"], kinds[f"o{n}-{kind}"] = f"o{n}", kind
    for n, p in enumerate(distractors):
        entries.append({"image": p.read_bytes(), "id": f"x{n}"})
        families[f"x{n}"] = f"x{n}"
    with tempfile.TemporaryDirectory(prefix="imgfind-bench-dups-") as tmp, \
            imgfind.open(Path(tmp) / "home") as lib:
        col = lib.create_collection("edits", model="phash")
        for i in range(0, len(entries), 64):
            col.insert_batch(entries[i:i + 64])
        t0 = time.perf_counter()
        groups = col.duplicates()
        seconds = time.perf_counter() - t0
    scores = pair_scores(groups, families, kinds)
    named = right = 0
    want = {"mirror": "mirrored", "rot90": "rotated 90", "rot180": "rotated 180",
            "rot270": "rotated 270", "q30": "re-encoded", "half": "resized"}
    for g in groups:
        for member, edit in g.edits.items():
            if kinds.get(member) in want:
                named += 1
                right += edit == want[kinds[member]]
    return {"originals": len(originals), "copies": len(kinds), "distractors": len(distractors),
            "items": len(entries), "groups": len(groups), "duplicates_seconds": round(seconds, 2),
            "recall": {k: v for k, v in scores.items() if k not in ("precision", "pairs")},
            "precision": scores["precision"], "pairs_in_groups": int(scores["pairs"]),
            "edit_named_right": round(right / named, 4) if named else None}


def run_parts(quick: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Both measurements, as (figures, tables) for the quality suite."""
    o = ocr_quality(24 if quick else 48)
    d = dup_quality(20 if quick else 40, 40 if quick else 80)
    rec = o["recall"]
    ocr_rows = [[k, v["words"], v["recall"]] for k, v in rec.items()]
    t = o["throughput"]
    tables = [
        table("OCR word recall (words rendered on real 0.2 MP photos)",
              ["words", "n", "recall"], ocr_rows,
              note="target: >= 0.9 for horizontal text >= 24 px; a word counts when it "
                   "appears in the OCR text ignoring case, spaces and punctuation"),
        table("OCR pass throughput on 0.2 MP photos",
              ["photos", "n", "photos/s (wall)", "CPU s per photo", "1-min load before"],
              [["without text", t["without_text"]["photos"], t["without_text"]["photos_per_s"],
                t["without_text"]["cpu_s_per_photo"], t["without_text"]["load_1min_before"]],
               ["with text", t["with_text"]["photos"], t["with_text"]["photos_per_s"],
                t["with_text"]["cpu_s_per_photo"], t["with_text"]["load_1min_before"]]],
              note=f"target >= 10 photos/s; {o['workers']} OCR threads; a load above the "
                   "core count means other processes shared the CPUs"),
        table("Near-duplicates at the default threshold (phash collection)",
              ["edit", "pair recall"],
              [*[[k, v] for k, v in d["recall"].items()],
               ["precision (pairs in groups)", d["precision"]],
               ["edit named right", d["edit_named_right"]]],
              note=f"{d['originals']} ImageNet photos x 8 edits among {d['distractors']} "
                   f"Flickr photos; duplicates() took {d['duplicates_seconds']} s for "
                   f"{d['items']} items; targets: recall >= 0.95 per edit, precision >= 0.98"),
    ]
    return {"ocr": o, "near_duplicates": d}, tables
