"""Elastic convolutions: 1x1 convolutions with elastic in/out channels, and depthwise convolutions
with elastic channels and kernel size.

Smaller kernels are the centre of the largest one. With `transform=True` (Once-for-All's kernel
transformation) each step down in kernel size also passes the cropped kernel through a learned
k²×k² matrix shared by all channels, initialised to the identity, so that small kernels need not
be the exact centre of large ones.

Weights are chunked (`supernet.ops.chunked`) at the channel counts the space can ask for, so a child runs
on whole blocks: its gradients are the size of what it used. The weights these ops prepare are
(O, I, 1, 1) or (C, 1, k, k), shapes for which a contiguous tensor is also channels-last contiguous,
so `.contiguous()` suits either memory format.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from supernet.ops.base import DynamicOp, copy_out
from supernet.ops.chunked import ChunkedTensor, normalised_cuts


class DynamicPointConv2d(DynamicOp):
    """`in_sizes` / `out_sizes`: the channel counts children use (block boundaries; any size still runs)."""

    weight = ChunkedTensor()
    bias = ChunkedTensor()

    def __init__(self, max_in: int, max_out: int, bias: bool = False, in_sizes: tuple[int, ...] = (),
                 out_sizes: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.max_in, self.max_out = max_in, max_out
        weight = torch.empty(max_out, max_in, 1, 1)
        nn.init.kaiming_normal_(weight, mode="fan_out")
        out_cuts = normalised_cuts(out_sizes, max_out)
        self.register_chunked("weight", weight, (out_cuts, normalised_cuts(in_sizes, max_in)))
        if bias:
            self.register_chunked("bias", torch.zeros(max_out), (out_cuts,))
        else:
            self.bias = None
        self.set_active(max_in, max_out)

    def set_active(self, cin: int, cout: int) -> None:
        if not (0 < cin <= self.max_in and 0 < cout <= self.max_out):
            raise ValueError(f"1x1 conv of at most {self.max_in}->{self.max_out} channels "
                             f"cannot run {cin}->{cout}")
        self.active_in, self.active_out = cin, cout
        self.plan_chunks({"weight": (cout, cin), "bias": (cout,)})

    def _slice(self) -> tuple[Tensor, ...]:
        w = self.active("weight")
        # A size between two cuts leaves a strided slice: made contiguous once here, since the
        # convolution would otherwise copy it in forward and again in backward.
        w = w.contiguous()  # the block itself when it already is
        return (w,) if self.bias is None else (w, self.active("bias"))

    def effective(self) -> tuple[Tensor, Tensor | None]:
        """The (weight, bias) the active conv runs with."""
        prepared = self.cached((self.active_in, self.active_out), self.active_blocks(), self._slice)
        return prepared[0], prepared[1] if self.bias is not None else None

    def forward(self, x: Tensor) -> Tensor:
        weight, bias = self.effective()
        return F.conv2d(x, weight, bias)

    def active_state(self) -> dict[str, Tensor]:
        return dict(zip(("weight", "bias"), self._slice(), strict=False))

    def to_static(self) -> nn.Conv2d:
        like = self.blocks("weight")[0]
        conv = nn.Conv2d(self.active_in, self.active_out, 1, bias=self.bias is not None, device=like.device,
                         dtype=like.dtype)
        conv.load_state_dict(copy_out(self.active_state()))
        return conv


def centre_selection(big: int, small: int) -> Tensor:
    """The (big², small²) 0/1 matrix that maps a flattened big kernel to its flattened centre crop."""
    start = (big - small) // 2
    offsets = torch.arange(small) + start
    rows = (offsets.view(-1, 1) * big + offsets).flatten()
    selection = torch.zeros(big * big, small * small)
    selection[rows, torch.arange(small * small)] = 1.0
    return selection


class DynamicDepthwiseConv2d(DynamicOp):
    """`channel_sizes`: the channel counts children use (block boundaries; any count still runs)."""

    weight = ChunkedTensor()

    def __init__(self, max_channels: int, kernels: tuple[int, ...], stride: int, transform: bool = True,
                 channel_sizes: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.max_channels = max_channels
        self.kernels = tuple(sorted(kernels))
        self.max_kernel = self.kernels[-1]
        self.stride = stride
        weight = torch.empty(max_channels, 1, self.max_kernel, self.max_kernel)
        nn.init.kaiming_normal_(weight, mode="fan_out")
        self.register_chunked("weight", weight, (normalised_cuts(channel_sizes, max_channels),))
        # One matrix per step down, named by the kernel it produces ("5to3" style keys are not valid names).
        self.transforms = nn.ParameterDict()
        if transform:
            for big, small in zip(self.kernels[:0:-1], self.kernels[-2::-1], strict=True):
                self.transforms[f"to{small}"] = nn.Parameter(torch.eye(small * small))
                # Constant, so kept out of the state dict; a buffer so that it follows .to(device).
                self.register_buffer(f"centre{big}to{small}", centre_selection(big, small), persistent=False)
        self._steps: tuple[int, ...] = ()  # kernel sizes stepped through, largest first
        self._chain: tuple[tuple[str, str], ...] = ()  # per step: (crop buffer, transform) names
        self.set_active(max_channels, self.max_kernel)

    def set_active(self, channels: int, kernel: int) -> None:
        if kernel not in self.kernels or not 0 < channels <= self.max_channels:
            raise ValueError(f"depthwise conv with kernels {self.kernels} and at most {self.max_channels} "
                             f"channels cannot run kernel {kernel} on {channels} channels")
        self.active_channels, self.active_kernel = channels, kernel
        self._steps = tuple(k for k in reversed(self.kernels[:-1]) if k >= kernel)
        pairs = itertools.pairwise((self.max_kernel, *self._steps))
        self._chain = tuple((f"centre{big}to{small}", f"to{small}") for big, small in pairs)
        self.plan_chunks({"weight": (channels,)})

    def _kernel(self) -> tuple[Tensor]:
        c, k, big = self.active_channels, self.active_kernel, self.max_kernel
        weight = self.active("weight")
        if not self._steps:
            return (weight,)
        if not self.transforms:  # the plain centre crop, in one step
            start = (big - k) // 2
            return (weight[:, :, start : start + k, start : start + k],)
        # Each step crops the flattened kernel and multiplies it by its matrix transposed. The crops are
        # 0/1 selection matrices, so the whole chain folds into one small (big², k²) matrix and every
        # channel goes through a single matmul on its uncropped kernel: no strided crop of the weight is
        # copied in forward, nor scattered back into a zero tensor in backward.
        fold = None
        for crop, transform in self._chain:
            step = self._buffers[crop] @ self.transforms[transform].t()
            fold = step if fold is None else fold @ step
        return ((weight.reshape(c, big * big) @ fold).view(c, 1, k, k),)

    def forward(self, x: Tensor) -> Tensor:
        c, k = self.active_channels, self.active_kernel
        sources = self.active_blocks()
        if self.transforms:
            sources = (*sources, *(self.transforms[transform] for _, transform in self._chain))
        (weight,) = self.cached((c, k), sources, self._kernel)
        return F.conv2d(x, weight, None, self.stride, k // 2, 1, c)

    def active_state(self) -> dict[str, Tensor]:
        return {"weight": self._kernel()[0]}

    def to_static(self) -> nn.Conv2d:
        k, like = self.active_kernel, self.blocks("weight")[0]
        conv = nn.Conv2d(self.active_channels, self.active_channels, k, self.stride, k // 2,
                         groups=self.active_channels, bias=False, device=like.device, dtype=like.dtype)
        conv.load_state_dict(copy_out(self.active_state()))
        return conv
