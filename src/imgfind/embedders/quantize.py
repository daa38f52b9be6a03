"""int8 image towers, offered only where they pay on the CPU at hand.

Dynamic int8 quantization shrinks an image tower 4x, but whether it is faster
depends on the CPU's int8 kernels in ONNX Runtime: measured here, int8 ran at
0.5-0.8x the fp32 speed on 2-core AMD EPYC and Intel Xeon VMs with AVX-512
VNNI (fp32 GEMMs are as well tuned, and the int8 path adds quantize/dequantize
steps around every MatMul). So :func:`quantize` times both towers on this CPU
after writing the copy and refuses, with the figures, when int8 is not at
least ``min_speedup`` times as fast; ``force=True`` keeps the copy anyway
(to measure, or for a CPU you know gains). The measurement is stored in the
copy's ``config.json`` under ``"int8"``.

>>> quantize("models/ViT-B-32__openai", "models/ViT-B-32__openai-int8")  # doctest: +SKIP
PosixPath('models/ViT-B-32__openai-int8')
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, NotSupported
from .onnx_clip import _read_json, check_model_dir, detect_layout, name_for_folder

#: int8 must beat fp32 by this much on this CPU to be worth its lost precision
MIN_SPEEDUP = 1.1


def quantize(model_dir: str | Path, out_dir: str | Path, *, force: bool = False,
             min_speedup: float = MIN_SPEEDUP, batch: int = 8) -> Path:
    """Write an int8 copy of a model folder (image tower dynamically quantized) and
    keep it only if it runs at least ``min_speedup`` x the fp32 tower here.

    Works for both layouts. The text tower and settings are copied unchanged
    (queries are few; their precision matters more than their speed). Raises
    ``NotSupported`` (the copy removed) when int8 does not pay on this CPU,
    unless ``force``.

    >>> quantize("models/clip", "models/clip-int8", force=True)  # doctest: +SKIP
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = check_model_dir(model_dir)
    layout = detect_layout(src)
    dst = Path(out_dir).expanduser()
    if dst.exists() and any(dst.iterdir()):
        raise InvalidInput(f"{str(dst)!r} is not empty; pass a new folder")
    image_model = src / layout.image_model

    def skip_image_tower(folder: str, names: list[str]) -> list[str]:
        # the tower and its external-data files (model.onnx_data, model.onnx.data)
        if Path(folder).resolve() != image_model.parent.resolve():
            return []
        return [n for n in names if n.startswith(image_model.name)]

    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=skip_image_tower)
    quantize_dynamic(image_model, dst / layout.image_model, weight_type=QuantType.QInt8)
    speed = measure_speedup(image_model, dst / layout.image_model, batch=batch)
    if speed["speedup"] < min_speedup and not force:
        shutil.rmtree(dst, ignore_errors=True)
        raise NotSupported(
            f"int8 does not pay on this CPU ({speed['cpu']}): the int8 image tower ran at "
            f"{speed['speedup']:.2f}x the fp32 speed (needs {min_speedup:.2f}x); keep the fp32 "
            "model, or pass force=True to keep the int8 copy anyway")
    config = _read_json(src / "config.json")
    config["name"] = f"{name_for_folder(src.resolve(), config)}-int8"
    config["int8"] = speed
    (dst / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return dst


def measure_speedup(fp32_model: Path, int8_model: Path, *, batch: int = 8,
                    rounds: int = 5) -> dict[str, Any]:
    """fp32 and int8 seconds per batch (median of ``rounds``, interleaved) on this CPU."""
    import onnxruntime as ort

    sessions = [ort.InferenceSession(str(m), providers=["CPUExecutionProvider"])
                for m in (fp32_model, int8_model)]
    inp = sessions[0].get_inputs()[0]
    shape = [batch if not isinstance(d, int) or i == 0 else d for i, d in enumerate(inp.shape)]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for s in sessions:  # warm-up: first runs allocate and pick kernels
        s.run(None, {inp.name: x})
    times: list[list[float]] = [[], []]
    for _ in range(rounds):
        for i, s in enumerate(sessions):
            t = time.perf_counter()
            s.run(None, {inp.name: x})
            times[i].append(time.perf_counter() - t)
    fp32, int8 = (float(np.median(t)) for t in times)
    return {"fp32_s": fp32, "int8_s": int8, "speedup": fp32 / int8 if int8 else 0.0,
            "batch": batch, "cpu": _cpu_name()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
