"""Fixtures of the latency tests."""

import pytest
from lut_support import TINY_SPACE

from supernet.space import SearchSpace


@pytest.fixture
def tiny_space() -> SearchSpace:
    return SearchSpace.from_dict(TINY_SPACE)
