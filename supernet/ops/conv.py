"""Elastic convolutions: 1x1 convolutions with elastic in/out channels, and depthwise convolutions
with elastic channels and kernel size.

Smaller kernels are the centre of the largest one. With `transform=True` (Once-for-All's kernel
transformation) each step down in kernel size also passes the cropped kernel through a learned
k²×k² matrix shared by all channels, initialised to the identity, so that small kernels need not
be the exact centre of large ones.

At full size each op hands its parameters to the convolution untouched: no slice (whose backward
would allocate a full-size zero gradient) and no cache lookup, so the max child runs like a plain net.
The weights these ops prepare are (O, I, 1, 1) or (C, 1, k, k), shapes for which a contiguous tensor
is also channels-last contiguous, so `.contiguous()` suits either memory format.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from supernet.ops.base import DynamicOp, copy_out


class DynamicPointConv2d(DynamicOp):
    def __init__(self, max_in: int, max_out: int, bias: bool = False) -> None:
        super().__init__()
        self.max_in, self.max_out = max_in, max_out
        self.weight = nn.Parameter(torch.empty(max_out, max_in, 1, 1))
        self.bias = nn.Parameter(torch.zeros(max_out)) if bias else None
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.active_in, self.active_out = max_in, max_out
        self._full = True

    def set_active(self, cin: int, cout: int) -> None:
        if not (0 < cin <= self.max_in and 0 < cout <= self.max_out):
            raise ValueError(f"1x1 conv of at most {self.max_in}->{self.max_out} channels "
                             f"cannot run {cin}->{cout}")
        self.active_in, self.active_out = cin, cout
        self._full = cin == self.max_in and cout == self.max_out

    def _slice(self) -> tuple[Tensor, ...]:
        # Only the dims that shrink are sliced: each slice's backward allocates a zero gradient the
        # size of its input, a cost worth skipping where the dim is at full size anyway.
        w = self.weight if self.active_out == self.max_out else self.weight[: self.active_out]
        if self.active_in < self.max_in:
            # Made contiguous once here: the convolution would otherwise copy it in forward and backward.
            w = w[:, : self.active_in].contiguous()
        if self.bias is None:
            return (w,)
        return w, (self.bias if self.active_out == self.max_out else self.bias[: self.active_out])

    def effective(self) -> tuple[Tensor, Tensor | None]:
        """The (weight, bias) the active conv runs with."""
        if self._full:
            return self.weight, self.bias
        if self.bias is None:
            (weight,) = self.cached((self.active_in, self.active_out), (self.weight,), self._slice)
            return weight, None
        return self.cached((self.active_in, self.active_out), (self.weight, self.bias), self._slice)

    def forward(self, x: Tensor) -> Tensor:
        weight, bias = self.effective()
        return F.conv2d(x, weight, bias)

    def active_state(self) -> dict[str, Tensor]:
        return dict(zip(("weight", "bias"), self._slice(), strict=False))

    def to_static(self) -> nn.Conv2d:
        conv = nn.Conv2d(self.active_in, self.active_out, 1, bias=self.bias is not None,
                         device=self.weight.device, dtype=self.weight.dtype)
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
    def __init__(self, max_channels: int, kernels: tuple[int, ...], stride: int,
                 transform: bool = True) -> None:
        super().__init__()
        self.max_channels = max_channels
        self.kernels = tuple(sorted(kernels))
        self.max_kernel = self.kernels[-1]
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(max_channels, 1, self.max_kernel, self.max_kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        # One matrix per step down, named by the kernel it produces ("5to3" style keys are not valid names).
        self.transforms = nn.ParameterDict()
        if transform:
            for big, small in zip(self.kernels[:0:-1], self.kernels[-2::-1], strict=True):
                self.transforms[f"to{small}"] = nn.Parameter(torch.eye(small * small))
                # Constant, so kept out of the state dict; a buffer so that it follows .to(device).
                self.register_buffer(f"centre{big}to{small}", centre_selection(big, small), persistent=False)
        self.active_channels, self.active_kernel = max_channels, self.max_kernel
        self._steps: tuple[int, ...] = ()  # kernel sizes stepped through, largest first

    def set_active(self, channels: int, kernel: int) -> None:
        if kernel not in self.kernels or not 0 < channels <= self.max_channels:
            raise ValueError(f"depthwise conv with kernels {self.kernels} and at most {self.max_channels} "
                             f"channels cannot run kernel {kernel} on {channels} channels")
        self.active_channels, self.active_kernel = channels, kernel
        self._steps = tuple(k for k in reversed(self.kernels[:-1]) if k >= kernel)

    def _kernel(self) -> tuple[Tensor]:
        c, k, big = self.active_channels, self.active_kernel, self.max_kernel
        weight = self.weight if c == self.max_channels else self.weight[:c]
        if not self._steps:
            return (weight,)
        if not self.transforms:  # the plain centre crop, in one step
            start = (big - k) // 2
            return (weight[:, :, start : start + k, start : start + k],)
        # Each step crops the flattened kernel and multiplies it by its matrix transposed. The crops are
        # 0/1 selection matrices, so the whole chain folds into one small (big², k²) matrix and every
        # channel goes through a single matmul on its uncropped kernel: no strided crop of the weight is
        # copied in forward, nor scattered back into a zero tensor in backward.
        fold, size = None, big
        for small in self._steps:
            step = self.get_buffer(f"centre{size}to{small}") @ self.transforms[f"to{small}"].t()
            fold, size = step if fold is None else fold @ step, small
        return ((weight.reshape(c, big * big) @ fold).view(c, 1, k, k),)

    def forward(self, x: Tensor) -> Tensor:
        c, k = self.active_channels, self.active_kernel
        if c == self.max_channels and not self._steps:
            weight = self.weight
        else:
            sources = (self.weight, *(self.transforms[f"to{s}"] for s in self._steps)) if self.transforms \
                else (self.weight,)
            (weight,) = self.cached((c, k), sources, self._kernel)
        return F.conv2d(x, weight, None, self.stride, k // 2, 1, c)

    def active_state(self) -> dict[str, Tensor]:
        return {"weight": self._kernel()[0]}

    def to_static(self) -> nn.Conv2d:
        k = self.active_kernel
        conv = nn.Conv2d(self.active_channels, self.active_channels, k, self.stride, k // 2,
                         groups=self.active_channels, bias=False, device=self.weight.device,
                         dtype=self.weight.dtype)
        conv.load_state_dict(copy_out(self.active_state()))
        return conv
