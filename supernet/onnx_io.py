"""The one ONNX export path: what `supernet export` writes as `model.onnx`, and what latency tables time.

A latency table of an ONNX runtime times each block and child as this function exports it, so the
graphs it measures are the graphs a user deploys (the two exporters below emit different operators for
the same module, e.g. squeeze-excite's pooling, which the runtime then fuses differently).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from supernet.errors import first_line
from supernet.run.files import atomic_write_data

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
ONNX_OPSET = 18  # >= 17, which every onnxruntime since 1.15 runs


def batch_dim() -> torch.export.Dim:
    return torch.export.Dim("batch", min=1, max=1 << 16)


def write_onnx(model: nn.Module, example: Tensor, path: Path) -> dict[str, Any]:
    """Export `model` to `path` (one checked, atomic write) and say which exporter made it."""
    data, info = onnx_bytes(model, example)
    atomic_write_data(path, data)
    return info


def onnx_bytes(model: nn.Module, example: Tensor) -> tuple[bytes, dict[str, Any]]:
    """The ONNX graph of `model`, serialised in memory: the dynamo exporter first, the TorchScript-based
    one if that fails."""
    try:
        return _onnx_dynamo(model, example), {"exporter": "dynamo", "opset": ONNX_OPSET}
    except Exception as err:  # the dynamo exporter fails in many ways (missing onnxscript, unsupported op)
        info = {"exporter": "torchscript", "opset": ONNX_OPSET, "dynamo_failure": first_line(err)}
    return _onnx_legacy(model, example), info


def _onnx_dynamo(model: nn.Module, example: Tensor) -> bytes:
    import onnxscript  # noqa: F401  (the dynamo exporter needs it; fail here, clearly, if absent)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (example,), None, dynamo=True, verbose=False,
                                    opset_version=ONNX_OPSET, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch_dim()},),
                                    external_data=False, optimize=True)
    return program.model_proto.SerializeToString()


def _onnx_legacy(model: nn.Module, example: Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    return buffer.getvalue()
