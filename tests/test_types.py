"""The public data types' dict forms: what REST returns and the client reads back."""

from __future__ import annotations

import dataclasses
import json

from imgfind.types import Hit, Item


def _item() -> Item:
    return Item(id="a1", source="/photos/cat.jpg", metadata={"tags": ["cat"], "n": 1},
                exif={"Make": "Canon", "GPS": {"lat": 1.5}}, file={"size": 10},
                width=640, height=480, format="JPEG", sha256="ab" * 32, taken="2020-01-01",
                stored=True, added="2026-01-01", updated="2026-01-02",
                ocr={"text": "hi", "lines": []})


def test_item_dict_has_every_field_and_round_trips() -> None:
    item = _item()
    d = item.to_dict()
    assert list(d) == [f.name for f in dataclasses.fields(Item)]
    assert d == dataclasses.asdict(item)
    assert Item.from_dict(json.loads(json.dumps(d))) == item


def test_hit_dict_round_trips() -> None:
    hit = Hit(id="a1", score=0.5, item=_item())
    assert Hit.from_dict(json.loads(json.dumps(hit.to_dict()))) == hit
