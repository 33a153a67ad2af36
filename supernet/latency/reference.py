"""The reference networks that paired timing measures everything against.

On a shared machine (a cloud VM whose physical cores serve other guests too) the speed of the same code
wanders by 10-40 % over milliseconds to minutes, and every call that runs in a slow phase is slow alike.
Paired timing calls a reference network right before every timed call and keeps the ratio of the two
durations: both ran in the same phase, so the phase cancels (the idea of duet benchmarking, Bulej et al.,
"Duet Benchmarking: Improving Measurement Accuracy in the Cloud", 2020). One ratio unit is then worth the
reference's own latency, measured once per table.

The phases do not slow every kind of work alike: a neighbour that fills the shared cache slows a network
with a few hundred kilobytes of weights more than a tiny one. So the default reference is the smallest
child of the space being measured (`smallest_child_plan`): it has the blocks, the head and the input
size of the children it is paired with. `scripts/bench_reference.py` times 8 children of the small space
again and again against each reference; on a 2-core cloud VM (2026-12-02) their ratio to the smallest
child wandered by 1.30 and 1.47 % (standard deviation over 20 and 12 groups), against 2.38 and 2.25 %
with the fixed network below and 2.33 and 1.61 % with the same smallest child fed half its input.

The fixed network is a small MobileNet-like stack of plain layers with seeded weights, the same for every
space; it costs little, where a large space's smallest child is slow (a MobileNetV3 child at 128 px runs
6x longer), and serves for models measured without a space.
"""

from __future__ import annotations

import torch
from torch import nn

from supernet.space import LayerSpec, SearchSpace

REFERENCE_CHANNELS = 3
REFERENCE_RESOLUTION = 48


def _inverted_residual(cin: int, cout: int, expand: int, stride: int) -> list[nn.Module]:
    mid = cin * expand
    return [
        nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
        nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
        nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout),
    ]


def reference_network() -> nn.Sequential:
    """The fixed network, seeded; feed it (batch, REFERENCE_CHANNELS, REFERENCE_RESOLUTION, same)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(REFERENCE_CHANNELS, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            *_inverted_residual(16, 24, 3, 2),
            *_inverted_residual(24, 24, 3, 1),
            *_inverted_residual(24, 40, 3, 2),
            *_inverted_residual(40, 40, 3, 1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(40, 10),
        )


def smallest_child_plan(space: SearchSpace) -> list[LayerSpec]:
    """The layers of the space's smallest child (at its smallest resolution): the default reference."""
    return space.layers(space.min())
