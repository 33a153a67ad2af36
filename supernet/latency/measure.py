"""Timing blocks and children in a runtime: warm up, time N calls, summarise.

The repeats of a group are split into `rounds` interleaved passes (a burst of load from another process
then spreads over many things instead of spoiling one) and summarised by the settings' statistic. In an
ONNX runtime each block and child is the graph `supernet export` would write for it
(`supernet.onnx_io.write_onnx`), exported once per measurer and kept by key for later sweeps; with a
`graph_dir`, also on disk, named by key, torch version and opset, for later builds. Exporting is most of a
build's time in an ONNX runtime and runs on one core, so a group's missing graphs are exported together,
one forked process per core.

Paired timing, optional (`paired`): each timed call comes right after a call of the space's smallest
child, and a thing's value is the median of its ratios to it. The speed of the moment of a shared
machine changes both calls of a pair alike and cancels. Values are then ratios, or milliseconds once
`unit_ms` (the reference's latency, stored by the table) is set.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from supernet.latency.runtimes import Run, Runtime, fingerprint_of, open_runtime
from supernet.latency.settings import LatencyConfig, percentile_of
from supernet.latency.table import Fingerprint
from supernet.models.static import build_child, build_layer
from supernet.onnx_io import ONNX_OPSET, onnx_bytes
from supernet.parallel import forked_map
from supernet.run.files import atomic_write_bytes
from supernet.space import LayerSpec

# The batch an ONNX graph is traced with, as `supernet export` traces: not 1, which torch.export would
# specialise instead of keeping the batch axis dynamic.
TRACE_BATCH = 2
# What one timed thing is: a builder of its module, its input's channels and resolution, a cache key.
Case = tuple[Callable[[], nn.Module], int, int, str | None]


class Measurer:
    """Times layers, children and models with one set of settings in one runtime; a context manager."""

    def __init__(self, cfg: LatencyConfig, graph_dir: Path | None = None):
        self.cfg = cfg
        self.graph_dir = graph_dir
        self.runtime: Runtime = open_runtime(cfg)
        self.unit_ms: float | None = None  # paired: what one ratio is worth (None: values stay ratios)
        self.reference_samples: list[float] = []  # paired: the reference's timed calls (ms)
        self.export_s = 0.0  # time spent exporting ONNX graphs
        self._graphs: dict[str, bytes] = {}
        self._reference_plan: list[LayerSpec] | None = None
        self._reference: Run | None = None
        self._settled = False

    def __enter__(self) -> Measurer:
        self.runtime.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.runtime.__exit__(*exc)

    def fingerprint(self) -> Fingerprint:
        return fingerprint_of(self.cfg, self.runtime)

    def pair_with(self, plan: Sequence[LayerSpec]) -> None:
        """The child paired timing calls before each timed call (the space's smallest child)."""
        if self._reference is not None and list(plan) != self._reference_plan:
            raise RuntimeError("pair_with: this measurer has already timed against another reference")
        self._reference_plan = list(plan)

    def reference_ms(self) -> float | None:
        """The reference's latency (median) over its timed calls so far."""
        return float(np.median(self.reference_samples)) if self.reference_samples else None

    # ----- what a table needs
    def time_layers(self, layers: Sequence[LayerSpec]) -> list[float]:
        """The value of each layer, built as an extracted child builds it."""
        return self.time_cases([(lambda layer=layer: build_layer(layer), layer.cin, layer.resolution,
                                 layer.key()) for layer in layers])

    def time_children(self, plans: Sequence[Sequence[LayerSpec]]) -> list[float]:
        """The value of each whole child (the extracted child's equivalent), end to end."""
        return self.time_cases([(lambda plan=plan: build_child(list(plan)), plan[0].cin, plan[0].resolution,
                                 "|".join(layer.key() for layer in plan)) for plan in plans])

    def time_models(self, models: Sequence[tuple[nn.Module, int, int]]) -> list[float]:
        """The value of each (model, input channels, resolution); the caller's modules are not changed."""
        return self.time_cases([(lambda m=m: copy.deepcopy(m), c, r, None) for m, c, r in models])

    def time_onnx_file(self, path: Path, in_channels: int, resolution: int) -> float:
        """The value of an ONNX file as written (onnxruntime, tensorrt)."""
        run = self.runtime.prepare(Path(path).read_bytes(), self._shape(in_channels, resolution))
        return self._time([run])[0]

    # ----- the timing itself
    def time_cases(self, cases: Sequence[Case]) -> list[float]:
        if self.runtime.takes_onnx:
            self._export_missing(cases)
        return self._time([self._prepare(*case) for case in cases])

    def _shape(self, channels: int, resolution: int) -> tuple[int, int, int, int]:
        return (self.cfg.batch_size, channels, resolution, resolution)

    def _prepare(self, build: Callable[[], nn.Module], channels: int, resolution: int,
                 key: str | None) -> Run:
        if not self.runtime.takes_onnx:
            return self.runtime.prepare(build(), self._shape(channels, resolution))
        graph = self._graphs.get(key) if key is not None else None
        stored = self._graph_file(key)
        if graph is None and stored is not None and stored.is_file():
            graph = stored.read_bytes()
        if graph is None:
            start = time.perf_counter()
            graph = export_graph(build, channels, resolution)
            self.export_s += time.perf_counter() - start
            self._keep(key, graph)
        if key is not None:
            self._graphs[key] = graph
        return self.runtime.prepare(graph, self._shape(channels, resolution))

    def _export_missing(self, cases: Sequence[Case]) -> None:
        """Export together, one forked process per core, the graphs of the keyed `cases` held neither here
        nor on disk: exporting is single-threaded, and most of a build's time."""
        todo: dict[str, tuple[Callable[[], nn.Module], int, int]] = {}
        for build, channels, resolution, key in cases:
            stored = self._graph_file(key)
            if key is not None and key not in self._graphs and not (stored is not None and stored.is_file()):
                todo.setdefault(key, (build, channels, resolution))
        if len(todo) < 2:
            return
        keys = list(todo)
        start = time.perf_counter()
        graphs = forked_map(lambda i: export_graph(*todo[keys[i]]), len(keys))
        self.export_s += time.perf_counter() - start
        for key, graph in zip(keys, graphs, strict=True):
            self._keep(key, graph)

    def _keep(self, key: str | None, graph: bytes) -> None:
        if key is None:
            return
        self._graphs[key] = graph
        stored = self._graph_file(key)
        if stored is not None:
            atomic_write_bytes(stored, lambda f, data=graph: f.write(data))

    def _graph_file(self, key: str | None) -> Path | None:
        if self.graph_dir is None or key is None:
            return None
        name = hashlib.sha256(f"{torch.__version__}|{ONNX_OPSET}|{key}".encode()).hexdigest()[:24]
        return Path(self.graph_dir) / f"{name}.onnx"

    def _time(self, runs: Sequence[Run]) -> list[float]:
        reference = self._reference_run() if self.cfg.paired else None
        if not self._settled:
            # A fresh process runs its first calls faster than the steady state it reaches after some
            # allocation churn; the first group is timed once and thrown away so every value sees that state.
            self._time_rounds(runs, reference)
            self.reference_samples.clear()
            self._settled = True
        samples = self._time_rounds(runs, reference)
        q = percentile_of(self.cfg.summary_statistic)
        values = [float(np.percentile(s, q)) for s in samples]
        return values if reference is None or self.unit_ms is None else [v * self.unit_ms for v in values]

    def _time_rounds(self, runs: Sequence[Run], reference: Run | None) -> list[list[float]]:
        cfg, sync = self.cfg, self.runtime.sync
        samples: list[list[float]] = [[] for _ in runs]
        per_round = math.ceil(cfg.repeats / cfg.rounds)
        order = list(range(len(runs)))
        for r in range(cfg.rounds):
            # alternate the direction so no thing always runs right after the same neighbour
            for i in order if r % 2 == 0 else reversed(order):
                run = runs[i]
                for _ in range(cfg.warmup if r == 0 else min(cfg.warmup, 2)):
                    run()
                sync()
                for _ in range(per_round):
                    if reference is None:
                        start = time.perf_counter()
                        run()
                        sync()
                        samples[i].append((time.perf_counter() - start) * 1e3)
                        continue
                    start = time.perf_counter()
                    reference()
                    sync()
                    middle = time.perf_counter()
                    run()
                    sync()
                    end = time.perf_counter()
                    self.reference_samples.append((middle - start) * 1e3)
                    samples[i].append((end - middle) / (middle - start))
        return samples

    def _reference_run(self) -> Run:
        if self._reference is None:
            if self._reference_plan is None:
                raise RuntimeError("paired timing needs its reference: call pair_with(plan) first")
            plan = self._reference_plan
            self._reference = self._prepare(lambda: build_child(plan), plan[0].cin, plan[0].resolution, None)
            for _ in range(self.cfg.warmup):
                self._reference()
        return self._reference


def export_graph(build: Callable[[], nn.Module], channels: int, resolution: int) -> bytes:
    """The ONNX graph `supernet export` would write for the module `build` makes, traced on a fixed input."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        example = torch.randn(TRACE_BATCH, channels, resolution, resolution)
        graph, _ = onnx_bytes(build().eval(), example)
    return graph
