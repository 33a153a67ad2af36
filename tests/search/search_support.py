"""Settings and stand-ins shared by the search tests."""

from __future__ import annotations

from supernet.config import compose_config
from supernet.search import AccuracyEvaluator, SearchSettings
from supernet.space import Arch, SearchSpace

TRAIN_OVERRIDES = [
    "data.name=synthetic", "epochs=1", "data.batch_size=64", "val.calib_images=128", "data.val_size=256",
    "val.middle_children=0", "val.batch_size=256", "data.synthetic.train_size=768",
    "data.synthetic.test_size=128", "data.synthetic.image_size=16", "space.resolutions=[12,16]",
    "log.progress=false", "seed=0",
]
# Small enough for seconds per search; the limit cuts off the slowest part of the space. The accuracy
# predictor screens offspring from generation 1 on, so determinism and resume are checked with it. Every
# generation runs (no plateau stop), so a test knows how many there are.
SEARCH_OVERRIDES = [
    "population=6", "generations=3", "progress=false", "evaluation.val_images=192",
    "evaluation.calib_images=64", "evaluation.calib_batch_size=32", "evaluation.batch_size=96",
    "constraints.max_latency_ms=0.45", "predictor.enabled=true", "predictor.min_train=6",
    "predictor.oversample=3", "evaluation.screen_images=96", "stop.patience=null",
    "stop.seeded_patience=null",
]


class FlopsLatency:
    """A stand-in latency table: a fixed affine function of FLOPs and depth (ms)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def predict(self, arch: Arch) -> float:
        return 0.1 * self.space.flops(arch) / 1e6 + 0.05 * sum(arch.depths)


class CountingEvaluator:
    """Wraps an evaluator and records the children it evaluates (arch, first image, last image + 1)."""

    def __init__(self, inner: AccuracyEvaluator) -> None:
        self.inner, self.asked = inner, []
        self.key, self.num_images = inner.key, inner.num_images

    @property
    def calls(self) -> int:
        return len(self.asked)

    def correct(self, arch: Arch, start: int = 0, stop: int | None = None) -> int:
        self.asked.append((arch, start, stop))
        return self.inner.correct(arch, start, stop)

    def correct_many(self, requests):
        self.asked.extend(requests)
        return self.inner.correct_many(requests)


def isolated(out) -> list[str]:
    """Overrides that give a search its own folder and its own accuracy store inside it."""
    return [f"out_dir={out}", f"evaluation.store_dir={out}/accuracy"]


def search_settings(*overrides: str) -> SearchSettings:
    return SearchSettings.from_config(compose_config("search", [*SEARCH_OVERRIDES, *overrides]))
