"""Metadata extraction: EXIF (camera, lens, date taken, GPS) and file facts.

Both functions return plain JSON-safe dicts (str, int, float, bool, lists,
dicts; no bytes, no NaN) so the result can go straight into a store's JSON
column and into filters. EXIF in the wild is often damaged, so
:func:`extract_exif` never raises: it returns whatever it could read.

>>> from PIL import Image
>>> exif = Image.Exif()
>>> exif[0x010F] = "Canon"
>>> img = Image.new("RGB", (8, 8))
>>> img.info["exif"] = exif.tobytes()
>>> extract_exif(img)
{'make': 'Canon'}
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from imgfind.errors import SourceError

__all__ = ["extract_exif", "file_facts"]

# Tag numbers (EXIF 2.32 / TIFF 6.0).
_IFD_EXIF = 0x8769
_IFD_GPS = 0x8825
_MAKE, _MODEL, _ORIENTATION, _SOFTWARE = 0x010F, 0x0110, 0x0112, 0x0131
_EXPOSURE_TIME, _F_NUMBER, _ISO = 0x829A, 0x829D, 0x8827
_DATETIME_ORIGINAL, _DATETIME_DIGITIZED = 0x9003, 0x9004
_OFFSET_ORIGINAL, _OFFSET_DIGITIZED = 0x9011, 0x9012
_FOCAL_LENGTH, _PIXEL_X, _PIXEL_Y, _LENS_MODEL = 0x920A, 0xA002, 0xA003, 0xA434
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON, _GPS_ALT_REF, _GPS_ALT = 1, 2, 3, 4, 5, 6

# Camera strings are short; anything longer is junk and would bloat the store.
_MAX_TEXT = 200


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    # Fixed-width EXIF fields are padded with NULs and spaces.
    cleaned = "".join(ch for ch in value if ch.isprintable()).strip()
    return cleaned[:_MAX_TEXT] or None


def _number(value: Any) -> float | None:
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _integer(value: Any) -> int | None:
    if isinstance(value, (tuple, list)) and value:
        value = value[0]  # ISOSpeedRatings may hold several values; the first is the one used
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _timestamp(date: Any, offset: Any) -> str | None:
    text = _text(date)
    if text is None:
        return None
    try:
        moment = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    iso = moment.isoformat(timespec="seconds")
    tz = _text(offset)
    if tz is not None and len(tz) == 6 and tz[0] in "+-" and tz[3] == ":":
        try:
            datetime.strptime(tz[1:], "%H:%M")
        except ValueError:
            return iso
        iso += tz
    return iso


def _degrees(dms: Any, ref: Any, limit: float, negative: str) -> float | None:
    if not isinstance(dms, (tuple, list)) or not 1 <= len(dms) <= 3:
        return None
    parts = [_number(part) for part in dms]
    if any(part is None or part < 0 for part in parts):
        return None
    value = sum(part / 60**i for i, part in enumerate(parts))  # type: ignore[operator]
    if value > limit:
        return None
    ref_text = (_text(ref) or "").upper()
    return -value if ref_text.startswith(negative) else value


def _gps(gps: dict) -> dict:
    lat = _degrees(gps.get(_GPS_LAT), gps.get(_GPS_LAT_REF), 90.0, "S")
    lon = _degrees(gps.get(_GPS_LON), gps.get(_GPS_LON_REF), 180.0, "W")
    if lat is None or lon is None:
        return {}
    out: dict[str, float] = {"lat": lat, "lon": lon}
    alt = _number(gps.get(_GPS_ALT))
    if alt is not None:
        ref = gps.get(_GPS_ALT_REF)
        below = ref in (1, b"\x01") or (isinstance(ref, (tuple, list)) and ref[:1] == (1,))
        out["alt"] = -alt if below else alt
    return out


def _ifd(exif: Image.Exif, tag: int) -> dict:
    try:
        return dict(exif.get_ifd(tag))
    except Exception:  # noqa: BLE001 - a broken sub-IFD must not cost the tags already read
        return {}


def extract_exif(img: Image.Image) -> dict:
    """Read the useful EXIF fields of an opened image as a JSON-safe dict.

    Keys (each present only when readable): ``make``, ``model``, ``lens``,
    ``taken`` (ISO 8601, with the UTC offset when the camera recorded it),
    ``exposure_time`` (seconds), ``f_number``, ``iso``, ``focal_length`` (mm),
    ``orientation`` (1-8), ``software``, ``width``, ``height`` and ``gps``
    (``{"lat", "lon", "alt"?}``, signed decimal degrees: south and west are
    negative, metres below sea level are negative).

    Call it on the image as opened, before any transpose, which drops EXIF.

    >>> extract_exif(Image.new("RGB", (4, 4)))
    {}
    """
    try:
        exif = img.getexif()
        base = dict(exif)
    except Exception:  # noqa: BLE001 - Pillow raises many types on junk EXIF
        return {}
    sub = _ifd(exif, _IFD_EXIF)
    out: dict[str, Any] = {}

    for key, value in (
        ("make", base.get(_MAKE)),
        ("model", base.get(_MODEL)),
        ("lens", sub.get(_LENS_MODEL)),
        ("software", base.get(_SOFTWARE)),
    ):
        text = _text(value)
        if text is not None:
            out[key] = text

    taken = _timestamp(sub.get(_DATETIME_ORIGINAL), sub.get(_OFFSET_ORIGINAL)) or _timestamp(
        sub.get(_DATETIME_DIGITIZED), sub.get(_OFFSET_DIGITIZED)
    )
    if taken is not None:
        out["taken"] = taken

    for key, value in (
        ("exposure_time", sub.get(_EXPOSURE_TIME)),
        ("f_number", sub.get(_F_NUMBER)),
        ("focal_length", sub.get(_FOCAL_LENGTH)),
    ):
        number = _positive(value)
        if number is not None:
            out[key] = number

    iso = _integer(sub.get(_ISO))
    if iso is not None and iso > 0:
        out["iso"] = iso
    orientation = _integer(base.get(_ORIENTATION))
    if orientation is not None and 1 <= orientation <= 8:
        out["orientation"] = orientation
    for key, tag in (("width", _PIXEL_X), ("height", _PIXEL_Y)):
        size = _integer(sub.get(tag))
        if size is not None and size > 0:
            out[key] = size

    gps = _gps(_ifd(exif, _IFD_GPS))
    if gps:
        out["gps"] = gps
    return out


def file_facts(path: str | Path) -> dict:
    """Facts about a file from the filesystem (no image decoding).

    ``mtime`` is ISO 8601 in UTC; ``mtime_ns`` is exact, for change detection.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(suffix=".JPG") as f:
    ...     facts = file_facts(f.name)
    >>> facts["ext"], facts["size"]
    ('jpg', 0)
    """
    absolute = Path(os.path.abspath(Path(path).expanduser()))
    try:
        st = absolute.stat()
    except FileNotFoundError as e:
        raise SourceError(f"no such file: {absolute}") from e
    except OSError as e:
        raise SourceError(f"cannot read {absolute}: {e.strerror or e}") from e
    mtime = datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC)
    return {
        "path": str(absolute),
        "name": absolute.name,
        "dir": str(absolute.parent),
        "ext": absolute.suffix.lower().lstrip("."),
        "size": st.st_size,
        "mtime": mtime.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "mtime_ns": st.st_mtime_ns,
    }
