from __future__ import annotations

import pytest

from supernet.config import compose_config

# A synthetic task small enough that a step takes milliseconds on one CPU thread.
QUICK = [
    "data.name=synthetic", "data.synthetic.train_size=512", "data.synthetic.test_size=128",
    "data.val_size=128", "data.batch_size=32", "val.calib_images=64", "val.middle_children=1",
    "val.batch_size=128", "threads=1", "log.every=4", "log.progress=false", "epochs=1",
]


@pytest.fixture
def quick_cfg():
    def make(*overrides: str):
        return compose_config("train", [*QUICK, *overrides])

    return make


@pytest.fixture(name="QUICK")
def quick_overrides() -> list[str]:
    return list(QUICK)
