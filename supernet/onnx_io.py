"""The one ONNX export path: what `supernet export` writes as `model.onnx`, and what latency tables time.

A latency table of an ONNX runtime times each block and child as this function exports it, so the
graphs it measures are the graphs a user deploys (the two exporters below emit different operators for
the same module, e.g. squeeze-excite's pooling, which the runtime then fuses differently).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
ONNX_OPSET = 18  # >= 17, which every onnxruntime since 1.15 runs


def batch_dim() -> torch.export.Dim:
    return torch.export.Dim("batch", min=1, max=1 << 16)


def write_onnx(model: nn.Module, example: Tensor, path: Path) -> dict[str, Any]:
    """The torch.export-based (dynamo) exporter first; the TorchScript-based one if that fails."""
    try:
        _onnx_dynamo(model, example, path)
        return {"exporter": "dynamo", "opset": ONNX_OPSET}
    except Exception as err:  # the dynamo exporter fails in many ways (missing onnxscript, unsupported op)
        path.unlink(missing_ok=True)
        reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    _onnx_legacy(model, example, path)
    return {"exporter": "torchscript", "opset": ONNX_OPSET, "dynamo_failure": reason}


def onnx_bytes(model: nn.Module, example: Tensor) -> bytes:
    """`write_onnx` of `model`, as bytes."""
    with tempfile.TemporaryDirectory(prefix="supernet-onnx-") as tmp:
        path = Path(tmp) / "model.onnx"
        write_onnx(model, example, path)
        return path.read_bytes()


def _onnx_dynamo(model: nn.Module, example: Tensor, path: Path) -> None:
    import onnxscript  # noqa: F401  (the dynamo exporter needs it; fail here, clearly, if absent)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=True, verbose=False, opset_version=ONNX_OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_shapes=({0: batch_dim()},), external_data=False, optimize=True)


def _onnx_legacy(model: nn.Module, example: Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=ONNX_OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
