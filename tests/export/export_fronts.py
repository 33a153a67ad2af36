"""Hand-written Pareto fronts in the format `supernet search` writes (sorted by predicted latency)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from supernet.space import Arch, SearchSpace


def front_archs(space: SearchSpace) -> list[Arch]:
    """Three distinct children: the min, one sampled at the lowest resolution, the max."""
    mid = space.sample(random.Random(3))
    mid = Arch(min(space.spec.resolutions), mid.stages)
    return [space.min(), mid, space.max()]


def write_front(search_dir: Path, space: SearchSpace, target: str = "cpu",
                accuracies: tuple[float, ...] = (0.61, 0.74, 0.72),
                latencies: tuple[float, ...] = (1.5, 2.5, 4.0)) -> list[Arch]:
    archs = front_archs(space)
    front = [{"arch": str(a), "arch_json": a.to_json(), "accuracy": acc, "latency_ms": lat,
              "latency_ms_measured": None, "params": space.params(a), "flops": space.flops(a)}
             for a, acc, lat in zip(archs, accuracies, latencies, strict=True)]
    search_dir.mkdir(parents=True, exist_ok=True)
    (search_dir / "pareto.json").write_text(json.dumps(
        {"target": target, "lut": None, "objectives": ["accuracy", "latency_ms"], "front": front}))
    return archs
