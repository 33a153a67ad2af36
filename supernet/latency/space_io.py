"""A search space as plain data inside a table file, and its restriction to some input resolutions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from supernet.latency.errors import LatencySettingsError
from supernet.space import SearchSpace, SpaceSpec


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
