import math

import pytest

from supernet.checks import is_int, is_number


@pytest.mark.parametrize("value, integer, number", [
    (3, True, True), (0, True, True), (2.5, False, True), (True, False, False), (False, False, False),
    (math.inf, False, False), (math.nan, False, False), ("3", False, False), (None, False, False),
])
def test_yaml_booleans_and_non_finite_floats_are_not_numbers(value, integer, number):
    assert (is_int(value), is_number(value)) == (integer, number)
