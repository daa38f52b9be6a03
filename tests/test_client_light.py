"""The HTTP client is light: importing it loads neither the vector engine nor the model runtime,
and the embedders import each other without a cycle."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("faiss", "onnxruntime", "torch", "imgfind.stores", "imgfind.api")


def loaded_after(code: str) -> list[str]:
    script = (f"import sys\n{code}\n"
              "print('\\n'.join(sorted(m for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True)
    return out.stdout.split()


def test_import_client_loads_no_engine() -> None:
    for code in ("import imgfind.client", "from imgfind.client import Client",
                 "import imgfind; imgfind.Client"):
        mods = loaded_after(code)
        heavy = [m for m in mods if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
        assert heavy == [], (code, heavy)
        assert "imgfind.client" in mods


def test_the_engine_still_loads_on_use() -> None:
    mods = loaded_after("import imgfind; imgfind.open")
    assert "imgfind.api" in mods and "imgfind.stores.vector_index" in mods
    # faiss itself loads when an index is first made, loaded or searched
    assert "faiss" not in mods
    mods = loaded_after("from imgfind.stores.vector_index import VectorIndex\n"
                        "VectorIndex.empty(4)")
    assert "faiss" in mods


def test_embedders_import_without_a_cycle() -> None:
    """Each of the two modules imports alone, first, with no function-level import of the
    other: registry -> layouts <- onnx_clip."""
    import ast
    import inspect

    from imgfind.embedders import onnx_clip, registry

    for module, other in ((onnx_clip, "registry"), (registry, "onnx_clip")):
        tree = ast.parse(inspect.getsource(module))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        if other == "onnx_clip":
            assert "onnx_clip" not in imported, "registry imports onnx_clip"
    for first in ("imgfind.embedders.registry", "imgfind.embedders.onnx_clip"):
        loaded_after(f"import {first}")  # check=True: a cycle would raise ImportError


def test_import_imgfind_loads_no_numpy() -> None:
    """The package itself is light (`imgfind --help`, the CLI's start): numpy and Pillow
    load with the parts that use them."""
    mods = loaded_after("import imgfind; imgfind.ImgfindError; imgfind.Hit")
    assert [m for m in mods if m.split(".")[0] in ("numpy", "PIL")] == []
    assert "imgfind.interface" in loaded_after("import imgfind; imgfind.CollectionAPI")
