"""`LatencyTable`: measured block latencies of one space on one device, and the calibrated prediction.

The file is JSON:

    {"format": "supernet-latency-table", "version": 1,
     "fingerprint": {...},                       # see supernet.latency.fingerprint
     "space": {"name", "hash", "spec"},          # the (possibly resolution-restricted) space it covers
     "measure": {"repeats", "warmup", "rounds", "sweeps", "statistic", "paired", "reference",
                 "reference_ms"},                # the unit of paired timing (paired tables only)
     "entries": {LayerSpec.key(): ms, ...},
     "calibration": {"fit": {...}, "candidates": {...}, "held_out": {error report}, "children": [...]},
     "meta": {"created", "build_s", ...}}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supernet.latency.calibrate import Calibration
from supernet.latency.errors import DeviceMismatchError, LatencyTableError, MissingEntryError
from supernet.latency.fingerprint import Fingerprint, describe, differences, fingerprint_id
from supernet.latency.keys import reachable_layers
from supernet.latency.reference import smallest_child_plan
from supernet.latency.space_io import space_hash, space_to_dict
from supernet.run.files import atomic_write_text
from supernet.space import Arch, LayerSpec, SearchSpace, SpaceError

FORMAT = "supernet-latency-table"
VERSION = 1
_CACHE_LIMIT = 200_000  # archs whose (raw sum, layer count) are kept; a search evaluates far fewer


@dataclass
class LatencyTable:
    fingerprint: Fingerprint
    space: SearchSpace
    entries: dict[str, float]
    calibration: Calibration = field(default_factory=Calibration)
    calibration_report: dict[str, Any] = field(default_factory=dict)
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

    def reference_plan(self) -> list[LayerSpec] | None:
        """The child that paired timing compared everything with, or None (unpaired, or the fixed network)."""
        if self.measure.get("paired") and self.measure.get("reference") == "smallest_child":
            return smallest_child_plan(self.space)
        return None

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
        """The uncalibrated sum of the child's block latencies (ms)."""
        return self._sum(arch)[0]

    def predict(self, arch: Arch) -> float:
        """Predicted end-to-end latency of the child (ms): the block sum through the calibration fit."""
        raw_ms, n_layers = self._sum(arch)
        return self.calibration.apply(raw_ms, n_layers, arch.resolution)

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
        """Refuse measurement-dependent work with a table from another device or other settings."""
        diff = differences(self.fingerprint, current)
        if diff:
            raise DeviceMismatchError(
                f"table {self.name} was built on {describe(self.fingerprint)}; this machine is "
                f"{describe(current)} (differs in {'; '.join(diff)}). Predicting is allowed, "
                "measuring-dependent steps are not: build a table here with `supernet lut build`")

    # ----- file form
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "fingerprint": self.fingerprint,
            "fingerprint_id": self.fingerprint_id,
            "space": {"name": self.space.name, "hash": space_hash(self.space.spec),
                      "spec": space_to_dict(self.space.spec)},
            "measure": self.measure,
            "entries": dict(sorted(self.entries.items())),
            "calibration": {"fit": self.calibration.to_json(), **self.calibration_report},
            "meta": self.meta,
        }

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
        try:
            entries = {str(k): float(v) for k, v in data["entries"].items()}
            bad = [k for k, v in entries.items() if not (math.isfinite(v) and v > 0)]
            if bad:
                raise LatencyTableError(f"latency table {path}: entry {bad[0]} is not a positive latency")
            calibration = dict(data["calibration"])
            table = cls(
                fingerprint=dict(data["fingerprint"]),
                space=SearchSpace.from_dict(data["space"]["spec"]),
                entries=entries,
                calibration=Calibration.from_json(calibration.pop("fit")),
                calibration_report=calibration,
                measure=dict(data.get("measure", {})),
                meta=dict(data.get("meta", {})),
                path=path,
            )
        except LatencyTableError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, SpaceError) as err:
            raise LatencyTableError(f"latency table {path} is damaged: missing or mistyped field ({err!r}); "
                                    "rebuild it with `supernet lut build`") from err
        return table
