"""Run a text tower at the query's real token length, only where that is proven exact.

A CLIP text tower is causal and pools at the end-of-text token, so the padding
after it cannot change the vector, and a query of 8 tokens runs ~8x faster
than at the full context of 77. Towers that look at the padding (SigLIP pools
the last position; MobileCLIP-S0 mixes tokens with convolutions) must not be
trimmed. Rather than trusting a config field, the model is asked: :func:`prove`
compares the vectors of probe texts of several lengths, run padded to the full
context and run at their own length.

Two kinds of tower:

* a **dynamic** sequence axis (transformers.js / Optimum exports) takes any
  length as it is; only the verdict is needed;
* a **fixed** sequence axis (Immich exports take exactly 77 tokens) is first
  rewritten by :func:`make_dynamic` into a graph with a symbolic axis (the
  constants sized by the fixed length, such as the position embeddings and the
  causal mask, are sliced to the input's length), and the rewritten graph is
  used only if it passes the same proof against the original graph.

Verdicts, and the rewritten graph, are kept in ``$IMGFIND_CACHE`` (default
``$XDG_CACHE_HOME/imgfind`` or ``~/.cache/imgfind``) under ``text-towers/<key>``,
where the key is made from the model file's path, size and modification time
and the rewrite's version: a later process (a one-off CLI query) reuses them at
no cost, and a changed model file is proven again.

>>> cache = TrimCache(Path("models/ViT-B-32__openai/textual/model.onnx"))  # doctest: +SKIP
>>> cache.load()                                                            # doctest: +SKIP
Verdict(exact=True, reason='min cosine 1.000000, max abs diff 2.1e-07 over 5 probes', ...)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: bump when make_dynamic or prove change, so older verdicts are not trusted
VERSION = 1
MIN_COSINE = 0.99999
MAX_ABS_DIFF = 1e-4
#: texts of several token lengths, the last one longer than any context (truncated)
PROBES = (
    "dog",
    "a photo of a dog running on the beach",
    "two children in red jackets play with a brown dog in the snow beside a frozen lake",
    "an old man with a grey beard sits on a wooden bench in a park, reading a newspaper "
    "while pigeons gather at his feet and a woman walks past with a pram",
    " ".join(["people at a crowded market stall selling fruit"] * 20),
)
# onnx.save refuses protobufs past 2 GB; text towers are far smaller
_MAX_REWRITE_BYTES = 1_800_000_000

Encode = Callable[[list[str]], tuple[np.ndarray, np.ndarray]]
Run = Callable[[np.ndarray, np.ndarray], np.ndarray]


def cache_root() -> Path:
    """The folder for verdicts and rewritten graphs (read from the environment each call)."""
    root = os.environ.get("IMGFIND_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "imgfind")
    return Path(root).expanduser() / "text-towers"


@dataclass(frozen=True)
class Verdict:
    """Whether a tower may run at the query's length, and the graph to run if rewritten."""

    exact: bool
    reason: str
    #: the fixed sequence length of the original graph, None for a dynamic one
    fixed_length: int | None = None
    #: the rewritten dynamic-axis graph (only for a fixed-length tower proven exact)
    graph: Path | None = None


