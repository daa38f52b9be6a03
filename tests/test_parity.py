"""Parity: our Pillow preprocessing + tokenizers tokenization + ONNX Runtime inference
must give the vectors transformers gives (CLIPProcessor + CLIPModel) for the same
random weights, on real photos and real captions, in both folder layouts (Immich:
224 px, bicubic, CLIP normalization; transformers.js: 256 px, bilinear, no
normalization, "!" padding, like Xenova's MobileCLIP exports)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgfind.embedders import ClipPreprocessor, OnnxClipEmbedder, load_embedder
from imgfind.embedders.onnx_clip import preprocessor_from_hf
from imgfind.testing import make_model

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
THRESHOLD = 0.9999


def photo_paths() -> list[Path]:
    """12 Flickr8k + 12 ImageNet photos: landscape, portrait and square shapes."""
    flickr = sorted((DATASETS / "flickr8k-1k" / "images").glob("*.jpg"))
    imagenet = sorted((DATASETS / "imagenet-sample-1000").glob("*.JPEG"))
    paths = flickr[:12] + imagenet[::80][:12]
    if len(paths) < 24:
        pytest.skip(f"needs the photos under {DATASETS}")
    return paths


def captions() -> list[str]:
    """20 real Flickr8k captions, plus one longer than CLIP's 77-token context."""
    path = DATASETS / "flickr8k-1k" / "captions.csv"
    if not path.is_file():
        pytest.skip(f"needs {path}")
    with path.open(newline="", encoding="utf-8") as f:
        rows = [r["caption"] for r in csv.DictReader(f)]
    picked = rows[::250][:20]
    return [*picked, " ".join(rows[:8])]


def _pil_image_processor():
    try:
        from transformers import CLIPImageProcessorPil as ImageProcessor
    except ImportError:  # transformers < 5: the PIL-based processor had the plain name
        from transformers import CLIPImageProcessor as ImageProcessor
    return ImageProcessor


