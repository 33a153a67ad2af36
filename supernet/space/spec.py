"""The static description of a search space, parsed from YAML with errors that name the bad key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from supernet.checks import is_int, is_number
from supernet.errors import SupernetError

ACTIVATIONS = ("relu", "hswish", "swish", "identity")


class SpaceError(SupernetError):
    """A search-space description that cannot be built."""


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor`, never dropping more than 10 % (MobileNet rule)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class StemSpec:
    channels: int
    kernel: int
    stride: int
    act: str


@dataclass(frozen=True)
class FixedBlockSpec:
    """A non-elastic inverted-residual block between the stem and the first elastic stage."""

    channels: int
    kernel: int
    expand: float
    stride: int
    se: bool
    act: str


@dataclass(frozen=True)
class StageSpec:
    channels: int
    stride: int
    se: bool
    act: str
    depths: tuple[int, ...]
    kernels: tuple[int, ...]
    expands: tuple[float, ...]
    widths: tuple[float, ...]

    @property
    def max_depth(self) -> int:
        return max(self.depths)


@dataclass(frozen=True)
class HeadSpec:
    channels: int  # final 1x1 expansion before pooling
    feature: int  # 1x1 feature-mix width after pooling (0: none)
    act: str
    dropout: float


def _require(node: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in node:
        raise SpaceError(f"space: missing key '{where}.{key}'" if where else f"space: missing key '{key}'")
    return node[key]


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpaceError(f"space: '{where}' must be a mapping of keys to values, got {value!r}")
    return value


def _positive_int(value: Any, where: str) -> int:
    if not is_int(value) or value <= 0:
        raise SpaceError(f"space: '{where}' must be a positive integer, got {value!r}")
    return value


def _non_negative_int(value: Any, where: str) -> int:
    if not is_int(value) or value < 0:
        raise SpaceError(f"space: '{where}' must be a non-negative integer (0: none), got {value!r}")
    return value


def _odd_kernel(value: Any, where: str) -> int:
    value = _positive_int(value, where)
    if value % 2 == 0:
        raise SpaceError(f"space: '{where}' must be an odd kernel size (1, 3, 5, 7, ...), got {value}")
    return value


def _stride(value: Any, where: str) -> int:
    if value not in (1, 2):
        raise SpaceError(f"space: '{where}' must be 1 or 2, got {value!r}")
    return value


def _act(value: Any, where: str) -> str:
    if value not in ACTIVATIONS:
        raise SpaceError(f"space: '{where}' must be one of {list(ACTIVATIONS)}, got {value!r}")
    return value


def _choices(value: Any, where: str, kind: type) -> tuple:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) == 0:
        raise SpaceError(f"space: '{where}' must be a non-empty list of choices, got {value!r}")
    out = []
    for v in value:
        if not is_number(v) or v <= 0:
            raise SpaceError(f"space: '{where}' choices must be positive numbers, got {v!r}")
        if kind is int and not float(v).is_integer():
            raise SpaceError(f"space: '{where}' choices must be integers, got {v!r}")
        out.append(kind(v))
    if len(set(out)) != len(out):
        raise SpaceError(f"space: '{where}' lists a choice twice: {value!r}")
    return tuple(sorted(out))


def _resolutions(value: Any) -> tuple[int, ...]:
    if isinstance(value, Mapping):
        _check_keys(value, _RANGE_KEYS, "resolutions.")
        lo, hi, step = (_positive_int(_require(value, k, "resolutions"), f"resolutions.{k}")
                        for k in ("min", "max", "step"))
        if hi < lo:
            raise SpaceError(f"space: 'resolutions.max' ({hi}) is below 'resolutions.min' ({lo})")
        return tuple(range(lo, hi + 1, step))
    return _choices(value, "resolutions", int)


_TOP_KEYS = {"name", "in_channels", "num_classes", "divisor", "resolutions", "stem", "first_block", "stages",
             "choices", "head", "kernel_transform", "se_reduction"}
_STAGE_KEYS = {"channels", "stride", "se", "act", "kernel", "expand", "depth", "width"}
_CHOICE_KEYS = {"kernel", "expand", "depth", "width"}
_STEM_KEYS = {"channels", "kernel", "stride", "act"}
_FIRST_BLOCK_KEYS = {"channels", "kernel", "expand", "stride", "se", "act"}
_HEAD_KEYS = {"channels", "feature", "act", "dropout"}
_RANGE_KEYS = {"min", "max", "step"}


def _check_keys(node: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(node) - allowed)
    if unknown:
        raise SpaceError(f"space: unknown key '{where}{unknown[0]}'; allowed: {sorted(allowed)}")


@dataclass(frozen=True)
class SpaceSpec:
    name: str
    in_channels: int
    num_classes: int
    divisor: int
    resolutions: tuple[int, ...]
    stem: StemSpec
    first_block: FixedBlockSpec | None
    stages: tuple[StageSpec, ...]
    head: HeadSpec
    kernel_transform: bool
    se_reduction: int

    @classmethod
    def from_dict(cls, node: Mapping[str, Any]) -> SpaceSpec:
        _check_keys(node, _TOP_KEYS, "")
        choices = _mapping(_require(node, "choices", ""), "choices")
        _check_keys(choices, _CHOICE_KEYS, "choices.")
        stem_node = _mapping(_require(node, "stem", ""), "stem")
        _check_keys(stem_node, _STEM_KEYS, "stem.")
        stem = StemSpec(
            channels=_positive_int(_require(stem_node, "channels", "stem"), "stem.channels"),
            kernel=_odd_kernel(stem_node.get("kernel", 3), "stem.kernel"),
            stride=_stride(stem_node.get("stride", 2), "stem.stride"),
            act=_act(stem_node.get("act", "relu"), "stem.act"),
        )
        first_block = None
        if node.get("first_block"):
            fb = _mapping(node["first_block"], "first_block")
            _check_keys(fb, _FIRST_BLOCK_KEYS, "first_block.")
            first_block = FixedBlockSpec(
                channels=_positive_int(_require(fb, "channels", "first_block"), "first_block.channels"),
                kernel=_odd_kernel(fb.get("kernel", 3), "first_block.kernel"),
                expand=float(fb.get("expand", 1)),
                stride=_stride(fb.get("stride", 1), "first_block.stride"),
                se=bool(fb.get("se", False)),
                act=_act(fb.get("act", "relu"), "first_block.act"),
            )
        stages_node = _require(node, "stages", "")
        if not isinstance(stages_node, Sequence) or len(stages_node) == 0:
            raise SpaceError("space: 'stages' must be a non-empty list of stages")
        stages = []
        for i, s in enumerate(stages_node):
            where = f"stages[{i}]"
            _check_keys(_mapping(s, where), _STAGE_KEYS, f"{where}.")

            def pick(key: str, kind: type, s: Mapping[str, Any] = s, where: str = where) -> tuple[tuple, str]:
                """The stage's own choices for `key`, else the shared ones; and where they were read."""
                if key in s:
                    return _choices(s[key], f"{where}.{key}", kind), f"{where}.{key}"
                return _choices(_require(choices, key, "choices"), f"choices.{key}", kind), f"choices.{key}"

            kernels, kernels_at = pick("kernel", int)
            for k in kernels:
                _odd_kernel(k, kernels_at)
            stages.append(StageSpec(
                channels=_positive_int(_require(s, "channels", where), f"{where}.channels"),
                stride=_stride(s.get("stride", 1), f"{where}.stride"),
                se=bool(s.get("se", False)),
                act=_act(s.get("act", "relu"), f"{where}.act"),
                depths=pick("depth", int)[0],
                kernels=kernels,
                expands=pick("expand", float)[0],
                widths=pick("width", float)[0],
            ))
        head_node = _mapping(_require(node, "head", ""), "head")
        _check_keys(head_node, _HEAD_KEYS, "head.")
        dropout = float(head_node.get("dropout", 0.0))
        if not 0.0 <= dropout < 1.0:
            raise SpaceError(f"space: 'head.dropout' must be in [0, 1), got {dropout}")
        head = HeadSpec(
            channels=_positive_int(_require(head_node, "channels", "head"), "head.channels"),
            feature=_non_negative_int(head_node.get("feature", 0), "head.feature"),
            act=_act(head_node.get("act", "hswish"), "head.act"),
            dropout=dropout,
        )
        spec = cls(
            name=str(node.get("name", "custom")),
            in_channels=_positive_int(node.get("in_channels", 3), "in_channels"),
            num_classes=_positive_int(node.get("num_classes", 1000), "num_classes"),
            divisor=_positive_int(node.get("divisor", 8), "divisor"),
            resolutions=_resolutions(_require(node, "resolutions", "")),
            stem=stem,
            first_block=first_block,
            stages=tuple(stages),
            head=head,
            kernel_transform=bool(node.get("kernel_transform", True)),
            se_reduction=_positive_int(node.get("se_reduction", 4), "se_reduction"),
        )
        spec._check_widths()
        return spec

    def _check_widths(self) -> None:
        for i, stage in enumerate(self.stages):
            channels = [make_divisible(stage.channels * w, self.divisor) for w in stage.widths]
            if len(set(channels)) != len(channels):
                raise SpaceError(
                    f"space: 'stages[{i}].width' choices {list(stage.widths)} give the same channel counts "
                    f"{channels} after rounding to multiples of {self.divisor}; drop one or change 'divisor'")
