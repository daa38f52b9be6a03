"""What every store does to a record's facts before storing them.

>>> clean_json({"ExposureTime": float("nan"), "MakerNote": b"\\x01\\x02", "ISO": 100})
{'ExposureTime': None, 'MakerNote': '0102', 'ISO': 100}
"""

from __future__ import annotations

import math
from typing import Any


def clean_json(value: Any) -> Any:
    """EXIF / file facts as valid JSON: non-finite floats become null, bytes hex, odd types
    strings (EXIF readers hand back rationals, bytes and NaN that no JSON column takes)."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def text_values(value: Any, out: list[str]) -> None:
    """Append every string and number inside ``value`` to ``out``: what full-text reads."""
    if isinstance(value, dict):
        for v in value.values():
            text_values(v, out)
    elif isinstance(value, list):
        for v in value:
            text_values(v, out)
    elif isinstance(value, str):
        out.append(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        out.append(str(value))
