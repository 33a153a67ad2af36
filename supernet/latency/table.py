"""`LatencyTable`: block latencies of one space measured in one runtime on one device, and the fitted
prediction of whole children; its device fingerprint and its file.

The file is JSON:

    {"format": "supernet-latency-table", "version": 2,
     "fingerprint": {...},                  # device, runtime, its version and providers, precision, batch
     "space": {"name", "hash", "spec"},     # the (possibly resolution-restricted) space it covers
     "measure": {"repeats", ..., "paired", "reference_ms"},  # timing effort; the unit of paired timing
     "entries": {LayerSpec.key(): ms, ...},
     "fit": {"form", "a", "b", "c", "offsets", "candidates_loo_mape_pct", "held_out", "children", ...},
     "meta": {"created", "build_s", ...},
     "digest": sha256 of all of the above}  # a table edited by hand is refused on load
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from supernet.latency.settings import (
    DeviceMismatchError,
    LatencySettingsError,
    LatencyTableError,
    MissingEntryError,
)
from supernet.run.files import atomic_write_text
from supernet.space import Arch, LayerSpec, SearchSpace, SpaceError, SpaceSpec
from supernet.space.coverage import covering_archs

FORMAT = "supernet-latency-table"
VERSION = 2
_CACHE_LIMIT = 200_000  # archs whose (raw sum, layer count) are kept; a search evaluates far fewer

Fingerprint = dict[str, Any]


# ----- the fingerprint: what a table was measured on and with
def fingerprint_id(fingerprint: Fingerprint) -> str:
    """A short stable id, e.g. 'cpu-onnxruntime-1a2b3c4d5e', used to name cached tables."""
    digest = hashlib.sha1(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:10]
    return f"{fingerprint.get('target', 'dev')}-{fingerprint.get('runtime', 'torch')}-{digest}"


def describe(fingerprint: Fingerprint) -> str:
    """One readable line: device, runtime and the settings that change a latency."""
    parts = [f"{fingerprint.get('target')} '{fingerprint.get('device')}'",
             f"{fingerprint.get('runtime')} {fingerprint.get('runtime_version')}"]
    if fingerprint.get("providers"):
        parts.append("providers " + "+".join(fingerprint["providers"]))
    if fingerprint.get("graph_optimization"):
        parts.append(f"graph optimization {fingerprint['graph_optimization']}")
    if fingerprint.get("threads") is not None:
        parts.append(f"threads={fingerprint['threads']}")
    parts.append(f"batch={fingerprint.get('batch_size')} {fingerprint.get('precision')}")
    if fingerprint.get("memory_format"):
        parts.append(str(fingerprint["memory_format"]))
    return ", ".join(parts)


def differences(built: Fingerprint, here: Fingerprint) -> list[str]:
    """The fields that differ, as 'field: built vs here'."""
    return [f"{k}: {built.get(k)!r} vs {here.get(k)!r}" for k in sorted(set(built) | set(here))
            if built.get(k) != here.get(k)]


# ----- the space inside a table
def space_to_dict(spec: SpaceSpec) -> dict[str, Any]:
    """The YAML-shaped dict that `SpaceSpec.from_dict` reads back to an equal spec."""
    fb = spec.first_block
    return {
        "name": spec.name,
        "in_channels": spec.in_channels,
        "num_classes": spec.num_classes,
        "divisor": spec.divisor,
        "resolutions": list(spec.resolutions),
        "kernel_transform": spec.kernel_transform,
        "se_reduction": spec.se_reduction,
        "stem": {"channels": spec.stem.channels, "kernel": spec.stem.kernel, "stride": spec.stem.stride,
                 "act": spec.stem.act},
        "first_block": None if fb is None else {
            "channels": fb.channels, "kernel": fb.kernel, "expand": fb.expand, "stride": fb.stride,
            "se": fb.se, "act": fb.act},
        "choices": {},
        "stages": [
            {"channels": s.channels, "stride": s.stride, "se": s.se, "act": s.act, "depth": list(s.depths),
             "kernel": list(s.kernels), "expand": list(s.expands), "width": list(s.widths)}
            for s in spec.stages
        ],
        "head": {"channels": spec.head.channels, "feature": spec.head.feature, "act": spec.head.act,
                 "dropout": spec.head.dropout},
    }


def space_hash(spec: SpaceSpec) -> str:
    return hashlib.sha256(json.dumps(space_to_dict(spec), sort_keys=True).encode()).hexdigest()[:12]


def space_tag(space: SearchSpace) -> str:
    """Name plus hash: two spaces called 'small' that differ (resolutions, classes) never share a file."""
    return f"{space.name}-{space_hash(space.spec)}"


def restrict_resolutions(space: SearchSpace, resolutions: Sequence[int] | None) -> SearchSpace:
    """The same space with only some of its input resolutions (to measure a large space in parts)."""
    if not resolutions:
        return space
    wanted = sorted({int(r) for r in resolutions})
    outside = [r for r in wanted if r not in space.spec.resolutions]
    if outside:
        raise LatencySettingsError(
            f"resolutions={wanted}: {outside} not in space '{space.name}', whose resolutions are "
            f"{list(space.spec.resolutions)}")
    return SearchSpace(replace(space.spec, resolutions=tuple(wanted)))


def reachable_layers(space: SearchSpace) -> list[LayerSpec]:
    """Every distinct layer any child can contain, in a stable order: the layers of the children that
    cover the space (`supernet.space.coverage`), so the table's keys can never drift from `space.layers`."""
    found: dict[LayerSpec, None] = {}
    for arch in covering_archs(space):
        found.update(dict.fromkeys(space.layers(arch)))
    return list(found)


