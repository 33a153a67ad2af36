"""Progress bars are for people: shown on a terminal (or when asked), never in logs or pipes."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_enabled(setting: str | bool) -> bool:
    if setting == "auto":
        return sys.stdout.isatty()
    return bool(setting)


def progress_bar(total: int, initial: int, enabled: bool, unit: str = "step") -> tqdm:
    return tqdm(total=total, initial=initial, disable=not enabled, unit=unit, dynamic_ncols=True, leave=True)
