"""Elastic ops: each slices its full weight to the active size and has a static torch twin."""

from supernet.ops.base import DynamicOp
from supernet.ops.batchnorm import DynamicBatchNorm2d
from supernet.ops.conv import DynamicDepthwiseConv2d, DynamicPointConv2d
from supernet.ops.squeeze_excite import DynamicSqueezeExcite

__all__ = ["DynamicBatchNorm2d", "DynamicDepthwiseConv2d", "DynamicOp", "DynamicPointConv2d",
           "DynamicSqueezeExcite"]
