"""Distributed indexing on Ray: decode and embed in a Ray Data actor pool.

The driver (the process that called ``add`` / ``imgfind index --ray``) plans the
work against the store exactly as a local run does (new, changed, gone), then
hands the sources to Ray Data: a pool of actors, each holding one ONNX session,
reads the bytes, decodes, preprocesses and embeds whole batches. Results stream
back to the driver, which writes them through the same :class:`~imgfind.indexer.Writer`
as a local run, so the ids, the report and the rows are the same whoever
embedded them. The store stays the only writer of its files: actors never
touch it, so a Ray run works into a SQLite home as well as into Milvus.

>>> from imgfind.ray_pipeline import RayOptions
>>> col.add("photos/", executor=RayOptions(address="local", actors=2))  # doctest: +SKIP
IndexReport(indexed=1000, updated=0, skipped=0, removed=0, errors=[])

Against a cluster, ``address`` is the cluster's (``ray://head:10001`` or
``auto``); every node needs imgfind installed and the model folder at the same
path (or a model name it can download); ``gpus_per_actor`` puts the ONNX
sessions on the cluster's GPUs through ONNX Runtime's CUDA provider.
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import imageio
from .errors import Busy, InvalidInput, NotSupported
from .indexer import Failed, Pipeline, Prepared, PrepareJob, ProgressCallback, Writer, draft_size
from .sources import Source
from .types import IndexReport


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run.

    ``address``: ``"local"`` (or None) starts a private local Ray with
    ``cpus`` CPUs for this run and stops it after; anything else is passed to
    ``ray.init(address=...)`` and the cluster is left running. ``actors``:
    the embedding pool size (default: one per CPU of the cluster, divided by
    ``cpus_per_actor``). ``gpus_per_actor``: GPUs each actor reserves.
    """

    address: str | None = "local"
    actors: int | None = None
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    batch_size: int = 32
    cpus: int | None = None

    def __post_init__(self) -> None:
        if self.actors is not None and self.actors < 1:
            raise InvalidInput(f"Ray actors must be at least 1, got {self.actors}")
        if self.cpus_per_actor <= 0 or self.gpus_per_actor < 0:
            raise InvalidInput("Ray cpus_per_actor must be > 0 and gpus_per_actor >= 0")
        if self.batch_size < 1:
            raise InvalidInput(f"Ray batch_size must be at least 1, got {self.batch_size}")


@dataclass(frozen=True)
class EmbedderSpec:
    """How an actor loads the collection's model on its own node."""

    model: str | None
    model_path: str | None
    dim: int | None
    limits: imageio.Limits
    allow_private_urls: bool
    threads: int | None = None


class _EmbedActor:
    """One ONNX session per actor; turns a batch of pickled sources into results."""

    def __init__(self, spec: EmbedderSpec):
        from .embedders import load_embedder

        # the session picks ONNX Runtime's best provider on its node (CUDA on a GPU actor)
        self.embedder = load_embedder(spec.model, model_path=spec.model_path,
                                      threads=spec.threads, dim=spec.dim)
        self.job = PrepareJob(self.embedder.preprocessor(), spec.limits,
                              draft_size(self.embedder),
                              allow_private_urls=spec.allow_private_urls)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results: list[Prepared | Failed] = [self.job(pickle.loads(s)) for s in batch["src"]]
        ok = [r for r in results if isinstance(r, Prepared)]
        vectors = iter(self.embedder.embed_pixels(
            self.job.preprocessor.finish(np.stack([p.pixels for p in ok])))) if ok else iter(())
        out = []
        for r in results:
            if isinstance(r, Prepared):
                r.pixels = np.empty(0, np.uint8)  # the driver needs the vector, not the pixels
                out.append(pickle.dumps((r, next(vectors))))
            else:
                out.append(pickle.dumps(r))
        return {"seq": batch["seq"], "result": np.array(out, dtype=object)}


