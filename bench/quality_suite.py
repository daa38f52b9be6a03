"""Suite ``quality``: retrieval quality of a model folder, and ANN recall of the store.

Retrieval metrics (need real weights; skipped with a message on the random test
models unless ``allow_random``):

* Flickr8k-1k: text-to-image and image-to-text Recall@1/5/10 (5,000 captions);
* ImageNet sample: text-to-image Recall@1/5 and MRR with "a photo of a {class_name}";
* any ``<class>/<image>`` folder: image-to-image mAP@10 (the query itself excluded).

Always run (bench/quality_ocr_dups.py): OCR word recall and OCR pass throughput on
words rendered onto real 0.2 MP photos; near-duplicate pair recall per edit and pair
precision of ``duplicates()`` on edited real photos.

Always run: ANN recall@10 of imgfind's IVF index against exact brute force on
the stored vectors of a real indexed collection (Flickr photos indexed with the
model, then the store reopened with a low ``flat_threshold`` so its IVF path is used).

Example::

    res = run(quick=True, model_path=Path("models/ViT-B-32__openai"))
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .common import DATASETS, MODEL_STAMP, ensure_model, flickr_images, new_result, table

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def _embed_files(emb: Any, files: list[Path], batch: int = 32) -> np.ndarray:
    out = []
    for i in range(0, len(files), batch):
        ims = []
        for f in files[i:i + batch]:
            with Image.open(f) as im:
                ims.append(im.convert("RGB"))
        out.append(emb.embed_images(ims))
    return np.concatenate(out)


def _recall(ranks: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    """``ranks``: 0-based rank of the first right answer per query."""
    return {f"R@{k}": float((ranks < k).mean()) for k in ks}


def flickr(emb: Any) -> dict[str, Any]:
    """Text-to-image and image-to-text Recall@1/5/10 on Flickr8k-1k."""
    root = DATASETS / "flickr8k-1k"
    with open(root / "captions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    names = sorted({r["image"] for r in rows})
    index = {n: i for i, n in enumerate(names)}
    img = _embed_files(emb, [root / "images" / n for n in names])
    txt = np.concatenate([emb.embed_texts([r["caption"] for r in rows[i:i + 256]])
                          for i in range(0, len(rows), 256)])
    owner = np.array([index[r["image"]] for r in rows])
    sims = txt @ img.T                                   # (captions, images)
    t2i = (sims > sims[np.arange(len(rows)), owner][:, None]).sum(1)
    order = np.argsort(-sims.T, axis=1)                  # images -> captions, best first
    hit = owner[order] == np.arange(len(names))[:, None]
    i2t = hit.argmax(1)
    return {"images": len(names), "captions": len(rows),
            "text_to_image": _recall(t2i, (1, 5, 10)), "image_to_text": _recall(i2t, (1, 5, 10))}


def imagenet(emb: Any) -> dict[str, Any]:
    """Text-to-image Recall@1/5 and MRR with one photo per ImageNet class."""
    root = DATASETS / "imagenet-sample-1000"
    with open(root / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    img = _embed_files(emb, [root / r["path"] for r in rows])
    prompts = [f"a photo of a {r['class_name'].replace('_', ' ')}" for r in rows]
    txt = np.concatenate([emb.embed_texts(prompts[i:i + 256]) for i in range(0, len(prompts),
                                                                              256)])
    sims = txt @ img.T
    ranks = (sims > np.diag(sims)[:, None]).sum(1)
    return {"classes": len(rows), **_recall(ranks, (1, 5)), "MRR": float((1 / (ranks + 1)).mean())}


def class_folder_map(emb: Any, folder: Path, k: int = 10) -> dict[str, Any]:
    """Image-to-image mAP@k over a ``<class>/<image>`` folder, each image a query."""
    files, labels = [], []
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in IMAGE_EXT:
                files.append(f)
                labels.append(d.name)
    if len(set(labels)) < 2:
        raise SystemExit(f"{folder} needs at least two class sub-folders of images")
    lab = np.array(labels)
    v = _embed_files(emb, files)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :k]
    rel = lab[top] == lab[:, None]
    n_rel = np.minimum((lab[None, :] == lab[:, None]).sum(1) - 1, k)
    prec = np.cumsum(rel, axis=1) / np.arange(1, k + 1)
    ap = np.where(n_rel > 0, (prec * rel).sum(1) / np.maximum(n_rel, 1), 0.0)
    return {"images": len(files), "classes": len(set(labels)), f"mAP@{k}": float(ap.mean())}


def ann_recall(model: Path, n: int, queries: int = 100, k: int = 10) -> dict[str, Any]:
    """Index ``n`` Flickr photos, force the IVF index, compare its top-k with exact search."""
    import imgfind
    from imgfind.stores import StoreOptions, open_backend

    with tempfile.TemporaryDirectory(prefix="imgfind-bench-ann-") as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        for f in flickr_images(n):
            shutil.copyfile(f, photos / f.name)
        home = Path(tmp) / "home"
        with imgfind.open(home) as lib:
            rep = lib.create_collection("ann", model_path=model).add(photos, show_progress=False)
        backend = open_backend(home, StoreOptions(flat_threshold=min(256, n // 2)))
        store = backend.open("ann")
        ids, vecs = [], []
        for i, v in store.all_vectors():
            ids += i
            vecs.append(v)
        x = np.concatenate(vecs)
        rng = np.random.default_rng(0)
        # queries near, not on, stored vectors: a new photo of something already indexed
        qi = rng.choice(len(x), size=min(queries, len(x)), replace=False)
        q = x[qi] + rng.standard_normal((len(qi), x.shape[1])).astype(np.float32) * 0.02
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        exact = np.argsort(-(q @ x.T), axis=1)[:, :k]
        got = store.search(q, k)
        index_info = store.index_info()
        store.close()
        backend.close()
    pos = {id_: j for j, id_ in enumerate(ids)}
    hits = sum(len({pos[i] for i, _s in g} & set(e.tolist())) for g, e in zip(got, exact,
                                                                              strict=True))
    return {"items": len(ids), "indexed": rep.indexed, "queries": len(qi),
            f"recall@{k}": hits / (k * len(qi)), "index": index_info}


def run(quick: bool, model_path: Path | None = None, class_folder: Path | None = None,
        allow_random: bool = False) -> dict[str, Any]:
    from imgfind.embedders import load_embedder

    from .quality_ocr_dups import run_parts

    if class_folder and not Path(class_folder).is_dir():
        raise SystemExit(f"--class-folder {class_folder} is not a folder")
    model = Path(model_path) if model_path else ensure_model("vit-b-32")
    random_weights = (model / MODEL_STAMP).exists()
    n_ann = 400 if quick else 1000  # >= 312 so the IVF trains 8 lists
    res = new_result("quality", quick, {"model_path": str(model),
                                        "random_weights": random_weights,
                                        "class_folder": str(class_folder) if class_folder
                                        else None, "ann_photos": n_ann})
    fig: dict[str, Any] = {}
    rows: list[list[Any]] = []
    if random_weights and not allow_random:
        msg = (f"skipped: {model} is a random-weight test model ({MODEL_STAMP}); its retrieval "
               "scores would be chance. Pass --model-path with real CLIP weights "
               "(or --allow-random to exercise the code).")
        fig["retrieval"] = {"skipped": msg}
        res["notes"].append(msg)
    else:
        emb = load_embedder(model_path=model)
        fl, im = flickr(emb), imagenet(emb)
        fig["retrieval"] = {"flickr8k": fl, "imagenet": im}
        rows += [[f"Flickr8k-1k text->image {m}", v] for m, v in fl["text_to_image"].items()]
        rows += [[f"Flickr8k-1k image->text {m}", v] for m, v in fl["image_to_text"].items()]
        rows += [[f"ImageNet-1k sample text->image {m}", im[m]] for m in ("R@1", "R@5", "MRR")]
        if class_folder:
            cf = class_folder_map(emb, Path(class_folder))
            fig["retrieval"]["class_folder"] = cf
            rows.append([f"{class_folder} image->image mAP@10", cf["mAP@10"]])
    if rows:
        res["tables"].append(table(f"Retrieval quality of {model.name}", ["metric", "value"],
                                   rows))
    ann = ann_recall(model, n_ann)
    fig["ann"] = ann
    fig_ocr_dups, tables = run_parts(quick)
    fig.update(fig_ocr_dups)
    res["tables"] += tables
    res["figures"] = fig
    res["tables"].append(table("ANN recall of the store's IVF index on real embeddings", [
        "photos indexed", "queries", "recall@10 vs exact", "index"],
        [[ann["items"], ann["queries"], ann["recall@10"],
          ", ".join(f"{k}={v}" for k, v in ann["index"].items()) if isinstance(
              ann["index"], dict) else str(ann["index"])]],
        note="store reopened with StoreOptions(flat_threshold=...) below the collection "
             "size so search goes through IVF-SQ8 + exact re-rank"))
    return res
