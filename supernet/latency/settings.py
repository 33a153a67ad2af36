"""The latency settings, written once: the schema of `supernet lut build` and of search's `latency:` block.

`configs/lut.yaml` and the `latency:` block of `configs/search.yaml` only override these values; Python
callers get the same defaults from `latency_config(**overrides)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf

from supernet.config import ConfigError, conform, setting
from supernet.errors import SupernetError

TARGETS = ("cpu", "gpu")
RUNTIMES = ("onnxruntime", "torch", "tensorrt")
DEFAULT_RUNTIME = {"cpu": "onnxruntime", "gpu": "tensorrt"}  # runtime=auto: what deployment runs
PRECISIONS = ("auto", "float32", "float16", "bfloat16")
GRAPH_OPTIMIZATIONS = ("disabled", "basic", "extended", "all")


class LatencyError(SupernetError):
    """Any user-facing problem with latency measurement or a latency table."""


class LatencySettingsError(LatencyError):
    """A measurement option that is not valid, or a runtime that is not installed."""


class LatencyTableError(LatencyError):
    """A latency table file that is missing, corrupt, edited or of another format."""


class MissingEntryError(LatencyError):
    """An architecture needs a layer the table has no measurement for."""


class DeviceMismatchError(LatencyError):
    """A table measured on another device, runtime or settings used for measurement-dependent work."""


class TargetUnavailableError(LatencyError):
    """The requested target device is not present on this machine."""


@dataclass
class FitConfig:
    """Whole children that fit the block sums to end-to-end latency: max, min and `children` random ones."""

    children: int = setting(40, ge=2)
    held_out: float = setting(0.25, gt=0, le=0.9)  # share of the random children kept out of the fit
    seed: int = setting(0, ge=0)


@dataclass
class LatencyConfig:
    """What a latency table is measured with (all but the timing effort go into its fingerprint)."""

    target: str = setting("cpu", choices=TARGETS)  # set by --target
    runtime: str = setting("auto", choices=("auto", *RUNTIMES))  # auto: onnxruntime on cpu, tensorrt on gpu
    batch_size: int = setting(1, ge=1)  # of deployment: 1 for latency, e.g. 32 for throughput
    threads: int | None = setting(2, ge=1)  # CPU intra-op threads (null: the runtime's default)
    precision: str = setting("auto", choices=PRECISIONS)  # auto: float16 for tensorrt, float32 otherwise
    graph_optimization: str = setting("all", choices=GRAPH_OPTIMIZATIONS)  # onnxruntime's level
    channels_last: bool = True  # torch runtime: NHWC, the memory format it deploys best in
    cudnn_benchmark: bool = True  # torch runtime on GPU: every block has one shape, autotuning pays off
    repeats: int = setting(100, ge=1)  # timed calls per block and per child, in each sweep
    warmup: int = setting(10, ge=0)  # untimed calls before the first timed one
    rounds: int = setting(4, ge=1)  # interleaved passes over a group that the repeats are split into
    sweeps: int = setting(3, ge=1)  # the whole list measured this often, far apart in time
    statistic: str = "median"  # median | min | p<NN>: how one thing's samples become one number
    paired: bool = False  # time each call right after the space's smallest child, keep the ratio
    fit: FitConfig = setting(FitConfig())
    cache_dir: str = "luts"  # where a table goes without --out, named by fingerprint and space
    save_every_s: float = setting(5.0, gt=0)  # how often a build saves its progress for resume
    resolutions: list[int] | None = None  # measure only these input resolutions of the space (null: all)

    def __post_init__(self) -> None:
        percentile_of(self.statistic)

    @property
    def resolved_runtime(self) -> str:
        return DEFAULT_RUNTIME[self.target] if self.runtime == "auto" else self.runtime

    @property
    def resolved_precision(self) -> str:
        if self.precision != "auto":
            return self.precision
        return "float16" if self.resolved_runtime == "tensorrt" else "float32"

    @property
    def summary_statistic(self) -> str:
        """Paired ratios are summarised by their median (their noise is symmetric), plain times by
        `statistic`."""
        return "median" if self.paired else self.statistic


@dataclass
class LutConfig(LatencyConfig):
    """`supernet lut build`: the latency settings and the space to measure."""

    space: Any = None  # chosen in lut.yaml's defaults (configs/space/*.yaml)


def latency_config(node: Any = None, **overrides: Any) -> LatencyConfig:
    """A checked `LatencyConfig` from a mapping (a config section, a table's record) and overrides."""
    values = dict(OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node or {})
    values.pop("space", None)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return OmegaConf.to_object(conform(values, LatencyConfig, "latency"))  # type: ignore[return-value]
    except ConfigError as err:
        raise LatencySettingsError(str(err)) from err


def percentile_of(statistic: str) -> float:
    """The percentile a statistic name stands for: median -> 50, min -> 0, p10 -> 10."""
    named = {"median": 50.0, "min": 0.0}
    if statistic in named:
        return named[statistic]
    if isinstance(statistic, str) and statistic.startswith("p") and statistic[1:].isdigit():
        value = float(statistic[1:])
        if 0 <= value <= 100:
            return value
    raise LatencySettingsError(f"statistic={statistic!r}: choose 'median', 'min' or a percentile 'p<0-100>' "
                               "such as 'p10'")
