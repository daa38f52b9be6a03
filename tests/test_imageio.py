"""imageio: every supported format from a real photo, orientation, limits, draft mode."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from imgfind.errors import ImageTooLarge, InvalidImage, SourceError
from imgfind.imageio import (
    IMAGE_EXTENSIONS,
    Decoded,
    Limits,
    decode,
    load_image,
    mime_type,
    thumbnail,
)

from .conftest import FLICKR

PHOTOS = sorted(FLICKR.glob("*.jpg"))
pytestmark = pytest.mark.skipif(not PHOTOS, reason="flickr8k-1k photos not available")


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(PHOTOS[0]).convert("RGB")


@pytest.fixture(scope="module")
def heif_encoder() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    return float(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean())


def avif_bytes(img: Image.Image, **kw) -> bytes:
    if not features.check("avif"):
        pytest.skip("this Pillow build has no AVIF support")
    try:
        return encode(img, "AVIF", **kw)
    except (OSError, ValueError, KeyError) as e:
        pytest.skip(f"this Pillow build cannot encode AVIF: {e}")


# Mean absolute difference to the original, per 0-255 channel: exact for the
# lossless formats, small for lossy ones (GIF pays for its 256-colour palette).
FORMATS = {
    "JPEG": 6.0,
    "PNG": 0.0,
    "WEBP": 6.0,
    "GIF": 20.0,
    "BMP": 0.0,
    "TIFF": 0.0,
    "HEIF": 6.0,
    "AVIF": 8.0,
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_decodes_to_the_photo(fmt: str, photo: Image.Image, heif_encoder) -> None:
    data = avif_bytes(photo) if fmt == "AVIF" else encode(photo, fmt)
    d = decode(data)
    assert isinstance(d, Decoded)
    assert d.format == fmt
    assert (d.width, d.height) == photo.size
    assert d.image.mode == "RGB"
    assert diff(d.image, photo) <= FORMATS[fmt]
    other = Image.open(PHOTOS[1]).convert("RGB").resize(photo.size)
    assert diff(d.image, other) > 20  # the tolerance above really tells photos apart
    assert mime_type(d.format).startswith("image/")


def test_mime_types() -> None:
    assert mime_type("JPEG") == "image/jpeg"
    assert mime_type("heif") == "image/heif"
    assert mime_type("AVIF") == "image/avif"
    assert mime_type("MPO") == "image/jpeg"
    assert mime_type("PSD") == "application/octet-stream"
    assert {".jpg", ".jpeg", ".heic", ".avif", ".tif"} <= IMAGE_EXTENSIONS
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)


def oriented(k: int, stored: np.ndarray) -> np.ndarray:
    """Where each stored pixel must be displayed for EXIF orientation k (from the spec)."""
    h, w = stored.shape[:2]
    out = np.zeros((w, h, 3) if k >= 5 else (h, w, 3), stored.dtype)
    for r in range(h):
        for c in range(w):
            pos = {
                1: (r, c),
                2: (r, w - 1 - c),
                3: (h - 1 - r, w - 1 - c),
                4: (h - 1 - r, c),
                5: (c, r),
                6: (c, h - 1 - r),
                7: (w - 1 - c, h - 1 - r),
                8: (w - 1 - c, r),
            }[k]
            out[pos] = stored[r, c]
    return out


def with_orientation(k: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = k
    return exif


@pytest.mark.parametrize("k", range(1, 9))
def test_all_eight_exif_orientations(k: int) -> None:
    stored = np.random.default_rng(k).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    d = decode(encode(Image.fromarray(stored), "PNG", exif=with_orientation(k)))
    expected = oriented(k, stored)
    assert (d.height, d.width) == expected.shape[:2]
    assert np.array_equal(np.asarray(d.image), expected)
    assert d.exif["orientation"] == k


def marked(size: tuple[int, int]) -> Image.Image:
    """White image with a red top-left quadrant, to see where 'up' went."""
    img = Image.new("RGB", size, "white")
    img.paste((255, 0, 0), (0, 0, size[0] // 2, size[1] // 2))
    return img


def red_corner(img: Image.Image) -> str:
    w, h = img.size
    corners = {
        "top-left": (w // 8, h // 8),
        "top-right": (w - w // 8, h // 8),
        "bottom-left": (w // 8, h - h // 8),
        "bottom-right": (w - w // 8, h - h // 8),
    }
    red = [name for name, xy in corners.items() if img.getpixel(xy)[1] < 80]
    assert len(red) == 1, red
    return red[0]


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "TIFF", "HEIF", "AVIF"])
def test_orientation_6_is_applied_exactly_once(fmt: str, heif_encoder) -> None:
    # TIFF and HEIF decoders rotate by themselves; decode must not rotate twice.
    img, exif = marked((160, 80)), with_orientation(6)
    if fmt == "HEIF":
        # Given raw EXIF bytes, pillow-heif also writes the HEIF rotation box
        # (as phones do); readers go by that box, not by the EXIF tag.
        data = encode(img, fmt, exif=exif.tobytes())
    elif fmt == "AVIF":
        data = avif_bytes(img, exif=exif)
    else:
        data = encode(img, fmt, exif=exif)
    d = decode(data)
    assert (d.width, d.height) == (80, 160)
    assert d.image.size == (80, 160)
    assert red_corner(d.image) == "top-right"


@pytest.mark.parametrize(("k", "corner"), [(3, "bottom-right"), (8, "bottom-left")])
def test_orientation_with_draft_mode(k: int, corner: str) -> None:
    d = decode(encode(marked((2400, 1600)), "JPEG", exif=with_orientation(k)), min_size=224)
    full = (1600, 2400) if k >= 5 else (2400, 1600)
    assert (d.width, d.height) == full
    assert d.image.size == (full[0] // 4, full[1] // 4)
    assert red_corner(d.image) == corner


def test_draft_mode_on_a_12_megapixel_photo(photo: Image.Image) -> None:
    big = encode(photo.resize((4000, 3000), Image.Resampling.BILINEAR), "JPEG", quality=90)
    full = decode(big)
    assert full.image.size == (4000, 3000)
    small = decode(big, min_size=224)
    assert (small.width, small.height) == (4000, 3000)
    assert min(small.image.size) >= 224
    assert small.image.width * small.image.height <= 4000 * 3000 // 16
    # The reduced decode is the same picture, not just a smaller canvas.
    assert diff(small.image, full.image.resize(small.image.size, Image.Resampling.BOX)) < 8
    medium = decode(big, min_size=1000)
    assert min(medium.image.size) >= 1000 and medium.image.size != (4000, 3000)


def test_min_size_does_not_touch_non_jpeg(photo: Image.Image) -> None:
    d = decode(encode(photo, "PNG"), min_size=32)
    assert d.image.size == photo.size


def test_truncated_files_are_invalid(photo: Image.Image) -> None:
    for fmt in ("JPEG", "PNG", "WEBP"):
        data = encode(photo, fmt)
        with pytest.raises(InvalidImage) as err:
            decode(data[: len(data) // 2])
        assert not isinstance(err.value, ImageTooLarge)


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, this is a text file saved as photo.jpg\n", bytes(range(256)) * 8],
    ids=["zero-bytes", "text", "noise"],
)
def test_non_images_are_invalid(data: bytes) -> None:
    with pytest.raises(InvalidImage) as err:
        decode(data)
    assert err.value.code == "invalid_image"


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a canvas but carries almost no data: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("dims", [(100_000, 100_000), (20_000, 20_000), (10_001, 10_000)])
def test_pixel_bombs_are_refused_before_decoding(dims: tuple[int, int]) -> None:
    # 10^10 RGB pixels would need 30 GB: reaching the decoder would crash the test run.
    data = png_header_only(*dims)
    assert len(data) < 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning leaks either
        with pytest.raises(ImageTooLarge) as err:
            decode(data)
    assert err.value.status == 413


def test_pixel_limit_is_configurable(photo: Image.Image) -> None:
    data = encode(photo, "PNG")
    with pytest.raises(ImageTooLarge, match="pixels"):
        decode(data, limits=Limits(max_pixels=photo.width * photo.height - 1))
    assert decode(data, limits=Limits(max_pixels=photo.width * photo.height)).width == photo.width


def test_byte_limit(photo: Image.Image) -> None:
    data = encode(photo, "JPEG")
    with pytest.raises(ImageTooLarge, match="bytes"):
        decode(data, limits=Limits(max_bytes=len(data) - 1))
    assert decode(data, limits=Limits(max_bytes=len(data))).format == "JPEG"


def test_transparency_goes_on_white() -> None:
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    half = Image.new("RGBA", (8, 8), (0, 0, 0, 128))
    la = Image.new("LA", (8, 8), (0, 0))
    p = Image.new("P", (8, 8), 0)
    p.putpalette([0, 0, 0] * 256)
    assert decode(encode(clear, "PNG")).image.getpixel((4, 4)) == (255, 255, 255)
    assert decode(encode(la, "PNG")).image.getpixel((4, 4)) == (255, 255, 255)
    assert decode(encode(p, "GIF", transparency=0)).image.getpixel((4, 4)) == (255, 255, 255)
    assert decode(encode(clear, "WEBP", lossless=True)).image.getpixel((4, 4)) == (255, 255, 255)
    grey = decode(encode(half, "PNG")).image.getpixel((4, 4))
    assert all(120 <= v <= 135 for v in grey)


def test_sixteen_bit_grey_keeps_its_tones() -> None:
    # Pillow's own I;16 -> RGB conversion clips everything above 255 to white.
    arr = np.full((6, 6), 32768, np.uint16)
    arr[0, 0] = 0
    img = Image.fromarray(arr)
    assert img.mode == "I;16"
    for fmt in ("PNG", "TIFF"):
        d = decode(encode(img, fmt))
        assert d.image.getpixel((3, 3)) == (128, 128, 128)
        assert d.image.getpixel((0, 0)) == (0, 0, 0)


def test_cmyk_and_grey_jpegs() -> None:
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in print terms
    r, g, b = decode(encode(cmyk, "JPEG", quality=95)).image.getpixel((8, 8))
    assert r > 200 and g < 60 and b < 60
    grey = decode(encode(Image.new("L", (16, 16), 77), "JPEG")).image
    assert grey.mode == "RGB" and abs(grey.getpixel((8, 8))[0] - 77) <= 2


def test_first_frame_of_gif_and_first_page_of_tiff() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue", "green")]
    for fmt in ("GIF", "TIFF", "WEBP"):
        data = encode(frames[0], fmt, save_all=True, append_images=frames[1:])
        assert Image.open(io.BytesIO(data)).n_frames == 3
        r, g, b = decode(data).image.getpixel((8, 8))
        assert r > 200 and g < 60 and b < 60, fmt


def test_thumbnail_is_a_small_jpeg(photo: Image.Image) -> None:
    thumb = Image.open(io.BytesIO(thumbnail(photo)))
    assert thumb.format == "JPEG" and thumb.mode == "RGB"
    assert max(thumb.size) == 256
    assert abs(thumb.width / thumb.height - photo.width / photo.height) < 0.02
    tiny = Image.open(io.BytesIO(thumbnail(Image.new("RGBA", (40, 20)), size=64)))
    assert tiny.size == (40, 20)  # never enlarged
    assert len(thumbnail(photo, size=128)) < len(encode(photo, "JPEG", quality=82))


def test_load_image_from_path_bytes_and_pil(tmp_path: Path) -> None:
    data = encode(marked((60, 30)), "JPEG", exif=with_orientation(6))
    path = tmp_path / "query.jpg"
    path.write_bytes(data)
    for obj in (path, str(path), data):
        img = load_image(obj)
        assert img.mode == "RGB" and img.size == (30, 60)
        assert red_corner(img) == "top-right"
    for fmt in ("JPEG", "TIFF", "PNG"):
        opened = Image.open(io.BytesIO(encode(marked((60, 30)), fmt, exif=with_orientation(6))))
        assert red_corner(load_image(opened)) == "top-right", fmt
    assert load_image(Image.new("L", (5, 4))).mode == "RGB"
    with pytest.raises(ImageTooLarge):
        load_image(path, limits=Limits(max_bytes=10))
    with pytest.raises(SourceError, match="no such image file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(InvalidImage):
        load_image(12345)  # type: ignore[arg-type]
