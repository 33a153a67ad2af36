"""Shared by the latency tests: a tiny space (2 stages, resolutions 16 and 24) and a stand-in measurer."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from supernet.latency import latency_config
from supernet.space import LayerSpec

TINY_SPACE = {
    "name": "tiny",
    "in_channels": 1,
    "num_classes": 4,
    "divisor": 4,
    "resolutions": [16, 24],
    "stem": {"channels": 8, "kernel": 3, "stride": 2, "act": "relu"},
    "first_block": {"channels": 8, "kernel": 3, "expand": 1, "stride": 1, "se": False, "act": "relu"},
    "choices": {"kernel": [3, 5], "expand": [2, 3], "depth": [1, 2], "width": [0.5, 1.0]},
    "stages": [
        {"channels": 16, "stride": 2, "se": False, "act": "relu"},
        {"channels": 24, "stride": 2, "se": True, "act": "hswish"},
    ],
    "head": {"channels": 32, "feature": 48, "act": "hswish", "dropout": 0.0},
}

# the stand-in's child latency: a known affine function of its block sum
CHILD_SCALE, CHILD_OFFSET = 1.2, 0.05


def fake_layer_ms(layer: LayerSpec) -> float:
    return 0.01 + 1e-6 * layer.flops()


class FakeMeasurer:
    """Timings without timing: layer ms from FLOPs, child ms = CHILD_SCALE * block sum + CHILD_OFFSET.

    Counts what it is asked to measure; `interrupt_after` raises KeyboardInterrupt at the start of that call
    (0-based, over both kinds of calls), as Ctrl-C between two groups would. `reference_now_ms`, where a
    test plays paired timing, is the reference latency each group reports.
    """

    def __init__(self, device: str = "test cpu", interrupt_after: int | None = None,
                 error: type[BaseException] = KeyboardInterrupt, **settings):
        self.cfg = latency_config(threads=1, repeats=1, warmup=0, rounds=1, sweeps=2,
                                  fit={"children": 12}, **settings)
        self.device = device
        self.interrupt_after, self.error = interrupt_after, error
        self.calls = 0
        self.export_s = 0.0
        self.reference_now_ms: float | None = None
        self.reference_samples: list[float] = []
        self.reference_plan: list[LayerSpec] | None = None
        self.layers: Counter[str] = Counter()
        self.children: Counter[tuple[str, ...]] = Counter()

    def fingerprint(self) -> dict:
        return {"target": "cpu", "device": self.device, "torch": "test", "runtime": "onnxruntime",
                "runtime_version": "test", "providers": ["CPUExecutionProvider"], "graph_optimization": "all",
                "threads": 1, "batch_size": 1, "precision": "float32"}

    def pair_with(self, plan: Sequence[LayerSpec]) -> None:
        self.reference_plan = list(plan)

    def reference_ms(self) -> float | None:
        return self.reference_now_ms if self.reference_samples else None

    def _tick(self) -> None:
        if self.interrupt_after is not None and self.calls == self.interrupt_after:
            raise self.error()
        self.calls += 1
        if self.reference_now_ms is not None:
            self.reference_samples.append(self.reference_now_ms)

    def time_layers(self, layers: Sequence[LayerSpec]) -> list[float]:
        self._tick()
        self.layers.update(layer.key() for layer in layers)
        return [fake_layer_ms(layer) for layer in layers]

    def time_children(self, plans: Sequence[Sequence[LayerSpec]]) -> list[float]:
        self._tick()
        self.children.update(tuple(layer.key() for layer in plan) for plan in plans)
        return [CHILD_SCALE * sum(fake_layer_ms(layer) for layer in plan) + CHILD_OFFSET for plan in plans]

    def __enter__(self) -> FakeMeasurer:
        return self

    def __exit__(self, *exc) -> None:
        return None