@pytest.fixture(scope="module", params=["immich", "transformers.js"])
def model_dir(request: pytest.FixtureRequest, tiny_model_dir: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Path:
    if request.param == "immich":
        return tiny_model_dir
    # the same folder test_embedders uses: built once per session
    return make_model(tmp_path_factory.getbasetemp() / "tiny-clip-transformers-js",
                      layout="transformers.js")


@pytest.fixture(scope="module")
def reference(model_dir: Path):
    """transformers' CLIPProcessor + CLIPModel, configured from the folder's own files."""
    from transformers import CLIPModel, CLIPProcessor, CLIPTokenizer

    ImageProcessor = _pil_image_processor()
    if (model_dir / "preprocessor_config.json").is_file():  # transformers.js layout
        image_processor = ImageProcessor.from_pretrained(model_dir)
        tokenizer = CLIPTokenizer.from_pretrained(model_dir)
    else:
        cfg = json.loads((model_dir / "visual" / "preprocess_cfg.json").read_text())
        size = cfg["size"][0] if isinstance(cfg["size"], list) else cfg["size"]
        assert cfg["interpolation"] == "bicubic" and cfg["resize_mode"] == "shortest"
        image_processor = ImageProcessor(
            do_resize=True, size={"shortest_edge": size}, resample=Image.Resampling.BICUBIC,
            do_center_crop=True, crop_size={"height": size, "width": size},
            do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
            image_mean=cfg["mean"], image_std=cfg["std"], do_convert_rgb=True)
        tokenizer = CLIPTokenizer.from_pretrained(model_dir / "textual")
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    model = CLIPModel.from_pretrained(model_dir / "reference").eval()
    return processor, model


def _features(out) -> np.ndarray:
    # transformers 5 returns a ModelOutput where 4.x returned the tensor
    t = out if isinstance(out, torch.Tensor) else out.pooler_output
    return torch.nn.functional.normalize(t, dim=-1).numpy()


@pytest.fixture(scope="module")
def clip(model_dir: Path) -> OnnxClipEmbedder:
    emb = load_embedder(model_path=model_dir)
    assert isinstance(emb, OnnxClipEmbedder)
    return emb


def test_image_parity(clip: OnnxClipEmbedder, reference) -> None:
    processor, model = reference
    images = [Image.open(p) for p in photo_paths()]
    shapes = {(im.width > im.height) - (im.width < im.height) for im in images}
    assert shapes >= {-1, 1}, "want both portrait and landscape photos"
    rgb = [im.convert("RGB") for im in images]
    with torch.no_grad():
        pixels = processor(images=rgb, return_tensors="pt")["pixel_values"]
        ref = _features(model.get_image_features(pixel_values=pixels))
    ours = clip.embed_images(images)  # not pre-converted: the embedder converts itself
    cos = np.sum(ours * ref, axis=1)
    assert cos.min() >= THRESHOLD, cos
    # same pixels fed to the ONNX tower directly: isolates the model export
    np.testing.assert_allclose(clip.embed_pixels(pixels.numpy()), ref, atol=1e-5)

    # Pixels match exactly too: a random model forgives subtle preprocessing slips
    # (bilinear for bicubic moves its vectors by less than 1e-4), a real one does not.
    ours_pixels = np.stack([clip.preprocessor()(im) for im in rgb])
    np.testing.assert_allclose(ours_pixels, pixels.numpy(), atol=1e-5)
    pre = clip.preprocessor()
    other = "bicubic" if pre.interpolation == "bilinear" else "bilinear"
    slip = ClipPreprocessor(pre.size, pre.mean, pre.std, other, pre.resize_mode, pre.crop_size,
                            pre.rescale)
    assert np.abs(slip(rgb[0]) - ours_pixels[0]).max() > 0.05
    # ... while a geometric slip (squash instead of crop) fails the vector threshold.
    squash = ClipPreprocessor(pre.size, pre.mean, pre.std, pre.interpolation, "squash",
                              pre.crop_size, pre.rescale)
    off = clip.embed_pixels(np.stack([squash(im) for im in rgb]))
    assert np.sum(off * ref, axis=1).min() < THRESHOLD
    # and the model tells different photos apart, so agreement is not trivial: even the
    # most alike pair of different photos is below the threshold (a mix-up would fail)
    sims = ref @ ref.T
    assert sims[~np.eye(len(ref), dtype=bool)].max() < THRESHOLD


def test_text_parity(clip: OnnxClipEmbedder, reference) -> None:
    processor, model = reference
    texts = captions()
    full = processor.tokenizer(texts[-1])["input_ids"]
    assert len(full) > 77, "the last caption must exceed the context to test truncation"
    assert clip.context_length == 77
    with torch.no_grad():
        enc = processor(text=texts, padding="max_length", max_length=77, truncation=True,
                        return_tensors="pt")
        ref = _features(model.get_text_features(input_ids=enc["input_ids"],
                                                attention_mask=enc["attention_mask"]))
    np.testing.assert_array_equal(clip.tokenize(texts), enc["input_ids"].numpy())
    ours = clip.embed_texts(texts)
    cos = np.sum(ours * ref, axis=1)
    assert cos.min() >= THRESHOLD, cos
    sims = ref @ ref.T
    assert sims[~np.eye(len(ref), dtype=bool)].max() < 0.99


@pytest.mark.parametrize("settings", [
    # CLIP-style: short side to 256, then a smaller 224 crop; bicubic, normalized
    {"size": {"shortest_edge": 256}, "crop_size": {"height": 224, "width": 224},
     "resample": 3, "do_normalize": True},
    # SigLIP-style: both sides to 224 (no crop), bilinear, mean/std 0.5
    {"size": {"height": 224, "width": 224}, "do_center_crop": False, "resample": 2,
     "do_normalize": True, "image_mean": [0.5] * 3, "image_std": [0.5] * 3},
], ids=["shortest-256-crop-224", "squash-224"])
def test_hf_preprocessing_variants_match_transformers(settings: dict, tmp_path: Path) -> None:
    # The same preprocessor_config.json read by us and by transformers: same pixels.
    ImageProcessor = _pil_image_processor()
    reference = ImageProcessor(**settings)
    reference.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    ours = preprocessor_from_hf(saved, tmp_path / "preprocessor_config.json")
    rgb = [Image.open(p).convert("RGB") for p in photo_paths()[::4]]
    want = reference(images=rgb, return_tensors="np")["pixel_values"]
    assert want.shape[1:] == (3, 224, 224)
    np.testing.assert_allclose(np.stack([ours(im) for im in rgb]), want, atol=1e-5)