# ----- from block sum to a child's latency
@dataclass(frozen=True)
class Fit:
    """measured ≈ a * block sum + b * layers + c (or + an offset per input resolution)."""

    form: str = "sum"
    a: float = 1.0
    b: float = 0.0
    c: float = 0.0
    offsets: tuple[tuple[int, float], ...] = ()  # (resolution, offset ms) of the per-resolution form
    _by_resolution: dict[int, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_resolution", dict(self.offsets))  # apply runs inside the search loop

    def apply(self, raw_ms: float, n_layers: int, resolution: int | None = None) -> float:
        offset = self.c
        if self._by_resolution:
            if resolution not in self._by_resolution:
                raise ValueError(f"latency fit has offsets for resolutions {sorted(self._by_resolution)}, "
                                 f"not {resolution}")
            offset = self._by_resolution[resolution]
        return self.a * raw_ms + self.b * n_layers + offset

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"form": self.form, "a": self.a, "b": self.b, "c": self.c}
        if self.offsets:
            data["offsets"] = {str(r): c for r, c in self.offsets}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fit:
        offsets = tuple(sorted((int(r), float(c)) for r, c in data.get("offsets", {}).items()))
        return cls(str(data["form"]), float(data["a"]), float(data["b"]), float(data["c"]), offsets)


