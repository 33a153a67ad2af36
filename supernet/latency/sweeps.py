"""Measuring a list of things (blocks, children) in several sweeps far apart in time.

A burst of load from another process can delay every sample of a group of blocks measured together;
a second sweep over the whole list, minutes later and in a shuffled order, measures each block again
under other conditions and in another group. Each thing's values over the sweeps are combined with the
same statistic that summarizes the samples within one measurement (`MeasureSettings.summary_statistic`:
min stays min, median stays median).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np
from tqdm import tqdm

from supernet.latency.settings import percentile_of

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def combine(values: Sequence[float], statistic: str) -> float:
    return float(np.percentile(values, percentile_of(statistic)))


def measure_in_sweeps(items: Sequence[T], key: Callable[[T], str],
                      measure: Callable[[Sequence[T]], list[float]], values: dict[str, list[float]],
                      sweeps: int, group: int, *, after_group: Callable[[], None], desc: str,
                      show: bool) -> None:
    """Append to `values[key(item)]` until every item has `sweeps` values; already present ones are kept.

    `after_group` runs after each measured group (to save progress), so an interruption loses at most the
    group in flight.
    """
    done = sum(min(len(values.get(key(item), [])), sweeps) for item in items)
    with tqdm(total=len(items) * sweeps, initial=done, desc=desc, unit="timing", disable=not show,
              dynamic_ncols=True) as bar:
        for sweep in range(sweeps):
            todo = [item for item in items if len(values.get(key(item), [])) <= sweep]
            if sweep:  # other neighbours, other place in the group, other moment (seeded: resumable)
                random.Random(sweep).shuffle(todo)
            for part in chunks(todo, group):
                for item, ms in zip(part, measure(part), strict=True):
                    values.setdefault(key(item), []).append(ms)
                after_group()
                bar.update(len(part))
