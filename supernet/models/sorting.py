"""Channel importance sorting (Once-for-All): reorder weights so that "the first k channels" are the best k.

A child runs the first k channels of every elastic layer. After a phase of training the most useful
channels may sit anywhere; sorting moves them to the front, in place, without changing what the
largest child computes: each channel permutation is applied to every tensor that produces or consumes
those channels, so the max child's function is unchanged while every smaller child's changes.

- Expanded (mid) channels of each block, by the L1 norm of the project conv's weights reading them.
  Permuted: expand conv out-dim and its BN, depthwise conv channels and its BN, the squeeze-excite's
  input and output, the project conv in-dim. The kernel transform matrices act on each channel's
  kernel alike, so they commute with any channel permutation and need no change.
- Squeeze-excite hidden units, by the L1 norm of the fc2 weights reading them.
- Where a stage has more than one width, its output channels, by the L1 norm of the project conv
  weights writing them summed over the stage's blocks. Permuted: every block's project conv out-dim
  and BN, the input of blocks 1.. of the stage (their residual adds stay aligned because producer and
  consumer move together) and the input of the next consumer (the next stage's first block, or the
  final expand conv after the last stage).

Optimizer state indexed by channel (momentum buffers) is not permuted: sort between training phases,
before making the next phase's optimizer, as Once-for-All does.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from supernet.models.dynamic_blocks import DynamicInvertedResidual
from supernet.models.supernet import Supernet
from supernet.ops import DynamicOp, DynamicSqueezeExcite


def descending(importance: Tensor) -> Tensor:
    """Channel indices by decreasing importance; ties keep their current order."""
    return torch.argsort(importance, descending=True, stable=True)


def _permute(op: DynamicOp, name: str, dim: int, order: Tensor) -> None:
    # Written in place: the parameter objects (and so optimizer references and memory formats) stay.
    op.assign_(name, getattr(op, name).index_select(dim, order))


def _permute_bn(bn: DynamicOp, order: Tensor) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        _permute(bn, name, 0, order)


def _has_expand_conv(block: DynamicInvertedResidual) -> bool:
    return isinstance(block.expand, nn.Sequential)


def permute_mid(block: DynamicInvertedResidual, order: Tensor) -> None:
    """Reorder a block's expanded channels everywhere they are produced or read."""
    if _has_expand_conv(block):
        _permute(block.expand[0], "weight", 0, order)
        _permute_bn(block.expand[1], order)
    _permute(block.depthwise[0], "weight", 0, order)
    _permute_bn(block.depthwise[1], order)
    if isinstance(block.se, DynamicSqueezeExcite):
        _permute(block.se, "fc1_weight", 1, order)
        _permute(block.se, "fc2_weight", 0, order)
        _permute(block.se, "fc2_bias", 0, order)
    _permute(block.project[0], "weight", 1, order)


def permute_block_input(block: DynamicInvertedResidual, order: Tensor) -> None:
    """Reorder what a block reads; without an expand conv its mid channels are its input channels."""
    if _has_expand_conv(block):
        _permute(block.expand[0], "weight", 1, order)
    else:
        permute_mid(block, order)


def permute_block_output(block: DynamicInvertedResidual, order: Tensor) -> None:
    _permute(block.project[0], "weight", 0, order)
    _permute_bn(block.project[1], order)


def sort_se_hidden(se: DynamicSqueezeExcite) -> None:
    order = descending(se.fc2_weight.abs().sum(dim=(0, 2, 3)))
    _permute(se, "fc1_weight", 0, order)
    _permute(se, "fc1_bias", 0, order)
    _permute(se, "fc2_weight", 1, order)


def mid_importance(block: DynamicInvertedResidual) -> Tensor:
    return block.project[0].weight.abs().sum(dim=(0, 2, 3))


def stage_output_importance(blocks: list[DynamicInvertedResidual]) -> Tensor:
    return sum(block.project[0].weight.abs().sum(dim=(1, 2, 3)) for block in blocks)


@torch.no_grad()
def sort_channels(model: Supernet) -> dict[str, int]:
    """Sort `model`'s elastic channels by importance, in place; returns how many parts were reordered."""
    report = {"blocks": 0, "se": 0, "stages": 0}
    for block in model.elastic_blocks():
        # Without an expand conv the mid channels are the block's input, ordered by the stage before.
        if _has_expand_conv(block):
            permute_mid(block, descending(mid_importance(block)))
            report["blocks"] += 1
        if isinstance(block.se, DynamicSqueezeExcite):
            sort_se_hidden(block.se)
            report["se"] += 1
    stages = [list(stage) for stage in model.stages]
    for i, (stage_spec, blocks) in enumerate(zip(model.space.spec.stages, stages, strict=True)):
        if len(stage_spec.widths) < 2:
            continue  # its width never changes, so no child reads a prefix of its outputs
        order = descending(stage_output_importance(blocks))
        for j, block in enumerate(blocks):
            permute_block_output(block, order)
            if j > 0:
                permute_block_input(block, order)
        if i + 1 < len(stages):
            permute_block_input(stages[i + 1][0], order)
        else:
            _permute(model.final_expand[0], "weight", 1, order)
        report["stages"] += 1
    return report
