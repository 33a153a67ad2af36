"""The reference network that paired timing measures everything against.

On a shared machine (a cloud VM whose physical cores serve other guests too) the speed of the same code
wanders by 10-40 % over milliseconds to minutes, and every call that runs in a slow phase is slow alike.
Paired timing calls this fixed network right before every timed call and keeps the ratio of the two
durations: both ran in the same phase, so the phase cancels (the idea of duet benchmarking, Bulej et al.,
"Duet Benchmarking: Improving Measurement Accuracy in the Cloud", 2020). One ratio unit is then worth the
reference's own latency, measured once per table.

The network is a small MobileNet-like stack of plain layers (a strided stem, inverted residual blocks with
depthwise convolutions), so that it loads the core, the caches and the memory like the blocks it is paired
with. Its weights are seeded: every table on every device uses the same reference.
"""

from __future__ import annotations

import torch
from torch import nn

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
