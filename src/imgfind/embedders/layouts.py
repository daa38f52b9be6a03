"""Model folder layouts: where the Immich and the transformers.js exports keep each file.

Shared by the embedder (which loads a folder) and the registry (which checks a
downloaded one); neither imports the other for it.

>>> [layout.name for layout in LAYOUTS]
['immich', 'transformers.js']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelUnavailable


@dataclass(frozen=True)
class Layout:
    """Where a model folder layout keeps each file (paths relative to the folder).

    >>> IMMICH.image_model, TRANSFORMERS_JS.image_model
    ('visual/model.onnx', 'onnx/vision_model.onnx')
    """

    name: str
    image_model: str
    preprocess: str
    text_model: str
    #: folder of tokenizer.json / tokenizer_config.json ("" = the model folder)
    tokenizer_dir: str

    @property
    def required(self) -> tuple[str, ...]:
        """Files needed to embed images."""
        return ("config.json", self.image_model, self.preprocess)

    @property
    def text_required(self) -> tuple[str, ...]:
        """Further files needed to embed texts."""
        return (self.text_model, str(Path(self.tokenizer_dir, "tokenizer.json")))


IMMICH = Layout("immich", "visual/model.onnx", "visual/preprocess_cfg.json",
                "textual/model.onnx", "textual")
TRANSFORMERS_JS = Layout("transformers.js", "onnx/vision_model.onnx",
                         "preprocessor_config.json", "onnx/text_model.onnx", "")
LAYOUTS = (IMMICH, TRANSFORMERS_JS)
_LAYOUT_HELP = ("expected the Immich layout (config.json, visual/model.onnx, "
                "visual/preprocess_cfg.json, textual/model.onnx, textual/tokenizer.json) or the "
                "transformers.js layout (config.json, preprocessor_config.json, tokenizer.json, "
                "onnx/vision_model.onnx, onnx/text_model.onnx)")


def detect_layout(model_dir: str | Path) -> Layout:
    """The layout of ``model_dir``, told by its sub-folders (``visual/`` or ``onnx/``).

    Raises ModelUnavailable when the folder has neither.

    >>> detect_layout("models/mobileclip_s2").name       # doctest: +SKIP
    'transformers.js'
    """
    path = Path(model_dir)
    if (path / "visual").is_dir() or (path / "textual").is_dir():
        return IMMICH
    if (path / "onnx").is_dir() or (path / "preprocessor_config.json").is_file():
        return TRANSFORMERS_JS
    raise ModelUnavailable(f"model folder {str(path)!r} is in no known layout; {_LAYOUT_HELP}")


def check_model_dir(model_dir: str | Path, *, text: bool = True) -> Path:
    """Raise ModelUnavailable (naming what is missing) unless ``model_dir`` has a known layout."""
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise ModelUnavailable(f"model folder {str(path)!r} does not exist; pass a folder in "
                               "the Immich layout (config.json, visual/, textual/) or the "
                               "transformers.js layout (config.json, onnx/, tokenizer.json)")
    layout = detect_layout(path)
    wanted = layout.required + (layout.text_required if text else ())
    missing = [f for f in wanted if not (path / f).is_file()]
    if missing:
        raise ModelUnavailable(f"model folder {str(path)!r} lacks {', '.join(missing)}; "
                               f"{_LAYOUT_HELP}")
    return path
