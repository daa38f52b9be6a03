"""Image preprocessing of CLIP-family models: resize, crop, rescale, normalize.

Settings come from the model folder (see ``onnx_clip``'s module docstring for the
two layouts): Hugging Face's ``preprocessor_config.json`` or Immich's
``visual/preprocess_cfg.json``. The result is a plain, picklable object, so
indexing can send it to worker processes.

>>> pre = preprocessor_from_hf({"size": {"shortest_edge": 224}, "crop_size": 224}, Path("x"))
>>> pre(Image.new("RGB", (640, 480))).shape
(3, 224, 224)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ModelUnavailable

_RESAMPLING = {r.name.lower(): r for r in Image.Resampling}
# OpenAI CLIP's normalization: Hugging Face's CLIP image processor default
_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


class ClipPreprocessor:
    """Picklable image preprocessing: RGB PIL image -> float32 (3, S, S).

    Resizes to ``size`` ("shortest": the short side, "squash": both sides), then
    center-crops to ``crop_size`` (default ``size``), multiplies by ``rescale``
    and normalizes with ``mean``/``std``. Holds only plain settings, so it can be
    sent to worker processes.

    >>> pre = ClipPreprocessor(224, [0.5] * 3, [0.5] * 3)
    >>> pre(Image.new("RGB", (640, 480))).shape
    (3, 224, 224)
    """

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float],
                 interpolation: str = "bicubic", resize_mode: str = "shortest",
                 crop_size: int | None = None, rescale: float = 1 / 255):
        if interpolation.lower() not in _RESAMPLING:
            raise ModelUnavailable(f"unknown interpolation {interpolation!r} in the model's "
                                   f"preprocessing settings; use one of {sorted(_RESAMPLING)}")
        if resize_mode not in ("shortest", "squash"):
            raise ModelUnavailable(f"unsupported resize_mode {resize_mode!r} in the model's "
                                   "preprocessing settings; use 'shortest' or 'squash'")
        self.size = int(size)
        self.crop_size = int(crop_size) if crop_size else self.size
        if self.crop_size > self.size:
            raise ModelUnavailable(f"crop size {self.crop_size} is larger than the resize "
                                   f"size {self.size} in the model's preprocessing settings")
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.interpolation = interpolation.lower()
        self.resize_mode = resize_mode
        self.rescale = float(rescale)

    @property
    def output_size(self) -> int:
        """Side of the square the model receives."""
        return self.crop_size

    def scale(self, image: Image.Image) -> Image.Image:
        """The resize step alone: the whole picture at the model's scale, not yet cropped."""
        size = self.size
        w, h = image.size
        if self.resize_mode == "squash":
            new_w = new_h = size
        elif w <= h:
            # Same arithmetic as Hugging Face / torchvision: short side -> size,
            # long side truncated.
            new_w, new_h = size, int(size * h / w)
        else:
            new_w, new_h = int(size * w / h), size
        if (new_w, new_h) == (w, h):
            return image
        return image.resize((new_w, new_h), resample=_RESAMPLING[self.interpolation])

    def crop(self, scaled: Image.Image) -> Image.Image:
        """The center crop step: :meth:`scale`'s output -> ``output_size`` square."""
        crop = self.crop_size
        w, h = scaled.size
        if (w, h) == (crop, crop):
            return scaled
        left, top = (w - crop) // 2, (h - crop) // 2
        return scaled.crop((left, top, left + crop, top + crop))

    def resize(self, image: Image.Image) -> Image.Image:
        """Resize + center crop an RGB image to ``output_size`` x ``output_size`` uint8 pixels."""
        return self.crop(self.scale(image))

    def pixels(self, image: Image.Image) -> np.ndarray:
        """Resized and cropped uint8 (S, S, 3) pixels, not yet normalized."""
        return self.pixels_and_preview(image, 0)[0]

    def pixels_and_preview(self, image: Image.Image,
                           side: int) -> tuple[np.ndarray, Image.Image]:
        """:meth:`pixels`, and the cheapest picture to make a ``side`` px thumbnail from.

        That is the resized, uncropped picture when it shrank the image and is
        still at least ``side`` px long, else ``image`` itself: a 500x375 photo
        for a 224 px model gives its 298x224 resize, from which a 256 px
        thumbnail costs half of what it does from the photo.

        >>> pre = ClipPreprocessor(224, [0.5] * 3, [0.5] * 3)
        >>> px, preview = pre.pixels_and_preview(Image.new("RGB", (500, 375)), 256)
        >>> px.shape, preview.size
        ((224, 224, 3), (298, 224))
        """
        if image.mode != "RGB":
            image = image.convert("RGB")
        scaled = self.scale(image)
        pixels = np.asarray(self.crop(scaled), dtype=np.uint8)
        smaller = scaled.width <= image.width and scaled.height <= image.height
        return pixels, scaled if smaller and max(scaled.size) >= side else image

    def finish(self, batch: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 from :meth:`pixels` -> (N, 3, S, S) normalized float32.

        >>> pre = ClipPreprocessor(4, [0.5] * 3, [0.5] * 3)
        >>> pre.finish(np.full((2, 4, 4, 3), 255, np.uint8))[0, :, 0, 0]
        array([1., 1., 1.], dtype=float32)
        """
        batch = np.asarray(batch)
        out = np.empty((batch.shape[0], batch.shape[3], batch.shape[1], batch.shape[2]),
                       np.float32)
        out[...] = batch.transpose(0, 3, 1, 2)
        # in place, in the reference's order: (x * rescale - mean) / std
        out *= np.float32(self.rescale)
        out -= np.asarray(self.mean, np.float32)[:, None, None]
        out /= np.asarray(self.std, np.float32)[:, None, None]
        return out

    def __call__(self, image: Image.Image) -> np.ndarray:
        return self.finish(self.pixels(image)[None])[0]

    def __repr__(self) -> str:
        return (f"ClipPreprocessor(size={self.size}, crop_size={self.crop_size}, "
                f"interpolation={self.interpolation!r}, resize_mode={self.resize_mode!r})")


def _side(value: Any, what: str, path: Path) -> tuple[int, str]:
    """A Hugging Face size setting -> (pixels, "shortest" | "squash")."""
    if isinstance(value, int):
        # CLIP's legacy integer size means the shortest edge
        return value, "shortest"
    if isinstance(value, dict):
        if "shortest_edge" in value:
            return int(value["shortest_edge"]), "shortest"
        if "height" in value and "width" in value:
            if int(value["height"]) != int(value["width"]):
                raise ModelUnavailable(f"{path}: non-square {what} {value} is not supported")
            return int(value["height"]), "squash"
    raise ModelUnavailable(f"{path}: unsupported {what} {value!r}; expected an integer, "
                           "{'shortest_edge': N} or {'height': N, 'width': N}")


def preprocessor_from_hf(cfg: dict[str, Any], path: Path) -> ClipPreprocessor:
    """A ClipPreprocessor from Hugging Face image processor settings (preprocessor_config.json).

    >>> preprocessor_from_hf({"size": {"shortest_edge": 256}, "crop_size": 256,
    ...                       "do_normalize": False, "resample": 2}, Path("x")).output_size
    256
    """
    if cfg.get("do_resize", True) is False:
        raise ModelUnavailable(f"{path}: do_resize false is not supported (images of any size "
                               "must be brought to the model's input size)")
    size, mode = _side(cfg.get("size", 224), "size", path)
    # CLIP processors crop by default; SigLIP's ({height, width}) has no crop settings at all
    do_crop = cfg.get("do_center_crop", "crop_size" in cfg or mode == "shortest")
    crop = _side(cfg["crop_size"], "crop_size", path)[0] if do_crop and "crop_size" in cfg \
        else size
    if mode == "shortest" and not do_crop:
        raise ModelUnavailable(f"{path}: resizing the shortest edge without a center crop gives "
                               "non-square inputs, which is not supported")
    if cfg.get("do_normalize", True):
        mean, std = cfg.get("image_mean", _CLIP_MEAN), cfg.get("image_std", _CLIP_STD)
    else:
        mean, std = [0.0] * 3, [1.0] * 3
    rescale = float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else 1.0
    resample = cfg.get("resample", int(Image.Resampling.BICUBIC))
    try:
        interpolation = Image.Resampling(int(resample)).name.lower()
    except (ValueError, TypeError) as e:
        raise ModelUnavailable(f"{path}: unknown resample {resample!r}; expected a Pillow "
                               "filter number (2 bilinear, 3 bicubic)") from e
    return ClipPreprocessor(size, mean, std, interpolation, mode, crop, rescale)


def preprocessor_from_immich(cfg: dict[str, Any], config: dict[str, Any],
                             path: Path) -> ClipPreprocessor:
    """A ClipPreprocessor from an Immich ``visual/preprocess_cfg.json``."""
    size = cfg.get("size", config.get("vision_cfg", {}).get("image_size", 224))
    size = size[0] if isinstance(size, (list, tuple)) else size
    try:
        return ClipPreprocessor(
            int(size), cfg["mean"], cfg["std"], cfg.get("interpolation", "bicubic"),
            # open_clip's default for configs written before resize_mode existed
            cfg.get("resize_mode", "shortest"))
    except KeyError as e:
        raise ModelUnavailable(f"{path} lacks {e.args[0]!r}") from e
