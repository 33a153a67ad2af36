"""Device and numeric precision, chosen once from the config with clear errors for absent devices."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

from supernet.errors import SupernetError


class DeviceError(SupernetError):
    """An explicitly requested device or precision that this machine cannot provide."""


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; an explicit device that is absent is an error, never a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise DeviceError(f"device={name!r} is not a device; use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device={name} was asked for but this machine has no CUDA device "
                              "(torch.cuda.is_available() is False); use device=cpu or device=auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device={name}: only {count} CUDA device(s) here (cuda:0..cuda:{count - 1})")
    elif device.type != "cpu":
        raise DeviceError(f"device={name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


@dataclass(frozen=True)
class Precision:
    """How the step computes: autocast dtype (None = full fp32) and whether loss scaling is needed."""

    device_type: str
    dtype: torch.dtype | None

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16

    def autocast(self) -> AbstractContextManager:
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device_type, enabled=self.needs_scaler)


def resolve_precision(name: str, device: torch.device) -> Precision:
    """`auto`: bf16 autocast on CUDA where supported, fp16 + GradScaler on older GPUs, fp32 on CPU
    (CPU autocast to bf16 is slower than fp32 for these small convolutions on most CPUs)."""
    if name == "auto":
        if device.type != "cuda":
            return Precision(device.type, None)
        return Precision("cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    dtypes = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if name not in dtypes:
        raise DeviceError(f"precision={name!r}: choose one of auto, fp32, bf16, fp16")
    if name == "fp16" and device.type != "cuda":
        raise DeviceError("precision=fp16 needs a CUDA device; on CPU use precision=fp32 or bf16")
    return Precision(device.type, dtypes[name])


def configure_backends(device: torch.device, threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    if device.type == "cuda":
        # Every step runs children of new shapes: benchmark mode would re-tune on each new shape, so it
        # pays only when the set of shapes is small and repeats (true after the first few hundred steps
        # for small spaces). TF32 matmuls/convs are accurate enough for supernet training.
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
