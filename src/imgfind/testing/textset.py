"""Words rendered onto real photos, with their ground truth, for OCR tests and the bench.

Fonts are the TrueType files installed on the machine (DejaVu, Liberation, ... as
``fc-list`` shows them); sizes 16-48 px; several colours, each drawn with a thin
outline of the opposite brightness as captions and signs usually are; angles 0, 15 and
-30 degrees.

>>> from PIL import Image
>>> im, words = render_words(Image.new("RGB", (500, 375), "gray"), seed=3)
>>> len(words) >= 1 and all(w.text.isalpha() for w in words)
True
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

#: words to render: common sign/caption words, 4-9 letters, no look-alikes of each other
WORDS = (
    "EXIT", "coffee", "station", "market", "garden", "Harbor", "bakery", "museum",
    "PARKING", "library", "hotel", "Bridge", "SALE", "airport", "theatre", "river",
    "pizza", "school", "OPEN", "Central", "window", "yellow", "mountain", "summer",
    "STOP", "welcome", "railway", "orange", "castle", "forest", "DANGER", "beach",
    "bicycle", "office", "GARAGE", "Sunday", "kitchen", "planet", "silver", "tunnel",
)
#: text colours (RGB); the outline is black for light ones and white for dark ones
COLOURS = ((255, 255, 255), (0, 0, 0), (230, 30, 30), (250, 220, 40), (40, 90, 220))
SIZES = (16, 20, 24, 28, 32, 40, 48)
ANGLES = (0, 0, 15, -30)
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"),
             Path.home() / ".fonts")


@dataclass(frozen=True)
class Word:
    """A rendered word: text, font file, size (px), colour, angle (degrees)."""

    text: str
    font: str
    size: int
    colour: tuple[int, int, int]
    angle: int


def fonts(limit: int = 6) -> list[Path]:
    """Regular/bold Latin TrueType fonts installed here, up to ``limit``, varied by family."""
    found: dict[str, Path] = {}
    for d in FONT_DIRS:
        for f in sorted(d.rglob("*.ttf")) if d.is_dir() else []:
            name = f.stem
            if re.search(r"Oblique|Italic|Light|Condensed|Narrow|Mono|Math", name):
                continue
            family = re.sub(r"-(Regular|Bold|Book)$", "", name)
            found.setdefault(family + ("B" if "Bold" in name else ""), f)
    return list(found.values())[:limit]


def normalise(text: str) -> str:
    """Lowercase letters and digits only: how recall compares words."""
    return re.sub(r"[^0-9a-z]", "", text.lower())


def word_found(word: str, ocr_text: str) -> bool:
    """A word counts as read when it appears in the OCR text, ignoring case, spaces and
    punctuation (OCR may join two nearby words into one line; that still finds both).

    >>> word_found("EXIT", "Exit  coffee")
    True
    """
    return normalise(word) in normalise(ocr_text)


def render_words(photo: Image.Image, seed: int, n_words: int | None = None,
                 font_files: list[Path] | None = None, sizes: tuple[int, ...] = SIZES,
                 angles: tuple[int, ...] = ANGLES) -> tuple[Image.Image, list[Word]]:
    """``photo`` with 1-3 words drawn at random places, sizes, colours and angles."""
    rng = random.Random(seed)
    files = font_files or fonts()
    if not files:
        raise RuntimeError("no TrueType fonts found (install fonts-dejavu)")
    im = photo.convert("RGB").copy()
    n = n_words or rng.randint(1, 3)
    words: list[Word] = []
    taken: list[tuple[int, int, int, int]] = []
    for _ in range(n * 10):
        if len(words) == n:
            break
        w = Word(text=rng.choice(WORDS), font=str(rng.choice(files)), size=rng.choice(sizes),
                 colour=rng.choice(COLOURS), angle=rng.choice(angles))
        if w.text in {x.text for x in words}:
            continue
        patch = _word_patch(w)
        if patch.width >= im.width or patch.height >= im.height:
            continue
        x = rng.randint(0, im.width - patch.width)
        y = rng.randint(0, im.height - patch.height)
        box = (x, y, x + patch.width, y + patch.height)
        if any(not (box[2] < t[0] or t[2] < box[0] or box[3] < t[1] or t[3] < box[1])
               for t in taken):
            continue
        im.paste(patch, (x, y), patch)
        taken.append(box)
        words.append(w)
    return im, words


def _word_patch(w: Word) -> Image.Image:
    font = ImageFont.truetype(w.font, w.size)
    left, top, right, bottom = (int(v) for v in font.getbbox(w.text))
    pad = max(2, w.size // 6)
    patch = Image.new("RGBA", (int(right - left + 2 * pad), int(bottom - top + 2 * pad)),
                      (0, 0, 0, 0))
    light = sum(w.colour) > 380
    outline = (0, 0, 0) if light else (255, 255, 255)
    ImageDraw.Draw(patch).text((pad - left, pad - top), w.text, font=font, fill=w.colour,
                               stroke_width=max(1, w.size // 16), stroke_fill=outline)
    return patch.rotate(w.angle, expand=True, resample=Image.Resampling.BICUBIC) if w.angle \
        else patch
