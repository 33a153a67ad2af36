"""Timing plain-torch modules on the target: warm-up, interleaved repeats, median.

CPU: a fixed intra-op thread count, `time.perf_counter` around each call, under `torch.inference_mode`.
GPU: CUDA events around each call on the current stream, one `torch.cuda.synchronize` before reading them;
`torch.backends.cudnn.benchmark` set as the settings say (and recorded in the fingerprint).

Repeats are interleaved: each group of modules is timed in `rounds` passes, so load from another process
spreads over many modules; the samples of each module are summarized by the settings' statistic (median
by default; a low percentile where the CPU is shared, see `MeasureSettings`).

Paired timing (`settings.paired`) calls a reference network right before each timed call and keeps the
ratio of the two durations (see `supernet.latency.reference`). A module's value is the median of its
ratios times `unit_ms`: the reference's latency, taken from the first timing after the settling pass
unless the caller sets it, for instance to a table's when validating it, so that all values share one unit.
With `settings.reference == "smallest_child"` the caller names the child (`pair_with`) before timing.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from supernet.latency.errors import LatencySettingsError
from supernet.latency.fingerprint import Fingerprint, current_fingerprint
from supernet.latency.reference import REFERENCE_CHANNELS, REFERENCE_RESOLUTION, reference_network
from supernet.latency.settings import MeasureSettings, percentile_of, require_target
from supernet.models.static import build_child, build_layer
from supernet.space import LayerSpec

Case = tuple[nn.Module, Tensor]


class Measurer:
    """Times layers and whole children with one fixed set of settings; use as a context manager.

    Entering sets the thread count (CPU) or cudnn.benchmark (GPU); leaving restores them.
    With paired timing, `unit_ms` is what one ratio unit is worth (None until the first timing sets it,
    unless the caller does); `reference_ms()` is the reference's latency over its calls so far.
    """

    def __init__(self, settings: MeasureSettings, seed: int = 0):
        require_target(settings.target)
        self.settings = settings
        self.unit_ms: float | None = None
        self._generator = torch.Generator().manual_seed(seed)
        self._saved: tuple[int, bool] | None = None
        self._settled = False
        self._reference: Case | None = None
        self._reference_plan: list[LayerSpec] | None = None
        self._reference_samples: list[float] = []

    def __enter__(self) -> Measurer:
        self._saved = (torch.get_num_threads(), torch.backends.cudnn.benchmark)
        if self.settings.target == "cpu" and self.settings.threads:
            torch.set_num_threads(self.settings.threads)
        if self.settings.target == "gpu":
            torch.backends.cudnn.benchmark = self.settings.cudnn_benchmark
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            torch.set_num_threads(self._saved[0])
            torch.backends.cudnn.benchmark = self._saved[1]
            self._saved = None

    def fingerprint(self) -> Fingerprint:
        return current_fingerprint(self.settings)

    def pair_with(self, plan: Sequence[LayerSpec]) -> None:
        """Use the child of `plan` as the reference when `settings.reference` is "smallest_child".

        Set it before the first timing: values counted against one reference do not compare with values
        counted against another.
        """
        timed_against_another = (self.settings.reference == "smallest_child" and self._reference is not None
                                 and list(plan) != self._reference_plan)
        if timed_against_another:  # (with the fixed network the plan is not used, so any plan will do)
            raise RuntimeError("pair_with: this measurer has already timed against another reference")
        self._reference_plan = list(plan)

    def reference_count(self) -> int:
        """How many timed calls of the reference there have been (a mark for `reference_ms(since=...)`)."""
        return len(self._reference_samples)

    def reference_ms(self, since: int = 0) -> float | None:
        """The reference network's latency (the settings' statistic) over its timed calls from `since` on.

        It depends a little on what the reference is paired with: after a whole network its weights are
        colder in cache than after a single block, so compare marks taken over the same kind of work.
        """
        samples = self._reference_samples[since:]
        if not samples:
            return None
        return float(np.percentile(samples, percentile_of(self.settings.statistic)))

    # ----- what a table build needs
    def time_layers(self, layers: Sequence[LayerSpec]) -> list[float]:
        """Milliseconds (the settings' statistic) of each layer, built as an extracted child builds it."""
        return self.time_cases([self.case(build_layer(layer), layer.cin, layer.resolution)
                                for layer in layers])

    def time_children(self, plans: Sequence[Sequence[LayerSpec]]) -> list[float]:
        """Milliseconds of each whole child (the extracted-child equivalent), end to end."""
        return self.time_cases([self.case(build_child(list(plan)), plan[0].cin, plan[0].resolution)
                                for plan in plans])

    # ----- the timing itself
    def case(self, module: nn.Module, in_channels: int, resolution: int) -> Case:
        """`module` in eval mode on the target in the deployment dtype and memory format, with an input."""
        s = self.settings
        module = module.eval().to(device=s.device, dtype=s.torch_dtype)
        x = torch.randn(s.batch_size, in_channels, resolution, resolution, generator=self._generator)
        x = x.to(device=s.device, dtype=s.torch_dtype)
        if s.channels_last:
            module = module.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        return module, x

    def time_cases(self, cases: Sequence[Case]) -> list[float]:
        if not self._settled:
            # A fresh process runs its first few hundred calls a few percent faster than the steady state
            # it reaches after some allocation churn (measured: ~3-4 % on a 2-core Xeon); the first group
            # is timed once and thrown away so every number, first block or last child, sees that state.
            self._time_cases(cases)
            self._settled = True
            self._reference_samples.clear()  # the reference's latency, too, is taken in the settled state
        return self._time_cases(cases)

    def _time_cases(self, cases: Sequence[Case]) -> list[float]:
        s = self.settings
        samples: list[list[float]] = [[] for _ in cases]
        per_round = math.ceil(s.repeats / s.rounds)
        order = list(range(len(cases)))
        reference = self._reference_case() if s.paired else None
        with torch.inference_mode():
            for r in range(s.rounds):
                # alternate the direction so no module always runs right after the same neighbour
                for i in order if r % 2 == 0 else reversed(order):
                    module, x = cases[i]
                    # full warm-up once (allocator, cudnn autotune, caches); a short one after each switch
                    for _ in range(s.warmup if r == 0 else min(s.warmup, 2)):
                        module(x)
                    if reference is None:
                        samples[i].extend(self._timed_calls(module, x, per_round))
                        continue
                    reference_ms, module_ms = self._timed_pairs(reference, (module, x), per_round)
                    self._reference_samples.extend(reference_ms)
                    samples[i].extend(m / ref for m, ref in zip(module_ms, reference_ms, strict=True))
        # paired: the median of the ratios, whose noise is symmetric (either call of a pair can be the one
        # disturbed); the statistic has chosen the unit
        q = percentile_of(s.summary_statistic)
        if reference is None:
            return [float(np.percentile(values, q)) for values in samples]
        unit_ms = self.unit_ms if self.unit_ms is not None else self.reference_ms()
        if self._settled and self.unit_ms is None:
            self.unit_ms = unit_ms
        return [float(np.percentile(ratios, q)) * unit_ms for ratios in samples]

    def _reference_case(self) -> Case:
        if self._reference is None:
            if self.settings.reference == "fixed_network":
                module, x = self.case(reference_network(), REFERENCE_CHANNELS, REFERENCE_RESOLUTION)
            elif self._reference_plan is not None:
                plan = self._reference_plan
                module, x = self.case(build_child(plan), plan[0].cin, plan[0].resolution)
            else:
                raise LatencySettingsError(
                    "paired timing against the space's smallest child needs the space: call "
                    "pair_with(smallest_child_plan(space)) first, or set reference=fixed_network")
            with torch.inference_mode():
                for _ in range(self.settings.warmup):
                    module(x)
            self._reference = (module, x)
        return self._reference

    def _timed_calls(self, module: nn.Module, x: Tensor, n: int) -> list[float]:
        if self.settings.target == "gpu":
            return _cuda_timed_calls(module, x, n)
        out = []
        for _ in range(n):
            start = time.perf_counter()
            module(x)
            out.append((time.perf_counter() - start) * 1e3)
        return out

    def _timed_pairs(self, first: Case, second: Case, n: int) -> tuple[list[float], list[float]]:
        """Milliseconds of `n` calls of each, every call of `second` right after one of `first`."""
        if self.settings.target == "gpu":
            return _cuda_timed_pairs(first, second, n)
        (a, xa), (b, xb) = first, second
        first_ms, second_ms = [], []
        for _ in range(n):
            start = time.perf_counter()
            a(xa)
            middle = time.perf_counter()
            b(xb)
            end = time.perf_counter()
            first_ms.append((middle - start) * 1e3)
            second_ms.append((end - middle) * 1e3)
        return first_ms, second_ms


def _cuda_timed_calls(module: nn.Module, x: Tensor, n: int) -> list[float]:
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    torch.cuda.synchronize()
    for start, end in zip(starts, ends, strict=True):
        start.record()
        module(x)
        end.record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) for start, end in zip(starts, ends, strict=True)]


