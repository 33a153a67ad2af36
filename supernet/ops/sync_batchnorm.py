"""Batch norm whose statistics cover the global batch of every data-parallel process, at any width.

torch's `nn.SyncBatchNorm.convert_sync_batchnorm` would replace our `DynamicBatchNorm2d` layers by
fixed-width `SyncBatchNorm`s (the supernet could no longer run a narrower child), and its kernels run
on accelerators only. Here the synchronisation is a small, autograd-correct function: each process
reduces its per-channel sum and sum of squares with one all-reduce, normalises with the global moments,
and the backward pass all-reduces the gradient of those moments (the sum is differentiable, so
autograd produces the cross-process terms of the batch-norm gradient). Communication per layer and
child: 2C+1 numbers forward and backward, as torch's SyncBatchNorm.

Synchronisation happens only where it changes something: training mode, gradients recorded, and more
than one process. BN recalibration (no grad, the same calibration batches on every process) and
evaluation run the per-process path, so they need no collectives and cannot deadlock a rank that
evaluates alone.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from supernet.ops.batchnorm import DynamicBatchNorm2d


class _AllReduceSum(torch.autograd.Function):
    """y = Σ_ranks x. Each rank's x feeds every rank's loss, so its gradient is Σ_ranks dL/dy."""

    @staticmethod
    def forward(ctx, tensor: Tensor, group: dist.ProcessGroup | None) -> Tensor:
        ctx.group = group
        total = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total, group=group)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


def sync_batch_norm(x: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                    running_var: Tensor | None, momentum: float, eps: float,
                    group: dist.ProcessGroup | None = None) -> Tensor:
    """Training-mode batch norm of NCHW `x` over the batches of all processes of `group`.

    The running statistics (when given) are updated in place like `F.batch_norm`'s: the global mean and
    the global unbiased variance, blended with factor `momentum`.
    """
    channels = x.shape[1]
    count = x.numel() // channels
    # Local moments in fp32 (stable two-pass variance), combined across ranks in fp64: the global
    # variance is E[x²] - mean², whose cancellation would cost fp32 digits.
    var, mean = torch.var_mean(x.float(), dim=(0, 2, 3), correction=0)
    mean64 = mean.double()
    local = torch.cat([mean64 * count, (var.double() + mean64 * mean64) * count,
                       mean64.new_full((1,), float(count))])
    total = _AllReduceSum.apply(local, group)
    n = total[2 * channels]
    global_mean = total[:channels] / n
    global_var = (total[channels:2 * channels] / n - global_mean * global_mean).clamp_min(0)
    if running_mean is not None and running_var is not None:
        with torch.no_grad():
            unbiased = global_var * n / (n - 1).clamp_min(1)
            running_mean.lerp_(global_mean.to(running_mean.dtype), momentum)
            running_var.lerp_(unbiased.to(running_var.dtype), momentum)
    scale = torch.rsqrt(global_var + eps)
    if weight is not None:
        scale = scale * weight
    shape = (1, channels, 1, 1)
    y = (x.float() - global_mean.float().view(shape)) * scale.float().view(shape)
    if bias is not None:
        y = y + bias.float().view(shape)
    return y.to(x.dtype)


class SyncDynamicBatchNorm2d(DynamicBatchNorm2d):
    """`DynamicBatchNorm2d` that normalises training batches with the statistics of all processes."""

    process_group: dist.ProcessGroup | None = None  # None: the default (world) group

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and torch.is_grad_enabled() and _group_size(self.process_group) > 1):
            return super().forward(x)
        self._check_input_dim(x)
        factor = self.update_factor()
        stats = self.running_stats() if self.track_running_stats else (None, None)
        affine = self.affine_params() if self.affine else (None, None)
        return sync_batch_norm(x, *affine, *stats, factor, self.eps, self.process_group)

    @classmethod
    def convert(cls, module: nn.Module, process_group: dist.ProcessGroup | None = None) -> nn.Module:
        """Replace every 2-d batch norm of `module` (dynamic or plain) by this class, in place.

        The new layers hold the very same parameter and buffer tensors, so optimizers, state dicts and
        checkpoints are unchanged; a plain `nn.BatchNorm2d` becomes one running at its full width.
        Returns `module` (or its replacement when `module` is itself a batch norm).
        """
        if isinstance(module, nn.BatchNorm2d) and not isinstance(module, cls):
            return _converted(cls, module, process_group)
        for name, child in module.named_children():
            replacement = cls.convert(child, process_group)
            if replacement is not child:
                setattr(module, name, replacement)
        return module


def _converted(cls: type[SyncDynamicBatchNorm2d], bn: nn.BatchNorm2d,
               process_group: dist.ProcessGroup | None) -> SyncDynamicBatchNorm2d:
    new = cls(bn.num_features, eps=bn.eps, momentum=bn.momentum)
    new.affine, new.track_running_stats = bn.affine, bn.track_running_stats
    # Share, never copy: the optimizer and the checkpoint keep addressing the same tensors.
    new.share_parameters(bn)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        setattr(new, name, getattr(bn, name))
    new.set_active(getattr(bn, "active_features", bn.num_features))
    new.process_group = process_group
    new.train(bn.training)
    return new


def _group_size(group: dist.ProcessGroup | None) -> int:
    return dist.get_world_size(group) if dist.is_available() and dist.is_initialized() else 1
