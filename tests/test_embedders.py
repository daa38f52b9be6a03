"""Embedders: loading (folder, env var, HF cache, offline errors) in both folder layouts
(Immich and transformers.js), shapes, batching, picklable preprocessing, pHash near/far
behaviour, presets."""

from __future__ import annotations

import io
import itertools
import json
import multiprocessing
import os
import pickle
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgfind import embedders
from imgfind.embedders import (
    DEFAULT_MODEL,
    ClipPreprocessor,
    OnnxClipEmbedder,
    PHashEmbedder,
    list_models,
    load_embedder,
    quantize,
)
from imgfind.embedders.layouts import IMMICH, TRANSFORMERS_JS
from imgfind.embedders.onnx_clip import preprocessor_from_hf
from imgfind.embedders.phash import hamming
from imgfind.embedders.text_cache import TextVectorCache
from imgfind.errors import InvalidInput, ModelUnavailable
from imgfind.testing import __main__ as testing_cli
from imgfind.testing import make_model

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SRC = Path(embedders.__file__).resolve().parents[2]


def photos(n: int) -> list[Image.Image]:
    """``n`` real photos, half Flickr8k, half ImageNet (varied sizes and aspect ratios)."""
    paths = (sorted((DATASETS / "flickr8k-1k" / "images").glob("*.jpg"))[: n - n // 2]
             + sorted((DATASETS / "imagenet-sample-1000").glob("*.JPEG"))[: n // 2])
    if len(paths) < n:
        pytest.skip(f"needs {n} photos under {DATASETS}")
    return [Image.open(p).convert("RGB") for p in paths]


@pytest.fixture(scope="module")
def clip(tiny_model_dir: Path) -> OnnxClipEmbedder:
    emb = load_embedder(model_path=tiny_model_dir, threads=1)
    assert isinstance(emb, OnnxClipEmbedder)
    emb.text_cache = TextVectorCache(0)  # these tests compare runs of the tower itself
    return emb


@pytest.fixture(scope="module")
def tjs_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model in the transformers.js layout (shared with test_parity: same folder)."""
    return make_model(tmp_path_factory.getbasetemp() / "tiny-clip-transformers-js",
                      layout="transformers.js")


@pytest.fixture(scope="module")
def tjs(tjs_model_dir: Path) -> OnnxClipEmbedder:
    emb = load_embedder(model_path=tjs_model_dir, threads=1)
    assert isinstance(emb, OnnxClipEmbedder)
    emb.text_cache = TextVectorCache(0)
    return emb


def run_python(code: str, env: dict[str, str], timeout: float = 120) -> str:
    """Run ``code`` in a fresh interpreter (huggingface_hub reads its env vars on import)."""
    full = {**os.environ, **env,
            "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def fake_hf_cache(hf_home: Path, repo: str, model_dir: Path) -> None:
    """Put ``model_dir`` into a Hugging Face cache as ``repo``, the way a download leaves it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = hf_home / "hub" / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    for entry in model_dir.iterdir():
        if entry.name != "reference" and not entry.name.startswith("."):
            (snap / entry.name).symlink_to(entry)


# -- loading -------------------------------------------------------------------------------

def test_load_from_folder(clip: OnnxClipEmbedder, tiny_model_dir: Path) -> None:
    assert clip.name == "imgfind-test-tiny"  # from config.json's "name"
    assert (clip.dim, clip.image_size, clip.context_length) == (64, 224, 77)
    assert clip.supports_text
    assert clip.device == "cpu" and "CPUExecutionProvider" in clip.providers
    assert clip.threads == 1
    assert isinstance(clip, embedders.Embedder)
    # an explicit model name wins over the folder's
    assert load_embedder("my-clip", model_path=tiny_model_dir).name == "my-clip"


def test_name_from_folder_when_config_names_none(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "My-CLIP"
    shutil.copytree(tiny_model_dir, folder, ignore=shutil.ignore_patterns("reference"))
    config = json.loads((folder / "config.json").read_text())
    del config["name"]
    (folder / "config.json").write_text(json.dumps(config))
    assert load_embedder(model_path=folder).name == "My-CLIP"


def test_env_var_model_path(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGFIND_MODEL_PATH", str(tiny_model_dir))
    assert load_embedder().name == "imgfind-test-tiny"
    assert load_embedder("imgfind-test-tiny").dim == 64
    assert load_embedder("phash").name == "phash"


def test_missing_files_are_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, folder, ignore=shutil.ignore_patterns("reference"))
    (folder / "visual" / "preprocess_cfg.json").unlink()
    with pytest.raises(ModelUnavailable, match="preprocess_cfg.json"):
        load_embedder(model_path=folder)
    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_embedder(model_path=tmp_path / "nowhere")


def test_preset_loads_from_hf_cache_offline(tiny_model_dir: Path, tmp_path: Path) -> None:
    # The same code path as a real download: name -> repo -> HF cache snapshot -> embedder.
    fake_hf_cache(tmp_path / "hf", "immich-app/ViT-B-32__openai", tiny_model_dir)
    out = run_python(
        "import json\n"
        "from imgfind.embedders import load_embedder, list_models\n"
        "e = load_embedder('ViT-B-32__openai', threads=1)\n"
        "v = e.embed_texts(['a dog'])\n"
        "print(json.dumps({'name': e.name, 'dim': e.dim, 'shape': list(v.shape),\n"
        "                  'cached': {m.name: m.cached for m in list_models()}}))\n",
        {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "IMGFIND_MODEL_PATH": ""})
    got = json.loads(out.strip().splitlines()[-1])
    assert got["name"] == "ViT-B-32__openai" and got["dim"] == 64 and got["shape"] == [1, 64]
    assert got["cached"]["ViT-B-32__openai"] is True
    assert not any(v for k, v in got["cached"].items() if k != "ViT-B-32__openai")


def test_transformers_js_preset_loads_from_hf_cache_offline(tjs_model_dir: Path,
                                                          tmp_path: Path) -> None:
    # The default model is a transformers.js-layout repo: same path, other files.
    fake_hf_cache(tmp_path / "hf", "Xenova/mobileclip_s2", tjs_model_dir)
    out = run_python(
        "import json\n"
        "from imgfind.embedders import load_embedder, list_models\n"
        "e = load_embedder(threads=1)\n"
        "v = e.embed_texts(['a dog'])\n"
        "print(json.dumps({'name': e.name, 'layout': e.layout.name, 'shape': list(v.shape),\n"
        "                  'cached': [m.name for m in list_models() if m.cached]}))\n",
        {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "IMGFIND_MODEL_PATH": ""})
    got = json.loads(out.strip().splitlines()[-1])
    assert got == {"name": "MobileCLIP-S2__datacompdr", "layout": "transformers.js",
                   "shape": [1, 64], "cached": ["MobileCLIP-S2__datacompdr"]}

    # the downloaded folder passed as a path records the same name as the preset
    nameless = tmp_path / "nameless"
    shutil.copytree(tjs_model_dir, nameless, ignore=shutil.ignore_patterns("reference"))
    config = json.loads((nameless / "config.json").read_text())
    del config["name"]
    (nameless / "config.json").write_text(json.dumps(config))
    fake_hf_cache(tmp_path / "hf2", "Xenova/mobileclip_s2", nameless)
    snapshot = next((tmp_path / "hf2").glob("hub/models--Xenova--mobileclip_s2/snapshots/*"))
    assert embedders.folder_name(snapshot) == "MobileCLIP-S2__datacompdr"
    fake_hf_cache(tmp_path / "hf3", "someone/clip-onnx", nameless)
    snapshot = next((tmp_path / "hf3").glob("hub/models--someone--clip-onnx/snapshots/*"))
    assert embedders.folder_name(snapshot) == "someone/clip-onnx"


OFFLINE_CODE = (
    "from imgfind.embedders import load_embedder\n"
    "from imgfind.errors import ModelUnavailable\n"
    "try:\n"
    "    load_embedder('ViT-L-14__openai')\n"
    "except ModelUnavailable as e:\n"
    "    print('ERROR', e.code, e)\n"
)


def _check_offline_message(out: str) -> None:
    assert out.startswith("ERROR model_unavailable"), out
    assert "ViT-L-14__openai" in out
    assert "--model-path DIR" in out and "IMGFIND_MODEL_PATH" in out


def test_offline_mode_error(tmp_path: Path) -> None:
    out = run_python(OFFLINE_CODE, {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1",
                                    "IMGFIND_MODEL_PATH": ""})
    _check_offline_message(out)
    assert "HF_HUB_OFFLINE" in out


def test_unreachable_hub_error(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = run_python(OFFLINE_CODE, {
        "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0", "IMGFIND_MODEL_PATH": "",
        "HF_ENDPOINT": f"http://127.0.0.1:{port}", "HF_HUB_ETAG_TIMEOUT": "5",
        "HF_HUB_DOWNLOAD_TIMEOUT": "5"})
    _check_offline_message(out)
    assert "HF_HUB_OFFLINE" not in out


def test_list_models() -> None:
    models = {m.name: m for m in list_models()}
    assert DEFAULT_MODEL == "MobileCLIP-S2__datacompdr" and DEFAULT_MODEL in models
    for name in ("ViT-B-32__openai", "ViT-B-16__openai", "ViT-L-14__openai",
                 "ViT-B-16-SigLIP__webli", "MobileCLIP-S0__datacompdr", "MobileCLIP-B__datacompdr"):
        assert name in models
    for m in models.values():
        if m.layout == IMMICH.name:
            assert m.repo == f"immich-app/{m.name}" and m.image_gflops
        else:
            assert m.layout == TRANSFORMERS_JS.name and m.repo.startswith("Xenova/mobileclip_")
            assert m.image_latency_ms and m.image_gflops is None  # Apple publishes no FLOPs
        assert 50 < m.imagenet_top1 < 90 and 50 < m.avg38 < 75 and m.dim in (512, 768, 1152)
        assert m.params_m == pytest.approx(m.image_params_m + m.text_params_m, abs=0.1)
        assert isinstance(m.cached, bool)
    listed = list_models()
    # small/fast to large/precise within each publisher's cost figure
    flops = [m.image_gflops for m in listed if m.image_gflops is not None]
    latency = [m.image_latency_ms for m in listed if m.image_latency_ms is not None]
    assert flops == sorted(flops) and latency == sorted(latency)
    assert listed[-1].imagenet_top1 == max(m.imagenet_top1 for m in listed)
    # the README's justification of the default: nothing with an image tower as small
    # or smaller scores higher, and it beats the previous default on the 38-dataset average
    default = models[DEFAULT_MODEL]
    assert all(m.imagenet_top1 <= default.imagenet_top1 for m in listed
               if m.image_params_m <= default.image_params_m)
    assert default.avg38 > models["ViT-B-16-SigLIP__webli"].avg38


def test_resolve_names() -> None:
    assert embedders.resolve("ViT-B-32__openai") == ("ViT-B-32__openai",
                                                     "immich-app/ViT-B-32__openai")
    assert embedders.resolve("immich-app/RN50__openai") == ("RN50__openai",
                                                            "immich-app/RN50__openai")
    assert embedders.resolve("me/clip") == ("me/clip", "me/clip")
    assert embedders.resolve("Xenova/mobileclip_s0") == ("MobileCLIP-S0__datacompdr",
                                                         "Xenova/mobileclip_s0")
    for bad in (" ", "", "../../x", "caf\u00e9", "a/b/c", "x" * 200):
        with pytest.raises(InvalidInput):
            embedders.resolve(bad)


# -- CLIP embedding ------------------------------------------------------------------------

def test_shapes_and_normalization(clip: OnnxClipEmbedder) -> None:
    images = photos(4)
    v = clip.embed_images(images)
    t = clip.embed_texts(["a dog running on the beach", "a red car", "two children"])
    for arr, n in ((v, 4), (t, 3)):
        assert arr.shape == (n, 64) and arr.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-5)
    assert clip.embed_images([]).shape == (0, 64)
    assert clip.embed_texts([]).shape == (0, 64)


def test_batch_equals_single(clip: OnnxClipEmbedder, tiny_model_dir: Path) -> None:
    images = photos(5)
    batch = clip.embed_images(images)
    single = np.concatenate([clip.embed_images([im]) for im in images])
    np.testing.assert_allclose(batch, single, atol=1e-5)
    # batches split into chunks smaller than the input give the same vectors
    chunked = OnnxClipEmbedder(tiny_model_dir, threads=1, batch_size=2)
    np.testing.assert_allclose(chunked.embed_images(images), batch, atol=1e-5)
    texts = ["a dog", "a cat on a sofa", "people at a market"]
    np.testing.assert_allclose(clip.embed_texts(texts),
                               np.concatenate([clip.embed_texts([t]) for t in texts]), atol=1e-5)


def test_fixed_batch_export(clip: OnnxClipEmbedder, tiny_model_dir: Path,
                            tmp_path: Path) -> None:
    # Immich's hub exports have a batch axis fixed at 1; batches must be fed one by one.
    onnx = pytest.importorskip("onnx")
    folder = tmp_path / "fixed"
    shutil.copytree(tiny_model_dir, folder, ignore=shutil.ignore_patterns("reference"))
    for tower in ("visual", "textual"):
        path = folder / tower / "model.onnx"
        model = onnx.load(str(path))
        for value in (*model.graph.input, *model.graph.output):
            value.type.tensor_type.shape.dim[0].dim_value = 1
        onnx.save(model, str(path))
    fixed = OnnxClipEmbedder(folder, threads=1)
    assert fixed._visual.fixed_batch == 1
    images, texts = photos(3), ["a dog", "a cat", "a bird"]
    np.testing.assert_allclose(fixed.embed_images(images), clip.embed_images(images), atol=1e-5)
    np.testing.assert_allclose(fixed.embed_texts(texts), clip.embed_texts(texts), atol=1e-5)


def test_different_inputs_differ(clip: OnnxClipEmbedder) -> None:
    v = clip.embed_images(photos(6))
    sims = v @ v.T
    assert sims[~np.eye(6, dtype=bool)].max() < 0.999
    t = clip.embed_texts(["a dog running on the beach", "a bowl of soup on a table"])
    assert float(t[0] @ t[1]) < 0.99


def test_bad_inputs(clip: OnnxClipEmbedder) -> None:
    with pytest.raises(InvalidInput, match="shape"):
        clip.embed_pixels(np.zeros((1, 3, 32, 32), np.float32))
    with pytest.raises(InvalidInput):
        clip.embed_texts("a single string")


def test_tokenizer_pads_and_truncates(clip: OnnxClipEmbedder) -> None:
    ids = clip.tokenize(["a dog", "dog " * 200])
    assert ids.shape == (2, 77)
    # <|startoftext|> a dog <|endoftext|>, then padding with <|endoftext|>
    assert ids[0, :4].tolist() == [49406, 320, 1929, 49407] and (ids[0, 4:] == 49407).all()
    assert ids[1, 0] == 49406 and ids[1, -1] == 49407 and (ids[1, 1:-1] == 1929).all()


def test_preprocessor_pickles_and_runs_in_worker_processes(clip: OnnxClipEmbedder) -> None:
    pre = clip.preprocessor()
    copy = pickle.loads(pickle.dumps(pre))
    assert isinstance(copy, ClipPreprocessor)
    images = photos(4)
    here = [pre(im) for im in images]
    assert here[0].shape == (3, 224, 224) and here[0].dtype == np.float32
    np.testing.assert_array_equal(copy(images[0]), here[0])
    # spawn: nothing is inherited, everything the worker gets went through pickle
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        there = pool.map(pre, images)
    for a, b in zip(here, there, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(clip.embed_pixels(np.stack(there)), clip.embed_images(images),
                               atol=1e-6)


def test_two_step_preprocessing_equals_one_step(clip: OnnxClipEmbedder) -> None:
    pre = clip.preprocessor()
    images = photos(3)
    compact = [pre.pixels(im) for im in images]
    assert compact[0].dtype == np.uint8 and compact[0].shape == (224, 224, 3)
    batch = pre.finish(np.stack(compact))
    assert batch.dtype == np.float32 and batch.shape == (3, 3, 224, 224)
    for im, row in zip(images, batch, strict=True):
        np.testing.assert_array_equal(pre(im), row)
    # not a no-op: normalization moved the values off the 0..255 scale
    assert batch.min() < 0 < batch.max() < 5


def test_pixels_and_preview(clip: OnnxClipEmbedder) -> None:
    """The preview is the model's own resize when it shrank the photo and is big enough for
    the thumbnail; the pixels are those of pixels() either way."""
    pre = clip.preprocessor()
    for im in photos(4):
        px, preview = pre.pixels_and_preview(im, 256)
        np.testing.assert_array_equal(px, pre.pixels(im))
        np.testing.assert_array_equal(px, np.asarray(pre.resize(im)))
        assert min(preview.size) == 224 and max(preview.size) >= 256
        assert preview.size != im.size and preview.mode == "RGB"
    photo = photos(1)[0]
    assert pre.pixels_and_preview(photo, 400)[1] is photo  # too small for a 400 px thumbnail
    small = Image.new("RGB", (100, 80), "red")  # enlarged for the model: never a preview
    px, preview = pre.pixels_and_preview(small, 64)
    assert preview is small and px.shape == (224, 224, 3)
    grey = photo.convert("L")
    np.testing.assert_array_equal(pre.pixels_and_preview(grey, 256)[0], pre.pixels(grey))
    assert pre.pixels_and_preview(grey, 256)[1].mode == "RGB"


def test_squash_resize_mode() -> None:
    pre = ClipPreprocessor(64, [0.5] * 3, [0.5] * 3, "bilinear", "squash")
    left_red = Image.new("RGB", (300, 100), "blue")
    left_red.paste((255, 0, 0), (0, 0, 100, 100))
    out = pre(left_red)
    assert out.shape == (3, 64, 64)
    # squash keeps the whole width: the red third is still there (a center crop would cut it)
    assert out[0, :, :10].mean() > 0.9 and out[2, :, :10].mean() < -0.9
    cropped = ClipPreprocessor(64, [0.5] * 3, [0.5] * 3)(left_red)
    assert cropped[0, :, :10].mean() < -0.9


def test_quantize(clip: OnnxClipEmbedder, tiny_model_dir: Path, tmp_path: Path) -> None:
    out = quantize(tiny_model_dir, tmp_path / "int8", force=True)
    q = load_embedder(model_path=out, threads=1)
    speed = json.loads((out / "config.json").read_text())["int8"]
    assert speed["fp32_s"] > 0 and speed["int8_s"] > 0 and speed["cpu"]
    assert q.name == "imgfind-test-tiny-int8" and q.dim == clip.dim
    images = photos(4)
    sims = np.sum(q.embed_images(images) * clip.embed_images(images), axis=1)
    assert sims.min() > 0.95
    assert (out / "visual" / "model.onnx").stat().st_size < \
        (tiny_model_dir / "visual" / "model.onnx").stat().st_size
    with pytest.raises(InvalidInput, match="not empty"):
        quantize(tiny_model_dir, out, force=True)


def test_quantize_refuses_where_int8_does_not_pay(tiny_model_dir: Path, tmp_path: Path) -> None:
    from imgfind.errors import NotSupported

    # no CPU runs int8 1000x faster: the gate must refuse, say why, and leave nothing behind
    with pytest.raises(NotSupported, match=r"int8 does not pay on this CPU .*x the fp32 speed"):
        quantize(tiny_model_dir, tmp_path / "int8", min_speedup=1000.0)
    assert not (tmp_path / "int8").exists()


# -- transformers.js layout -----------------------------------------------------------------

def test_transformers_js_layout_loads(tjs: OnnxClipEmbedder, tjs_model_dir: Path,
                                      tiny_model_dir: Path) -> None:
    assert embedders.detect_layout(tjs_model_dir) is TRANSFORMERS_JS
    assert embedders.detect_layout(tiny_model_dir) is IMMICH
    assert tjs.layout is TRANSFORMERS_JS and isinstance(tjs, embedders.Embedder)
    assert tjs.name == "imgfind-test-tiny-transformers-js"  # config.json's "name"
    assert (tjs.dim, tjs.image_size, tjs.context_length) == (64, 256, 77)
    pre = tjs.preprocessor()
    # MobileCLIP's settings, read from preprocessor_config.json: bilinear, no normalization
    # (the file lists image_mean/std, but do_normalize is false)
    assert (pre.size, pre.crop_size, pre.interpolation, pre.resize_mode) == \
        (256, 256, "bilinear", "shortest")
    assert (pre.mean, pre.std) == ([0.0] * 3, [1.0] * 3)
    # the tower's first output is last_hidden_state; the embedding is picked by name
    assert tjs._visual.session.get_outputs()[0].name == "last_hidden_state"
    assert tjs._visual.output.name == "image_embeds"
    images = photos(4)
    v = tjs.embed_images(images)
    t = tjs.embed_texts(["a dog running on the beach", "a red car"])
    assert tjs._text is not None and tjs._text.output.name == "text_embeds"
    assert [i.name for i in tjs._text.inputs] == ["input_ids", "attention_mask"]
    for arr, n in ((v, 4), (t, 2)):
        assert arr.shape == (n, 64) and arr.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-5)
    # pixels are in [0, 1]: rescaled, not normalized
    x = pre(images[0])
    assert x.shape == (3, 256, 256) and 0.0 <= x.min() and x.max() <= 1.0


def test_transformers_js_batches_and_padding(tjs: OnnxClipEmbedder,
                                             tjs_model_dir: Path) -> None:
    images = photos(5)
    batch = tjs.embed_images(images)
    np.testing.assert_allclose(batch, np.concatenate([tjs.embed_images([im]) for im in images]),
                               atol=1e-5)
    chunked = OnnxClipEmbedder(tjs_model_dir, threads=1, batch_size=2)
    np.testing.assert_allclose(chunked.embed_images(images), batch, atol=1e-5)
    texts = ["a dog", "a cat on a sofa", "people at a market " * 30]
    np.testing.assert_allclose(tjs.embed_texts(texts),
                               np.concatenate([tjs.embed_texts([t]) for t in texts]), atol=1e-5)
    ids = tjs.tokenize(texts)
    # padded with "!" (id 0), the pad token of Xenova's MobileCLIP tokenizer config
    assert ids.shape == (3, 77) and ids[0, :4].tolist() == [49406, 320, 1929, 49407]
    assert (ids[0, 4:] == 0).all() and ids[2, -1] == 49407
    # unnormalized [0, 1] pixels make a random model's vectors close, but never equal
    sims = (batch @ batch.T)[~np.eye(5, dtype=bool)]
    assert sims.max() < 0.9999 and sims.min() < 0.995


def test_padding_is_trimmed_only_when_exact(tjs: OnnxClipEmbedder, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["a dog", "a man riding a bicycle down a busy street at night"]
    tjs.embed_texts(["the first query runs at full length and decides nothing"])
    tjs.embed_texts(texts)  # the second query starts the proof beside it
    assert tjs._deciding is not None
    tjs._deciding.join()
    trimmed = tjs.embed_texts(texts)
    assert tjs._trim  # causal CLIP tower with a dynamic sequence axis
    monkeypatch.setattr(tjs, "_trim", False)
    np.testing.assert_allclose(trimmed, tjs.embed_texts(texts), atol=1e-5)
    # a tower whose output depends on the padding fails the probe and is never trimmed
    monkeypatch.setenv("IMGFIND_CACHE", str(tmp_path))  # keep that verdict out of the others'
    monkeypatch.setattr(tjs, "_run_text",
                        lambda ids, mask, tower=None: np.eye(len(ids), tjs.dim,
                                                             ids.shape[1] % tjs.dim,
                                                             dtype=np.float32))
    assert not tjs._trimming_is_exact()


def test_dim_from_a_model_run_when_nothing_states_it(tjs: OnnxClipEmbedder,
                                                     tjs_model_dir: Path,
                                                     tmp_path: Path) -> None:
    # Xenova's MobileCLIP config.json is {"model_type": "clip"}: no dim; an export with
    # a symbolic output width leaves only running the tower once to learn it.
    onnx = pytest.importorskip("onnx")
    folder = tmp_path / "symbolic"
    shutil.copytree(tjs_model_dir, folder, ignore=shutil.ignore_patterns("reference"))
    path = folder / "onnx" / "vision_model.onnx"
    model = onnx.load(str(path))
    graph = model.graph
    # ONNX Runtime infers widths it can compute, so hide it behind a runtime-shaped Reshape
    for node in graph.node:
        node.output[:] = ["raw" if x == "image_embeds" else x for x in node.output]
    graph.node.extend([onnx.helper.make_node("Shape", ["raw"], ["raw_shape"]),
                       onnx.helper.make_node("Reshape", ["raw", "raw_shape"], ["image_embeds"])])
    next(o for o in graph.output if o.name == "image_embeds") \
        .type.tensor_type.shape.dim[-1].dim_param = "width"
    onnx.save(model, str(path))
    emb = OnnxClipEmbedder(folder, threads=1)
    assert emb._visual.out_dim is None and emb.dim == 64
    images = photos(2)
    np.testing.assert_allclose(emb.embed_images(images), tjs.embed_images(images), atol=1e-6)


def test_layout_errors_name_the_files(tjs_model_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelUnavailable, match="no known layout.*visual/model.onnx.*"
                                               "onnx/vision_model.onnx"):
        load_embedder(model_path=empty)
    for missing in ("preprocessor_config.json", "onnx/text_model.onnx", "tokenizer.json"):
        folder = tmp_path / missing.replace("/", "-")
        shutil.copytree(tjs_model_dir, folder, ignore=shutil.ignore_patterns("reference"))
        (folder / missing).unlink()
        with pytest.raises(ModelUnavailable, match=missing):
            load_embedder(model_path=folder)


def test_hf_preprocessor_settings(tmp_path: Path) -> None:
    where = tmp_path / "preprocessor_config.json"
    # SigLIP: {height, width} and no crop settings -> squash, normalized with its mean/std
    siglip = preprocessor_from_hf({"size": {"height": 224, "width": 224}, "resample": 2,
                                   "image_mean": [0.5] * 3, "image_std": [0.5] * 3}, where)
    assert (siglip.resize_mode, siglip.output_size, siglip.interpolation) == \
        ("squash", 224, "bilinear")
    assert siglip(Image.new("RGB", (300, 100), "white")).min() == pytest.approx(1.0)
    # resize the short side to 256, crop 224; legacy integer sizes; CLIP defaults
    clip_like = preprocessor_from_hf({"size": 256, "crop_size": 224}, where)
    assert (clip_like.size, clip_like.output_size, clip_like.interpolation) == \
        (256, 224, "bicubic")
    assert clip_like.mean[0] == pytest.approx(0.48145466)
    assert clip_like(Image.new("RGB", (640, 480))).shape == (3, 224, 224)
    for bad, match in (({"do_resize": False}, "do_resize"),
                       ({"size": {"longest_edge": 640}}, "longest_edge"),
                       ({"size": {"height": 224, "width": 320}}, "non-square"),
                       ({"size": {"shortest_edge": 224}, "do_center_crop": False}, "crop"),
                       ({"size": 224, "resample": 42}, "resample")):
        with pytest.raises(ModelUnavailable, match=match):
            preprocessor_from_hf(bad, where)


def test_siglip_config_canonicalizes_text(tjs: OnnxClipEmbedder, tjs_model_dir: Path,
                                          tmp_path: Path) -> None:
    folder = tmp_path / "siglip-like"
    shutil.copytree(tjs_model_dir, folder, ignore=shutil.ignore_patterns("reference"))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "siglip"}))
    siglip = load_embedder(model_path=folder, threads=1)
    # open_clip's "canonicalize": lower case, punctuation gone (SigLIP's training text)
    np.testing.assert_array_equal(siglip.tokenize(["A Dog, running!"]),
                                  tjs.tokenize(["a dog running"]))
    assert (tjs.tokenize(["A Dog, running!"]) != tjs.tokenize(["a dog running"])).any()


def test_quantize_transformers_js(tjs: OnnxClipEmbedder, tjs_model_dir: Path,
                                  tmp_path: Path) -> None:
    out = quantize(tjs_model_dir, tmp_path / "int8", force=True)
    q = load_embedder(model_path=out, threads=1)
    assert q.name == "imgfind-test-tiny-transformers-js-int8" and q.layout is TRANSFORMERS_JS
    images = photos(4)
    assert np.sum(q.embed_images(images) * tjs.embed_images(images), axis=1).min() > 0.95
    assert (out / "onnx" / "vision_model.onnx").stat().st_size < \
        (tjs_model_dir / "onnx" / "vision_model.onnx").stat().st_size
    # the text tower is copied unchanged
    assert (out / "onnx" / "text_model.onnx").read_bytes() == \
        (tjs_model_dir / "onnx" / "text_model.onnx").read_bytes()


def test_make_model_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "cli-model"
    assert testing_cli.main(["make-model", str(folder), "--layout", "transformers.js",
                         "--no-reference"]) == 0
    assert capsys.readouterr().out.strip() == str(folder)
    assert not (folder / "reference").exists()
    assert embedders.detect_layout(folder) is TRANSFORMERS_JS
    assert load_embedder(model_path=folder, threads=1).embed_texts(["a dog"]).shape == (1, 64)
    # the same settings again reuse the folder; other settings rebuild it
    mtime = (folder / "onnx" / "vision_model.onnx").stat().st_mtime_ns
    make_model(folder, layout="transformers.js", reference=False)
    assert (folder / "onnx" / "vision_model.onnx").stat().st_mtime_ns == mtime
    with pytest.raises(SystemExit):
        testing_cli.main(["make-model", str(folder), "--layout", "onnx"])
    with pytest.raises(ValueError, match="layout"):
        make_model(folder, layout="onnx")


# -- perceptual hash -----------------------------------------------------------------------

def test_phash_near_and_far() -> None:
    emb = load_embedder("phash")
    assert isinstance(emb, PHashEmbedder)
    assert (emb.name, emb.dim, emb.supports_text) == ("phash", 64, False)
    images = photos(10)
    v = emb.embed_images(images)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    for im, vec in zip(images, v, strict=True):
        half = im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=40)
        reencoded = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        copies = emb.embed_images([im.copy(), half, reencoded])
        assert hamming(vec, copies[0]) == 0
        assert hamming(vec, copies[1]) <= 6 and hamming(vec, copies[2]) <= 6
    for i, j in itertools.combinations(range(len(images)), 2):
        d = int(hamming(v[i], v[j]))
        assert d >= 12, (i, j, d)
        # cosine is an exact function of the Hamming distance
        assert float(v[i] @ v[j]) == pytest.approx(1 - 2 * d / 64, abs=1e-6)


def test_phash_preprocessor_and_errors() -> None:
    emb = PHashEmbedder()
    pre = pickle.loads(pickle.dumps(emb.preprocessor()))
    images = photos(2)
    np.testing.assert_array_equal(emb.embed_pixels(np.stack([pre(im) for im in images])),
                                  emb.embed_images(images))
    with pytest.raises(InvalidInput, match="text"):
        emb.embed_texts(["a dog"])
    with pytest.raises(InvalidInput, match="shape"):
        emb.embed_pixels(np.zeros((1, 3, 32, 32)))


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tjs_model_dir"])
def test_big_image_batches_split_across_cores_give_the_same_vectors(
        fixture: str, request: pytest.FixtureRequest) -> None:
    """A batch split into single-threaded runs (embedders.split_runs) returns the rows of
    the one multi-threaded run, in order; a small batch is not split."""
    emb = load_embedder(model_path=request.getfixturevalue(fixture), threads=3)
    rng = np.random.default_rng(0)
    pixels = rng.standard_normal((13, 3, emb.image_size, emb.image_size)).astype(np.float32)
    tower = emb._visual
    assert tower.split is not None and tower.split.parts_for(len(pixels)) == 3
    split = emb.embed_pixels(pixels)
    assert tower.split.runs == 1
    one_by_one = np.concatenate([emb.embed_pixels(p[None]) for p in pixels])
    assert tower.split.runs == 1                    # single images run unsplit
    np.testing.assert_allclose(split, one_by_one, atol=2e-6)
    assert load_embedder(model_path=request.getfixturevalue(fixture),
                         threads=1)._visual.split is None
