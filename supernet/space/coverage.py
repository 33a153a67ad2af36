"""Children that together contain every layer a space can produce.

A block's shapes depend only on: the input resolution (the strides before it are fixed), its stage's
width, the previous stage's width (its input channels), its kernel and expand ratio, and whether it is the
first block of its stage (stride, no residual) or a later one. So for each resolution and each stage, the
children that put every combination of (previous width, width, kernel, expand) into that stage, at the
stage's largest depth, contain every layer that stage can ever produce; the stem, the fixed first block,
the final expand conv (its input is the last stage's width) and the classifier come along in the same
children. Whoever reads their layer plans (`SearchSpace.layers`) sees exactly what children run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import product

from supernet.space.arch import Arch, BlockChoice, StageChoice
from supernet.space.search_space import SearchSpace


def covering_archs(space: SearchSpace, resolutions: Sequence[int] | None = None) -> Iterator[Arch]:
    """Children (valid archs of `space`) whose layers together are every reachable layer, at each of
    `resolutions` (default: all of the space's)."""
    spec = space.spec
    base = space.min()
    for resolution in spec.resolutions if resolutions is None else resolutions:
        for i, stage in enumerate(spec.stages):
            prev_widths = spec.stages[i - 1].widths if i > 0 else (None,)
            for prev_width, width, kernel, expand in product(prev_widths, stage.widths, stage.kernels,
                                                             stage.expands):
                stages = list(base.stages)
                if i > 0:
                    stages[i - 1] = StageChoice(prev_width, stages[i - 1].blocks)
                stages[i] = StageChoice(width, (BlockChoice(kernel, expand),) * stage.max_depth)
                yield Arch(resolution, tuple(stages))
