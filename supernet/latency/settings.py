"""How blocks are timed: target, batch, threads, dtype, memory format and the number of repeats."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

from supernet.latency.errors import LatencySettingsError, TargetUnavailableError

TARGETS = ("cpu", "gpu")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
REFERENCES = ("smallest_child", "fixed_network")


@dataclass(frozen=True)
class MeasureSettings:
    """Everything that changes a measured latency, plus how hard to measure it.

    `rounds`: the repeats of each block are split into this many passes over a group of blocks, so a burst of
    load from another process spreads over many blocks instead of spoiling all samples of one.
    `sweeps`: the whole list of blocks (or children) is measured this many times, far apart in time, and
    the values combined with `statistic` (see `supernet.latency.sweeps`).
    `statistic`: how the samples of one block become one number: "median", "min", or a low percentile
    "p<NN>" (e.g. "p10"). The median is right on a quiet device; on a CPU shared with other work, most
    samples are delayed and a low percentile is what estimates the undisturbed latency.
    `paired`: call a reference network right before every timed call and keep the ratio of the two, so
    that the machine's speed of the moment cancels. A thing's value is then the median of its ratios times
    the reference's latency (`statistic` of its samples), one unit per table (see
    `supernet.latency.build`). Costs one reference call per timed call; pays off wherever the speed wanders.
    `reference`: what paired timing calls (see `supernet.latency.reference`): "smallest_child", the
    smallest child of the space being measured, which slows down and speeds up with the machine most
    like the blocks and children do; or "fixed_network", one small network for every space, cheaper
    where the space's smallest child is slow.
    """

    target: str = "cpu"
    batch_size: int = 1
    threads: int | None = 2  # CPU intra-op threads; ignored on GPU
    dtype: str = "float32"
    channels_last: bool = True
    repeats: int = 60
    warmup: int = 10
    rounds: int = 4
    statistic: str = "median"
    sweeps: int = 2
    paired: bool = False
    reference: str = "smallest_child"
    cudnn_benchmark: bool = True  # GPU only: every block has one fixed shape, so autotuning pays off

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise LatencySettingsError(f"target {self.target!r} is not one of {list(TARGETS)}")
        if self.dtype not in DTYPES:
            raise LatencySettingsError(f"dtype {self.dtype!r} is not one of {list(DTYPES)}")
        for name in ("batch_size", "repeats", "rounds", "sweeps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LatencySettingsError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise LatencySettingsError(f"warmup must be a non-negative integer, got {self.warmup!r}")
        percentile_of(self.statistic)
        if not isinstance(self.paired, bool):
            raise LatencySettingsError(f"paired must be true or false, got {self.paired!r}")
        if self.reference not in REFERENCES:
            raise LatencySettingsError(f"reference {self.reference!r} is not one of {list(REFERENCES)}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise LatencySettingsError(f"threads must be a positive integer or null, got {self.threads!r}")

    @classmethod
    def from_mapping(cls, node: Mapping[str, Any], **overrides: Any) -> MeasureSettings:
        """Pick this class's fields out of a config mapping (unknown keys are left to the caller)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in node.items() if k in names}
        values.update(overrides)
        return cls(**values)

    @property
    def summary_statistic(self) -> str:
        """How one thing's values are summarized: paired ratios by the median, plain times by `statistic`."""
        return "median" if self.paired else self.statistic

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def memory_format(self) -> str:
        return "channels_last" if self.channels_last else "contiguous"

    @property
    def device(self) -> torch.device:
        return torch.device("cuda" if self.target == "gpu" else "cpu")


def percentile_of(statistic: str) -> float:
    """The percentile a statistic name stands for: median -> 50, min -> 0, p10 -> 10."""
    named = {"median": 50.0, "min": 0.0}
    if statistic in named:
        return named[statistic]
    if isinstance(statistic, str) and statistic.startswith("p") and statistic[1:].isdigit():
        value = float(statistic[1:])
        if 0 <= value <= 100:
            return value
    raise LatencySettingsError(f"statistic {statistic!r} is not 'median', 'min' or a percentile 'p<0-100>' "
                               "such as 'p10'")


def require_target(target: str) -> None:
    """Raise the one-line explanation when `target` cannot be measured on this machine."""
    if target == "gpu" and not torch.cuda.is_available():
        raise TargetUnavailableError(
            "--target gpu: no CUDA device on this machine; build the table on the GPU machine "
            "(`supernet lut build --target gpu` there) and pass the file to search with `--lut FILE`")