def _cuda_timed_pairs(first: Case, second: Case, n: int) -> tuple[list[float], list[float]]:
    (a, xa), (b, xb) = first, second
    marks = [torch.cuda.Event(enable_timing=True) for _ in range(3 * n)]
    torch.cuda.synchronize()
    for k in range(n):
        marks[3 * k].record()
        a(xa)
        marks[3 * k + 1].record()
        b(xb)
        marks[3 * k + 2].record()
    torch.cuda.synchronize()
    return ([marks[3 * k].elapsed_time(marks[3 * k + 1]) for k in range(n)],
            [marks[3 * k + 1].elapsed_time(marks[3 * k + 2]) for k in range(n)])


def _first_conv_channels(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    raise ValueError("model has no Conv2d to infer its input channels from; pass in_channels")


def measure_child_latency(model: nn.Module, resolution: int, target: str, *, in_channels: int | None = None,
                          batch_size: int = 1, threads: int | None = 2, dtype: str = "float32",
                          channels_last: bool = True, repeats: int = 60, warmup: int = 10,
                          rounds: int = 4, statistic: str = "median", paired: bool = False,
                          unit_ms: float | None = None,
                          reference: Sequence[LayerSpec] | None = None) -> float:
    """End-to-end latency (ms) of one model on `target`, measured as the latency table measures.

    The model is copied, so the caller's module keeps its device, dtype and memory format.
    `paired` with a table's unit and reference (`measure["reference_ms"]`, `LatencyTable.reference_plan()`)
    counts in the table's unit, so the value compares with the table's prediction whatever speed the
    machine runs at now; without `reference`, pairs with the fixed network.
    """
    settings = MeasureSettings(target=target, batch_size=batch_size, threads=threads, dtype=dtype,
                               channels_last=channels_last, repeats=repeats, warmup=warmup, rounds=rounds,
                               statistic=statistic, paired=paired,
                               reference="fixed_network" if reference is None else "smallest_child")
    channels = in_channels if in_channels is not None else _first_conv_channels(model)
    with Measurer(settings) as measurer:
        if reference is not None:
            measurer.pair_with(reference)
        measurer.unit_ms = unit_ms
        return measurer.time_cases([measurer.case(copy.deepcopy(model), channels, resolution)])[0]
