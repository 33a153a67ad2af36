"""Type predicates for values read from YAML and JSON, where `true` would otherwise pass as the int 1."""

from __future__ import annotations

import math
from typing import Any


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a finite float, never a bool."""
    return is_int(value) or (isinstance(value, float) and math.isfinite(value))
