"""`Arch`: one child of the supernet, as a frozen value with a compact string and a JSON form.

String form, one dash-separated field per part:

    r128-w1:k3e4,k5e6-w0.75:k7e3,k3e3,k3e6

`r<resolution>`, then one field per elastic stage: `w<width multiplier>:` followed by one `k<kernel>e<expand>`
per active block. The stage depth is the number of blocks listed. Numbers are written with the shortest
form that reads back to the same float, so string -> Arch -> string is the identity.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from supernet.checks import is_int, is_number
from supernet.errors import SupernetError


class ArchError(SupernetError):
    """An architecture string, JSON object or value that is not a valid child of its space."""


def _num(x: float) -> str:
    return f"{int(x)}" if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True, slots=True)
class BlockChoice:
    kernel: int
    expand: float

    def __str__(self) -> str:
        return f"k{self.kernel}e{_num(self.expand)}"


@dataclass(frozen=True, slots=True)
class StageChoice:
    width: float
    blocks: tuple[BlockChoice, ...]

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def __str__(self) -> str:
        return f"w{_num(self.width)}:" + ",".join(str(b) for b in self.blocks)


_BLOCK_RE = re.compile(r"^k(\d+)e(\d+(?:\.\d+)?)$")
_STAGE_RE = re.compile(r"^w(\d+(?:\.\d+)?):(.+)$")
_RES_RE = re.compile(r"^r(\d+)$")


@dataclass(frozen=True, slots=True)
class Arch:
    resolution: int
    stages: tuple[StageChoice, ...]

    # ----- derived views, used by predictors, tables and logs
    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(s.depth for s in self.stages)

    @property
    def widths(self) -> tuple[float, ...]:
        return tuple(s.width for s in self.stages)

    @property
    def kernels(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(b.kernel for b in s.blocks) for s in self.stages)

    @property
    def expands(self) -> tuple[tuple[float, ...], ...]:
        return tuple(tuple(b.expand for b in s.blocks) for s in self.stages)

    # ----- string form
    def __str__(self) -> str:
        return "-".join([f"r{self.resolution}", *(str(s) for s in self.stages)])

    @classmethod
    def parse(cls, text: str) -> Arch:
        if not isinstance(text, str):
            raise ArchError(f"an arch string is text like 'r128-w1:k3e4,k5e6', got {type(text).__name__}")
        parts = text.strip().split("-")
        match = _RES_RE.match(parts[0])
        if match is None:
            raise ArchError(f"arch string {text!r}: expected it to start with r<resolution>, "
                            "e.g. r128-w1:k3e4")
        if len(parts) < 2:
            raise ArchError(f"arch string {text!r}: no stages after the resolution")
        stages = []
        for i, part in enumerate(parts[1:]):
            stage = _STAGE_RE.match(part)
            if stage is None:
                raise ArchError(f"arch string {text!r}: stage {i} {part!r} is not "
                                "w<width>:k<kernel>e<expand>,...")
            blocks = []
            for token in stage.group(2).split(","):
                block = _BLOCK_RE.match(token)
                if block is None:
                    raise ArchError(f"arch string {text!r}: stage {i} block {token!r} is not "
                                    "k<kernel>e<expand>")
                blocks.append(BlockChoice(int(block.group(1)), float(block.group(2))))
            stages.append(StageChoice(float(stage.group(1)), tuple(blocks)))
        return cls(int(match.group(1)), tuple(stages))

    # ----- JSON form
    def to_json(self) -> dict[str, Any]:
        return {
            "resolution": self.resolution,
            "stages": [
                {"width": s.width, "kernels": [b.kernel for b in s.blocks],
                 "expands": [b.expand for b in s.blocks]}
                for s in self.stages
            ],
        }

    @classmethod
    def from_json(cls, data: Any) -> Arch:
        """The inverse of `to_json`; a missing or mistyped field raises `ArchError` naming it."""
        node = _json_object(data, "arch JSON", {"resolution", "stages"})
        resolution = _json_int(node["resolution"], "arch JSON 'resolution'")
        stages_node = node["stages"]
        if not isinstance(stages_node, list) or not stages_node:
            raise ArchError(f"arch JSON 'stages' must be a non-empty list of stages, got {stages_node!r}")
        stages = []
        for i, s in enumerate(stages_node):
            where = f"arch JSON 'stages[{i}]"
            stage = _json_object(s, where + "'", {"width", "kernels", "expands"})
            kernels, expands = stage["kernels"], stage["expands"]
            for key, values in (("kernels", kernels), ("expands", expands)):
                if not isinstance(values, list) or not values:
                    raise ArchError(f"{where}.{key}' must be a non-empty list (one entry per block), "
                                    f"got {values!r}")
            if len(kernels) != len(expands):
                raise ArchError(f"{where}': {len(kernels)} kernels but {len(expands)} expands; "
                                "give one of each per block")
            blocks = tuple(BlockChoice(_json_int(k, f"{where}.kernels[{j}]'"),
                                       _json_number(e, f"{where}.expands[{j}]'"))
                           for j, (k, e) in enumerate(zip(kernels, expands, strict=True)))
            stages.append(StageChoice(_json_number(stage["width"], f"{where}.width'"), blocks))
        return cls(resolution, tuple(stages))

    @classmethod
    def loads(cls, text: str) -> Arch:
        """The inverse of `dumps`."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, TypeError) as err:
            raise ArchError(f"arch JSON text is not valid JSON ({err})") from err
        return cls.from_json(data)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    @property
    def id(self) -> str:
        """A short stable identifier (for directory names and cache keys)."""
        return hashlib.sha1(str(self).encode()).hexdigest()[:12]


def _json_object(data: Any, where: str, keys: set[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ArchError(f"{where} must be an object with keys {sorted(keys)}, got {data!r}")
    # Other keys are allowed: files such as an export's arch.json carry the string form and id beside.
    missing = sorted(keys - set(data))
    if missing:
        raise ArchError(f"{where} is missing key '{missing[0]}'; expected keys {sorted(keys)}")
    return data


def _json_int(value: Any, where: str) -> int:
    if not is_int(value):
        raise ArchError(f"{where} must be an integer, got {value!r}")
    return value


def _json_number(value: Any, where: str) -> float:
    if not is_number(value):
        raise ArchError(f"{where} must be a number, got {value!r}")
    return float(value)
