"""One writer per export format. Each takes the eval-mode child on the CPU and an example batch.

The example batch is only a trace input: every program format is written with a dynamic batch
dimension (the self-check then runs other batch sizes through it to prove it).

Every format is serialised in memory and written with one checked write (`atomic_write_data`): torch's
zip writer (pt2, TorchScript), failing on a full disk, throws again from its destructor and aborts the
process, and a known size lets a write that cannot fit be refused before the disk is touched.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from supernet.export.errors import ExportError
from supernet.onnx_io import batch_dim, write_onnx
from supernet.run.files import atomic_write_data


@dataclass(frozen=True)
class Format:
    name: str
    filename: str
    write: Callable[[nn.Module, Tensor, Path], dict[str, Any]]
    runnable: bool  # a program that runs without this project (safetensors holds weights only)


def write_safetensors(model: nn.Module, example: Tensor, path: Path) -> dict[str, Any]:
    from safetensors.torch import save

    # BN's num_batches_tracked is kept so `load_state_dict(strict=True)` accepts the file.
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write_data(path, save(state, metadata={"format": "pt"}))
    return {}


def write_pt2(model: nn.Module, example: Tensor, path: Path) -> dict[str, Any]:
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch_dim()},))
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    atomic_write_data(path, buffer.getvalue())
    return {}


def write_torchscript(model: nn.Module, example: Tensor, path: Path) -> dict[str, Any]:
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, yet it is still what many C++ and mobile
        # runtimes load; the trace of a conv net without data-dependent control flow is exact.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
    atomic_write_data(path, traced.save_to_buffer())
    return {}


FORMATS: dict[str, Format] = {
    f.name: f for f in (
        Format("safetensors", "weights.safetensors", write_safetensors, runnable=False),
        Format("pt2", "model.pt2", write_pt2, runnable=True),
        Format("torchscript", "model.ts", write_torchscript, runnable=True),
        Format("onnx", "model.onnx", write_onnx, runnable=True),
    )
}
DEFAULT_FORMATS = tuple(FORMATS)


def parse_formats(text: str | None) -> tuple[str, ...]:
    """`"pt2,onnx"` → ("pt2", "onnx") in canonical order; unknown names are an error naming the choices."""
    if text is None or not text.strip():
        return DEFAULT_FORMATS
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise ExportError(f"--formats: unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    return tuple(n for n in FORMATS if n in names)