class TrimCache:
    """The on-disk verdict for one text tower file (see the module docstring)."""

    def __init__(self, model_path: Path):
        self.model_path = Path(model_path).resolve()
        try:
            st = self.model_path.stat()
            raw = f"{VERSION}|{self.model_path}|{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            raw = f"{VERSION}|{self.model_path}|missing"
        self.dir = cache_root() / hashlib.sha256(raw.encode()).hexdigest()[:24]
        self.graph_path = self.dir / "text_dynamic.onnx"
        self._verdict_path = self.dir / "verdict.json"

    def load(self) -> Verdict | None:
        """The stored verdict, or None when there is none (or it is unreadable)."""
        try:
            data = json.loads(self._verdict_path.read_text())
            exact, reason = bool(data["exact"]), str(data["reason"])
            fixed = data.get("fixed_length")
        except (OSError, ValueError, KeyError, TypeError):
            return None
        graph = None
        if exact and fixed is not None:
            if not self.graph_path.is_file():
                return None  # the graph was cleaned away: prove again
            graph = self.graph_path
        return Verdict(exact, reason, int(fixed) if fixed is not None else None, graph)

    def store(self, verdict: Verdict) -> None:
        """Write the verdict atomically; a cache that cannot be written is only logged."""
        data = {"exact": verdict.exact, "reason": verdict.reason,
                "fixed_length": verdict.fixed_length, "model": str(self.model_path),
                "version": VERSION}
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            _atomic_write(self._verdict_path, json.dumps(data, indent=2).encode())
        except OSError as e:
            log.warning("cannot write the text tower verdict to %s: %s", self.dir, e)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def make_dynamic(src: Path, dst: Path, fixed_length: int) -> None:
    """Write ``src`` (a text tower taking exactly ``fixed_length`` tokens) to ``dst`` with
    a symbolic sequence axis.

    Constants with an axis of ``fixed_length`` (position embeddings, position ids,
    a causal mask) are sliced to the input's length on that axis, and the value
    ``fixed_length`` in a shape given to Reshape/Expand/ConstantOfShape becomes the
    input's length. Nothing here proves the result right: :func:`prove` does.
    Raises ``ValueError`` for graphs this cannot rewrite (and ``ImportError``
    without the ``onnx`` package).
    """
    import onnx
    from onnx import helper, numpy_helper

    if src.stat().st_size > _MAX_REWRITE_BYTES:
        raise ValueError(f"{src} is too large to rewrite in memory")
    model = onnx.load(str(src))
    g = model.graph
    init_names = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in init_names]
    seq_inputs = [i for i in inputs if len(i.type.tensor_type.shape.dim) >= 2
                  and i.type.tensor_type.shape.dim[1].dim_value == fixed_length]
    if not seq_inputs:
        raise ValueError(f"no input has a sequence axis of {fixed_length}")
    for i in seq_inputs:
        i.type.tensor_type.shape.dim[1].ClearField("dim_value")
        i.type.tensor_type.shape.dim[1].dim_param = "sequence"
    # shapes recorded for intermediate values may carry the old length
    del g.value_info[:]
    for out in g.output:
        for d in list(out.type.tensor_type.shape.dim)[1:]:
            if d.dim_value == fixed_length:
                d.ClearField("dim_value")
                d.dim_param = "sequence"

    p = "imgfind_trim_"
    seq = p + "seq"  # (1,) int64: the input's length
    prelude = [
        helper.make_node("Shape", [seq_inputs[0].name], [p + "shape"]),
        helper.make_node("Gather", [p + "shape", p + "one"], [seq], axis=0),
    ]
    extra_inits = [numpy_helper.from_array(np.array([1], np.int64), p + "one")]

    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in g.node:
        for k, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, k))
    shape_inputs = {("Reshape", 1), ("Expand", 1), ("ConstantOfShape", 0)}

    def shape_like(name: str, depth: int = 0) -> bool:
        """Whether ``name`` only ends up as (part of) a shape, e.g. Reshape's target."""
        uses = consumers.get(name, [])
        return bool(uses) and depth < 4 and all(
            (n.op_type, k) in shape_inputs
            or (n.op_type == "Concat" and shape_like(n.output[0], depth + 1))
            for n, k in uses)

    renamed: dict[str, str] = {}
    after: dict[str, list[onnx.NodeProto]] = {}  # nodes to add after a Constant node
    sliced = 0

    def constant_value(name: str, array: np.ndarray, producer: str | None) -> None:
        nonlocal sliced
        uses = consumers.get(name, [])
        nodes: list[onnx.NodeProto] = []
        if array.ndim <= 1 and array.dtype == np.int64 and (array == fixed_length).any() \
                and shape_like(name):
            array = array.reshape(-1)
            # a shape such as (batch, 77, heads, dim): splice the input's length in
            parts = []
            for j, v in enumerate(array.tolist()):
                if v == fixed_length:
                    parts.append(seq)
                else:
                    const = f"{p}{name}_{j}"
                    extra_inits.append(numpy_helper.from_array(np.array([v], np.int64), const))
                    parts.append(const)
            nodes.append(helper.make_node("Concat", parts, [p + name], axis=0))
        elif array.ndim >= 1 and fixed_length in array.shape and uses:
            axes = [j for j, d in enumerate(array.shape) if d == fixed_length]
            axes_name, starts, ends = p + name + "_axes", p + name + "_starts", p + name + "_ends"
            extra_inits.append(numpy_helper.from_array(np.array(axes, np.int64), axes_name))
            extra_inits.append(numpy_helper.from_array(np.zeros(len(axes), np.int64), starts))
            nodes.append(helper.make_node("Concat", [seq] * len(axes), [ends], axis=0))
            nodes.append(helper.make_node("Slice", [name, starts, ends, axes_name], [p + name]))
        if not nodes:
            return
        sliced += 1
        renamed[name] = p + name
        if producer is None:
            prelude.extend(nodes)
        else:
            after[producer] = nodes

    for init in g.initializer:
        constant_value(init.name, numpy_helper.to_array(init), None)
    for node in g.node:
        if node.op_type == "Constant" and len(node.output) == 1:
            attrs = {a.name: a for a in node.attribute}
            if "value" in attrs:
                constant_value(node.output[0], numpy_helper.to_array(attrs["value"].t),
                               node.output[0])

    added = {id(n) for n in prelude} | {id(n) for ns in after.values() for n in ns}
    for node in g.node:
        if id(node) in added:
            continue
        for k, name in enumerate(node.input):
            if name in renamed:
                node.input[k] = renamed[name]
    new_nodes = list(prelude)
    for node in g.node:
        new_nodes.append(node)
        if node.op_type == "Constant" and node.output and node.output[0] in after:
            new_nodes.extend(after[node.output[0]])
    # constants replaced whole (shapes) are left unused: drop them, or ORT warns on load
    used = {name for node in new_nodes for name in node.input} | {o.name for o in g.output} \
        | {i.name for i in g.input}  # old exports list initializers as inputs too
    new_nodes = [n for n in new_nodes if n.op_type != "Constant" or n.output[0] in used]
    kept = [i for i in list(g.initializer) + extra_inits if i.name in used]
    del g.node[:]
    g.node.extend(new_nodes)
    del g.initializer[:]
    g.initializer.extend(kept)
    log.debug("text tower rewrite: %d constants follow the input's length", sliced)
    dst.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(dst, model.SerializeToString())


