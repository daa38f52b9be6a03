"""Image decoding: format sniffing, size limits, fast JPEG draft mode, orientation.

Everything that turns untrusted bytes into pixels goes through :func:`decode`,
which enforces :class:`Limits` *before* any pixel memory is allocated and
raises the typed errors from :mod:`imgfind.errors` instead of Pillow's
assorted exceptions.

>>> from PIL import Image
>>> import io
>>> buf = io.BytesIO()
>>> Image.new("RGBA", (40, 30), (0, 0, 0, 0)).save(buf, format="PNG")
>>> d = decode(buf.getvalue())
>>> (d.format, d.width, d.height, d.image.mode, d.image.getpixel((0, 0)))
('PNG', 40, 30, 'RGB', (255, 255, 255))
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from imgfind.errors import ImageTooLarge, InvalidImage, SourceError
from imgfind.metadata import extract_exif

__all__ = [
    "IMAGE_EXTENSIONS",
    "Decoded",
    "has_image_name",
    "Limits",
    "THUMBNAIL_SIDE",
    "decode",
    "load_image",
    "mime_type",
    "thumbnail",
]

#: Lowercase file extensions (with the dot) that folder walks treat as images.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)


def has_image_name(name: str) -> bool:
    """Whether a file name ends in an image extension, any case.

    >>> has_image_name("IMG_0001.JPG"), has_image_name("notes.txt")
    (True, False)
    """
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS

_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "HEIF": "image/heif",
    "AVIF": "image/avif",
}

# Pillow can open dozens of formats; only the ones users index are tried, which
# keeps rarely-fuzzed decoders (and loose sniffers such as TGA's, which accept
# almost any bytes) away from untrusted input. The JPEG opener also returns
# "MPO", Pillow's name for the multi-picture JPEGs many phones write; those are
# reported as JPEG.
_PILLOW_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
_FORMAT_ALIASES = {"MPO": "JPEG"}

# EXIF orientation value -> the transpose that makes the image upright.
_ORIENT_OPS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Decoder failures Pillow reports for corrupt or truncated data.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    EOFError,
    ValueError,
    IndexError,
    TypeError,
    struct.error,
    zlib.error,
)


@dataclass(frozen=True)
class Limits:
    """Upper bounds applied to every image before it is decoded.

    ``max_bytes`` (64 MiB) is the largest encoded file accepted: far above any
    camera JPEG or phone HEIC, small enough that a batch of them fits in memory.
    ``max_pixels`` (100 MP) is the largest decoded canvas: a 100 MP medium-format
    photo is accepted, while a decompression bomb (a tiny file declaring a huge
    canvas) is refused from its header alone, before ~300 MB of RGB pixels is
    allocated. Pillow has its own hard stop at ``2 * Image.MAX_IMAGE_PIXELS``
    (~179 MP) that still applies if ``max_pixels`` is set above it.

    >>> Limits().max_pixels
    100000000
    >>> Limits(max_bytes=1024).max_bytes
    1024
    """

    max_bytes: int = 64 * 2**20
    max_pixels: int = 100_000_000


@dataclass
class Decoded:
    """A decoded image and what was learned about it.

    ``image`` is RGB with EXIF orientation applied; when :func:`decode` got a
    ``min_size`` it may be smaller than the file (JPEG draft mode), while
    ``width``/``height`` are always those of the full, oriented image.

    >>> d = Decoded(Image.new("RGB", (2, 1)), 2, 1, "PNG")
    >>> d.exif
    {}
    """

    image: Image.Image
    width: int
    height: int
    format: str
    exif: dict = field(default_factory=dict)


_heif_lock = threading.Lock()
_heif_registered = False


def _register_heif() -> None:
    """Register pillow-heif's opener, once, the first time HEIF-like data is seen.

    Done lazily so that importing imgfind (and decoding JPEGs in worker
    processes) does not pay for loading libheif.
    """
    global _heif_registered
    if _heif_registered:
        return
    with _heif_lock:
        if not _heif_registered:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_registered = True


def _is_isobmff(data: bytes) -> bool:
    # HEIF and AVIF are ISO base media files: a box of type "ftyp" comes first.
    return data[4:8] == b"ftyp"


def _orientation_of(img: Image.Image) -> int:
    try:
        value = img.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - garbage EXIF: treat as upright, keep the image
        return 1
    return value if isinstance(value, int) and value in _ORIENT_OPS else 1


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB, putting transparency on white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        # High-bit-depth grey: Pillow's own conversion clips to 255 (a 16-bit
        # scan would come out white), so scale the value range instead.
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            top = 65535.0
        else:
            peak = float(arr.max()) if arr.size else 0.0
            top = 1.0 if mode == "F" and peak <= 1.0 else (255.0 if peak <= 255 else 65535.0)
        grey = np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("PA", "LA", "La", "RGBa") or mode in ("L", "1") and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB")


def _orient(img: Image.Image, orientation: int) -> Image.Image:
    op = _ORIENT_OPS.get(orientation)
    return img.transpose(op) if op is not None else img


@contextmanager
def _no_bomb_warning() -> Iterator[None]:
    # Our own max_pixels check is the authority; Pillow's warning for sizes
    # between its two thresholds would only be noise in logs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def decode(data: bytes, *, limits: Limits = Limits(), min_size: int | None = None) -> Decoded:
    """Decode untrusted image bytes into an upright RGB image.

    The real format is sniffed from the content, so a PNG saved as ``.jpg``
    decodes fine. With ``min_size``, JPEGs are decoded at a reduced scale
    (1/2, 1/4 or 1/8) chosen so that the shorter side stays ``>= min_size``;
    that is several times faster for a 224 px model on a 12 MP photo.

    Raises :class:`~imgfind.errors.InvalidImage` for empty, truncated or
    non-image data and :class:`~imgfind.errors.ImageTooLarge` over the limits.

    >>> import io
    >>> buf = io.BytesIO()
    >>> Image.new("RGB", (4000, 3000), "red").save(buf, format="JPEG")
    >>> d = decode(buf.getvalue(), min_size=224)
    >>> (d.width, d.height, d.image.size)
    (4000, 3000, (500, 375))
    """
    if not data:
        raise InvalidImage("the image is empty (0 bytes); check the file or upload")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"the image is {len(data):,} bytes, over the limit of {limits.max_bytes:,}; "
            "shrink it or raise Limits.max_bytes"
        )
    formats = list(_PILLOW_FORMATS)
    if _is_isobmff(data):
        _register_heif()
        formats.append("HEIF")
    try:
        with _no_bomb_warning():
            img = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"the image declares too many pixels ({e})") from e
    except UnidentifiedImageError as e:
        raise InvalidImage(
            "not a supported image (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF or AVIF)"
        ) from e
    except _DECODE_ERRORS as e:
        raise InvalidImage(f"the image header is damaged: {e}") from e

    width, height = img.size
    if width <= 0 or height <= 0:
        raise InvalidImage(f"the image declares an empty canvas ({width}x{height})")
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} = {width * height:,} pixels, over the limit "
            f"of {limits.max_pixels:,}; shrink it or raise Limits.max_pixels"
        )
    fmt = _FORMAT_ALIASES.get(img.format or "", img.format or "")
    exif = extract_exif(img)
    if min_size is not None and fmt == "JPEG" and min_size > 0:
        # draft() keeps both sides >= the requested box, hence the shorter too.
        img.draft("RGB", (min_size, min_size))
    try:
        with _no_bomb_warning():
            img.load()
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"the image declares too many pixels ({e})") from e
    except MemoryError as e:
        raise ImageTooLarge("not enough memory to decode this image") from e
    except _DECODE_ERRORS as e:
        raise InvalidImage(f"the image data is truncated or corrupt: {e}") from e
    # Some decoders (TIFF, HEIF) rotate on load and drop the tag, so the
    # orientation still to apply is read after loading.
    orientation = _orientation_of(img)
    if orientation >= 5:
        width, height = height, width
    try:
        rgb = _orient(_to_rgb(img), orientation)
    except _DECODE_ERRORS as e:
        raise InvalidImage(f"the image could not be converted to RGB: {e}") from e
    return Decoded(image=rgb, width=width, height=height, format=fmt, exif=exif)


def load_image(obj: bytes | str | Path | Image.Image, *, limits: Limits = Limits()) -> Image.Image:
    """Load a query image from a path, bytes, or a PIL image, as upright RGB.

    URLs are not fetched here (that is a network decision the caller makes);
    fetch them with :func:`imgfind.fetch.fetch_url` and pass the bytes.

    >>> load_image(Image.new("L", (3, 2))).mode
    'RGB'
    """
    if isinstance(obj, Image.Image):
        try:
            # Load first: TIFF rotates itself on load and then drops the tag.
            obj.load()
        except _DECODE_ERRORS as e:
            raise InvalidImage(f"the image data is truncated or corrupt: {e}") from e
        return _orient(_to_rgb(obj), _orientation_of(obj))
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return decode(bytes(obj), limits=limits).image
    if isinstance(obj, (str, Path)):
        path = Path(obj).expanduser()
        try:
            with path.open("rb") as f:
                size = path.stat().st_size
                if size > limits.max_bytes:
                    raise ImageTooLarge(
                        f"{path} is {size:,} bytes, over the limit of {limits.max_bytes:,}"
                    )
                data = f.read(limits.max_bytes + 1)
        except FileNotFoundError as e:
            hint = " (to search by URL, fetch it first)" if "://" in str(obj) else ""
            raise SourceError(f"no such image file: {path}{hint}") from e
        except OSError as e:
            raise SourceError(f"cannot read {path}: {e.strerror or e}") from e
        return decode(data, limits=limits).image
    raise InvalidImage(
        f"cannot load an image from {type(obj).__name__}; give a path, bytes or a PIL image"
    )


#: longest side of the stored thumbnails
THUMBNAIL_SIDE = 256


def thumbnail(img: Image.Image, size: int = THUMBNAIL_SIDE) -> bytes:
    """Encode a small JPEG preview whose longest side is at most ``size``.

    >>> data = thumbnail(Image.new("RGB", (1000, 500)), 256)
    >>> Image.open(io.BytesIO(data)).size
    (256, 128)
    """
    thumb = _to_rgb(img)
    if thumb is img:
        thumb = img.copy()
    # Indexing makes one per image on the same cores as the model, so it is
    # made cheaply: bilinear is 1.6x faster than bicubic (0.8 vs 1.3 ms from
    # 500x375), and JPEG encodes 2.5x faster than WebP for ~25% more bytes.
    thumb.thumbnail((size, size), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    thumb.save(out, format="JPEG", quality=82)
    return out.getvalue()


def mime_type(format: str) -> str:
    """The MIME type for a Pillow format name (``application/octet-stream`` if unknown).

    >>> mime_type("JPEG"), mime_type("heif")
    ('image/jpeg', 'image/heif')
    """
    name = format.upper()
    return _MIME.get(_FORMAT_ALIASES.get(name, name), "application/octet-stream")
