"""metadata: EXIF fields written with Pillow into real photos, garbage EXIF, file facts."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from imgfind.errors import SourceError
from imgfind.imageio import decode
from imgfind.metadata import extract_exif, file_facts

from .conftest import FLICKR

PHOTOS = sorted(FLICKR.glob("*.jpg"))
pytestmark = pytest.mark.skipif(not PHOTOS, reason="flickr8k-1k photos not available")

EXIF_IFD, GPS_IFD = 0x8769, 0x8825


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(PHOTOS[2]).convert("RGB")


def camera_exif(lat_ref: str = "S", lon_ref: str = "W", alt_ref: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon\x00\x00"  # cameras pad fixed-width fields with NULs
    exif[0x0110] = "Canon EOS R5"
    exif[0x0112] = 1
    exif[0x0131] = "Firmware 1.8.1"
    sub = exif.get_ifd(EXIF_IFD)
    sub[0x9003] = "2021:07:04 15:30:09"
    sub[0x9011] = "+02:00"
    sub[0x829A] = IFDRational(1, 250)
    sub[0x829D] = IFDRational(28, 10)
    sub[0x8827] = 400
    sub[0x920A] = IFDRational(50, 1)
    sub[0xA434] = "RF50mm F1.8 STM"
    sub[0xA002] = 6000
    sub[0xA003] = 4000
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = lat_ref
    gps[2] = (IFDRational(33, 1), IFDRational(51, 1), IFDRational(3636, 100))
    gps[3] = lon_ref
    gps[4] = (IFDRational(151, 1), IFDRational(12, 1), IFDRational(4020, 100))
    gps[5] = alt_ref
    gps[6] = IFDRational(58, 1)
    return exif


def jpeg(img: Image.Image, exif: Image.Exif | bytes) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def json_safe(value: dict) -> None:
    assert json.loads(json.dumps(value, allow_nan=False)) == value


def test_camera_fields_date_and_southern_western_gps(photo: Image.Image) -> None:
    exif = decode(jpeg(photo, camera_exif())).exif
    json_safe(exif)
    lat = 33 + 51 / 60 + 36.36 / 3600
    lon = 151 + 12 / 60 + 40.2 / 3600
    gps = exif.pop("gps")
    assert gps["lat"] == pytest.approx(-lat, abs=1e-9)
    assert gps["lon"] == pytest.approx(-lon, abs=1e-9)
    assert gps["alt"] == pytest.approx(-58.0)
    assert exif == {
        "make": "Canon",
        "model": "Canon EOS R5",
        "lens": "RF50mm F1.8 STM",
        "software": "Firmware 1.8.1",
        "taken": "2021-07-04T15:30:09+02:00",
        "exposure_time": pytest.approx(0.004),
        "f_number": pytest.approx(2.8),
        "iso": 400,
        "focal_length": pytest.approx(50.0),
        "orientation": 1,
        "width": 6000,
        "height": 4000,
    }


def test_northern_eastern_gps_is_positive(photo: Image.Image) -> None:
    gps = decode(jpeg(photo, camera_exif("N", "E", 0))).exif["gps"]
    assert gps["lat"] > 33.8 and gps["lon"] > 151.2 and gps["alt"] == pytest.approx(58.0)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_exif_survives_other_containers(fmt: str, photo: Image.Image) -> None:
    buf = io.BytesIO()
    exif = camera_exif()
    photo.save(buf, format=fmt, exif=exif if fmt == "TIFF" else exif.tobytes())
    got = decode(buf.getvalue()).exif
    assert got["make"] == "Canon"
    if fmt != "TIFF":  # Pillow's TIFF writer keeps only the base IFD, not the EXIF one
        assert got["taken"] == "2021-07-04T15:30:09+02:00"


def test_heif_exif(photo: Image.Image) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    photo.save(buf, format="HEIF", exif=camera_exif().tobytes())
    got = decode(buf.getvalue()).exif
    assert got["model"] == "Canon EOS R5"
    assert got["gps"]["lon"] < 0


def test_date_without_offset_and_digitized_fallback() -> None:
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[0x9003] = "2019:12:31 23:59:59"
    img = Image.open(io.BytesIO(jpeg(Image.new("RGB", (8, 8)), exif)))
    assert extract_exif(img) == {"taken": "2019-12-31T23:59:59"}
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[0x9004] = "2018:01:02 03:04:05"
    img = Image.open(io.BytesIO(jpeg(Image.new("RGB", (8, 8)), exif)))
    assert extract_exif(img) == {"taken": "2018-01-02T03:04:05"}


def test_no_exif_gives_empty_dict(photo: Image.Image) -> None:
    assert decode(jpeg(photo, b"")).exif == {}


def test_garbage_values_are_dropped_not_raised(photo: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x010F] = b"\xff\xfe\x00Nikon\x00"  # undecodable bytes around a name
    exif[0x0110] = "\x00\x00   "
    exif[0x0112] = 99  # not an orientation
    sub = exif.get_ifd(EXIF_IFD)
    sub[0x9003] = "0000:00:00 00:00:00"  # what some cameras write with no clock set
    sub[0x9011] = "garbage"
    sub[0x829A] = IFDRational(1, 0)
    sub[0x829D] = IFDRational(0, 0)
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (IFDRational(1, 0), IFDRational(0, 0), IFDRational(0, 0))
    gps[3] = "E"
    gps[4] = (IFDRational(500, 1), IFDRational(0, 1), IFDRational(0, 1))  # > 180 degrees
    d = decode(jpeg(photo, exif))
    json_safe(d.exif)
    assert set(d.exif) <= {"make"}
    assert d.exif.get("make", "Nikon").endswith("Nikon")
    assert d.image.size == photo.size  # orientation 99 is ignored, not applied


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_random_bytes_as_exif_block_do_not_break_decoding(photo: Image.Image) -> None:
    noise = bytes((i * 37 + 11) % 256 for i in range(600))
    for block in (
        b"Exif\x00\x00" + noise,
        b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff" + noise,
    ):
        d = decode(jpeg(photo, block))
        json_safe(d.exif)
        assert d.image.size == photo.size


def test_file_facts(tmp_path: Path) -> None:
    path = tmp_path / "Holiday Photo.JPG"
    path.write_bytes(b"0123456789")
    os.utime(path, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    facts = file_facts(path)
    json_safe(facts)
    assert facts == {
        "path": str(path.resolve()),
        "name": "Holiday Photo.JPG",
        "dir": str(tmp_path.resolve()),
        "ext": "jpg",
        "size": 10,
        "mtime": "2020-09-13T12:26:40Z",
        "mtime_ns": 1_600_000_000_123_456_789,
    }


def test_file_facts_of_a_relative_path_is_absolute(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert file_facts("a.png")["path"] == str(tmp_path / "a.png")
    with pytest.raises(SourceError, match="no such file"):
        file_facts("missing.png")