class RayExecutor:
    """An :class:`~imgfind.indexer.Executor` that embeds on Ray.

    >>> index(store, emb, ["photos/"], executor=RayExecutor(RayOptions(), spec))  # doctest: +SKIP
    """

    def __init__(self, options: RayOptions, spec: EmbedderSpec):
        self.options = options
        self.spec = spec

    def run(self, pipeline: Pipeline, srcs: list[Source], *, ids: dict[str, str],
            skip_duplicates: bool, progress: ProgressCallback | None,
            cancel: threading.Event | None) -> IndexReport:
        writer = Writer(pipeline.store, ids=ids, skip_duplicates=skip_duplicates)
        if not srcs:
            return writer.report
        with _ray_session(self.options) as ray:
            batch: list[Prepared] = []
            vectors: list[np.ndarray] = []
            for done, result in enumerate(self._results(ray, srcs), 1):
                if isinstance(result, Failed):
                    writer.fail(result)
                else:
                    prepared, vector = result
                    if writer.admit(prepared):
                        batch.append(prepared)
                        vectors.append(vector)
                        if len(batch) >= self.options.batch_size:
                            writer.put(batch, np.stack(vectors))
                            batch, vectors = [], []
                if progress:
                    progress(done, len(srcs))
                if cancel is not None and cancel.is_set():
                    break
            if batch:
                writer.put(batch, np.stack(vectors))
        return writer.report

    def _results(self, ray: Any, srcs: list[Source]
                 ) -> Iterator[Failed | tuple[Prepared, np.ndarray]]:
        opts = self.options
        cpus = ray.cluster_resources().get("CPU", 1)
        actors = opts.actors or max(1, int(cpus // opts.cpus_per_actor))
        spec = self.spec if self.spec.threads else EmbedderSpec(
            **{**self.spec.__dict__, "threads": max(1, int(opts.cpus_per_actor))})
        rows = [{"seq": i, "src": pickle.dumps(s)} for i, s in enumerate(srcs)]
        # at least a block per actor, so a small run still spreads over the pool
        blocks = min(len(rows), max(2 * actors, -(-len(rows) // opts.batch_size)))
        ds = ray.data.from_items(rows, override_num_blocks=blocks)
        ds = ds.map_batches(_EmbedActor, batch_size=opts.batch_size, batch_format="numpy",
                            fn_constructor_kwargs={"spec": spec},
                            compute=ray.data.ActorPoolStrategy(size=actors),
                            num_cpus=opts.cpus_per_actor,
                            num_gpus=opts.gpus_per_actor or None)
        for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for blob in out["result"]:
                yield pickle.loads(blob)


class _ray_session:
    """``ray.init`` for one run; shuts down only a Ray this run started."""

    def __init__(self, options: RayOptions):
        self.options = options
        self.started = False

    def __enter__(self) -> Any:
        try:
            import ray
        except ImportError as e:
            raise NotSupported(
                "distributed indexing needs Ray: pip install 'imgfind[ray]'") from e
        if not ray.is_initialized():
            address = self.options.address
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": logging.WARNING}
            local = address in (None, "", "local")
            # A local head waits a fixed time for its GCS server to come up; on a busy
            # machine that wait can run out once (seen at load 6 on 2 cores), so try
            # again before giving up, and then say so in our own words.
            for attempt in range(3 if local else 1):
                try:
                    if local:
                        ray.init(num_cpus=self.options.cpus, **kwargs)
                    else:
                        ray.init(address=address, **kwargs)
                    break
                except (RuntimeError, ConnectionError) as e:
                    ray.shutdown()
                    if attempt == (2 if local else 0):
                        where = "a local Ray" if local else f"the Ray cluster at {address}"
                        raise Busy(f"could not start {where}: {e}; retry when the machine "
                                   "is less busy (or index without --ray)",
                                   retry_after=10) from e
            self.started = True
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # imgfind draws its own bar
        ctx.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ctx.execution_options.preserve_order = True
        return ray

    def __exit__(self, *exc: object) -> None:
        if self.started:
            import ray

            ray.shutdown()