@dataclass
class LatencyTable:
    fingerprint: Fingerprint
    space: SearchSpace
    entries: dict[str, float]
    fit: Fit = field(default_factory=Fit)
    fit_report: dict[str, Any] = field(default_factory=dict)
    measure: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        # LayerSpec is a frozen dataclass: hashing it is cheaper than formatting its text key per layer
        self._by_layer: dict[LayerSpec, float] = {LayerSpec.from_key(k): v for k, v in self.entries.items()}
        self._plans: dict[Arch, tuple[float, int]] = {}

    @property
    def name(self) -> str:
        return str(self.path) if self.path else f"latency table of space '{self.space.name}'"

    @property
    def fingerprint_id(self) -> str:
        return fingerprint_id(self.fingerprint)

    @property
    def runtime(self) -> str:
        return str(self.fingerprint.get("runtime"))

    @property
    def digest(self) -> str:
        """sha256 of the table's content (everything its file holds but the digest itself)."""
        return _digest(self._content())

    # ----- prediction
    def _sum(self, arch: Arch) -> tuple[float, int]:
        cached = self._plans.get(arch)
        if cached is not None:
            return cached
        total = 0.0
        layers = self.space.layers(arch)
        for layer in layers:
            ms = self._by_layer.get(layer)
            if ms is None:
                raise MissingEntryError(
                    f"{self.name} has no entry for layer {layer.key()} (needed by arch {arch}); it covers "
                    f"space '{self.space.name}' at resolutions {list(self.space.spec.resolutions)}: build a "
                    "table for this space with `supernet lut build`")
            total += ms
        if len(self._plans) >= _CACHE_LIMIT:
            self._plans.clear()
        self._plans[arch] = (total, len(layers))
        return total, len(layers)

    def predict_raw(self, arch: Arch) -> float:
        """The sum of the child's block latencies (ms), before the fit."""
        return self._sum(arch)[0]

    def predict(self, arch: Arch) -> float:
        """Predicted end-to-end latency of the child (ms): the block sum through the fit."""
        raw_ms, n_layers = self._sum(arch)
        return self.fit.apply(raw_ms, n_layers, arch.resolution)

    def n_layers(self, arch: Arch) -> int:
        return self._sum(arch)[1]

    # ----- coverage and device checks
    def missing_keys(self, space: SearchSpace) -> list[str]:
        return [layer.key() for layer in reachable_layers(space) if layer not in self._by_layer]

    def require_covers(self, space: SearchSpace) -> None:
        """Raise naming a missing layer if some child of `space` cannot be predicted from this table."""
        missing = self.missing_keys(space)
        if missing:
            raise MissingEntryError(
                f"{self.name} does not cover space '{space.name}': {len(missing)} layers have no entry, e.g. "
                f"{missing[0]}; build a table for this space with `supernet lut build`")

    def check_device(self, current: Fingerprint) -> None:
        """Refuse measurement-dependent work with a table of another device, runtime or settings."""
        diff = differences(self.fingerprint, current)
        if diff:
            raise DeviceMismatchError(
                f"table {self.name} was measured on {describe(self.fingerprint)}; here it would be "
                f"{describe(current)} (differs in {'; '.join(diff)}). Predicting is allowed, "
                "measuring-dependent steps are not: build a table here with `supernet lut build`")

    # ----- file form
    def _content(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "fingerprint": self.fingerprint,
            "fingerprint_id": self.fingerprint_id,
            "space": {"name": self.space.name, "hash": space_hash(self.space.spec),
                      "spec": space_to_dict(self.space.spec)},
            "measure": self.measure,
            "entries": dict(sorted(self.entries.items())),
            "fit": {**self.fit.to_json(), **self.fit_report},
            "meta": self.meta,
        }

    def to_json(self) -> dict[str, Any]:
        content = self._content()
        return {**content, "digest": _digest(content)}

    def save(self, path: Path) -> None:
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_json(), indent=1) + "\n")
        self.path = path

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        path = Path(path)
        if not path.is_file():
            raise LatencyTableError(f"no latency table at {path}: build one with `supernet lut build`")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise LatencyTableError(f"latency table {path} is corrupt or truncated ({err}); rebuild it with "
                                    "`supernet lut build`") from err
        return cls.from_json(data, path)

    @classmethod
    def from_json(cls, data: Any, path: Path) -> LatencyTable:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise LatencyTableError(f"{path} is not a latency table (no \"format\": \"{FORMAT}\")")
        if data.get("version") != VERSION:
            raise LatencyTableError(f"latency table {path} has format version {data.get('version')!r}; this "
                                    f"version of supernet reads version {VERSION}: rebuild it")
        content = {k: v for k, v in data.items() if k != "digest"}
        if data.get("digest") != _digest(content):
            raise LatencyTableError(f"latency table {path}: its content does not match its digest (edited by "
                                    "hand or damaged); rebuild it with `supernet lut build`")
        try:
            entries = {str(k): float(v) for k, v in data["entries"].items()}
            bad = [k for k, v in entries.items() if not (math.isfinite(v) and v > 0)]
            if bad:
                raise LatencyTableError(f"latency table {path}: entry {bad[0]} is not a positive latency")
            report = dict(data["fit"])
            fit = Fit.from_json(report)
            for key in ("form", "a", "b", "c", "offsets"):
                report.pop(key, None)
            table = cls(fingerprint=dict(data["fingerprint"]),
                        space=SearchSpace.from_dict(data["space"]["spec"]), entries=entries, fit=fit,
                        fit_report=report, measure=dict(data.get("measure", {})),
                        meta=dict(data.get("meta", {})), path=path)
        except LatencyTableError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, SpaceError) as err:
            raise LatencyTableError(f"latency table {path} is damaged: missing or mistyped field ({err!r}); "
                                    "rebuild it with `supernet lut build`") from err
        if data["space"].get("name") != table.space.name or data["space"].get("hash") != space_hash(
                table.space.spec):
            raise LatencyTableError(f"latency table {path}: its space name or hash does not match its spec; "
                                    "rebuild it with `supernet lut build`")
        return table


def _digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
