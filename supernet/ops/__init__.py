"""Elastic ops: each runs the leading channels of its chunked weights and has a static torch twin."""

from supernet.ops.base import DynamicOp
from supernet.ops.batchnorm import DynamicBatchNorm2d
from supernet.ops.chunked import assign_tensor
from supernet.ops.conv import DynamicDepthwiseConv2d, DynamicPointConv2d
from supernet.ops.squeeze_excite import DynamicSqueezeExcite

__all__ = ["DynamicBatchNorm2d", "DynamicDepthwiseConv2d", "DynamicOp", "DynamicPointConv2d",
           "DynamicSqueezeExcite", "assign_tensor"]