def prove(encode: Encode, run_full: Run, run_trimmed: Run) -> tuple[bool, str]:
    """Whether ``run_trimmed`` on each probe at its own length (and on the short probes
    together, at their longest) gives ``run_full``'s vectors at full padding.

    Both runs return L2-normalized vectors. -> (exact, figures for the log).
    """
    ids, mask = encode(list(PROBES))
    full = run_full(ids, mask)
    lengths = mask.sum(axis=1).astype(int)
    pairs = []
    for i, n in enumerate(lengths):
        pairs.append((full[i:i + 1], run_trimmed(ids[i:i + 1, :n], mask[i:i + 1, :n])))
    short = lengths < ids.shape[1]
    n = int(lengths[short].max()) if short.any() else ids.shape[1]
    pairs.append((full[short], run_trimmed(ids[short, :n], mask[short, :n])))
    cos = min(float((a * b).sum(axis=1).min()) for a, b in pairs)
    diff = max(float(np.abs(a - b).max()) for a, b in pairs)
    exact = cos >= MIN_COSINE and diff <= MAX_ABS_DIFF
    return exact, (f"min cosine {cos:.7f}, max abs diff {diff:.2g} over {len(PROBES)} "
                   f"probes of {sorted(set(lengths.tolist()))} tokens")


def decide(model_path: Path, fixed_length: int | None, encode: Encode, run_original: Run,
           load_rewritten: Callable[[Path], Run]) -> Verdict:
    """Prove (and cache) whether the tower at ``model_path`` may run at the query's length.

    For a fixed-length tower the graph is rewritten first and ``load_rewritten(path)``
    gives the rewritten tower's run function. Any failure (no ``onnx`` package, a
    graph the rewrite cannot handle, a proof that fails) gives a not-exact verdict,
    logged with its reason; the caller then keeps the original tower at full length.
    """
    cache = TrimCache(model_path)
    if fixed_length is None:
        exact, reason = prove(encode, run_original, run_original)
        verdict = Verdict(exact, reason)
    else:
        try:
            make_dynamic(cache.model_path, cache.graph_path, fixed_length)
            exact, reason = prove(encode, run_original, load_rewritten(cache.graph_path))
        except ImportError as e:  # not the model's fault: no verdict kept, asked again later
            log.warning("text tower %s keeps its full length: %s", model_path, e)
            return Verdict(False, f"rewrite unavailable: {e}", fixed_length)
        except Exception as e:  # any failure means: keep the original graph
            exact, reason = False, f"rewrite failed: {type(e).__name__}: {e}"
        if exact:  # the original graph's optimized copy will not be loaded again
            from .ort_sessions import drop_optimized  # (it imports this module)

            drop_optimized(cache.dir)
        else:
            with contextlib.suppress(OSError):
                cache.graph_path.unlink()
        verdict = Verdict(exact, reason, fixed_length, cache.graph_path if exact else None)
    if exact:
        log.info("text tower %s runs at the query's length (%s)", model_path, reason)
    else:
        log.warning("text tower %s keeps its full %s-token length: %s", model_path,
                    fixed_length or "context", reason)
    cache.store(verdict)
    return verdict
