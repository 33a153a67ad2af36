"""A space description written out here, so that message and value checks do not follow edits of the
shipped YAML files (those are checked to build, and to read back as written, elsewhere)."""

from __future__ import annotations

import copy

import pytest

SPACE = {
    "name": "example", "in_channels": 1, "num_classes": 10, "divisor": 4, "resolutions": [24, 28, 32],
    "kernel_transform": True, "se_reduction": 4,
    "stem": {"channels": 16, "kernel": 3, "stride": 1, "act": "relu"},
    "first_block": {"channels": 16, "kernel": 3, "expand": 1, "stride": 1, "se": False, "act": "relu"},
    "choices": {"kernel": [3, 5], "expand": [2, 3, 4], "depth": [1, 2, 3], "width": [0.75, 1.0]},
    "stages": [
        {"channels": 24, "stride": 2, "se": False, "act": "relu"},
        {"channels": 40, "stride": 2, "se": True, "act": "hswish"},
        {"channels": 64, "stride": 2, "se": True, "act": "hswish"},
    ],
    "head": {"channels": 256, "feature": 512, "act": "hswish", "dropout": 0.1},
}


@pytest.fixture
def space_dict() -> dict:
    """A fresh, editable copy of `SPACE`."""
    return copy.deepcopy(SPACE)
