"""Load each written file back the way a user would, as a function from an image batch to logits.

pt2, TorchScript and ONNX are loaded with torch / onnxruntime alone; the safetensors weights go into a
freshly built child (they hold weights, not a program), folded first when the export folded BN.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from supernet.errors import first_line
from supernet.export.errors import ExportError
from supernet.export.writers import FORMATS

Predictor = Callable[[Tensor], Tensor]
PROGRAM_FORMATS = ("pt2", "torchscript", "onnx")


def load_pt2(path: Path) -> Predictor:
    # torch logs a traceback for a file it cannot read before it raises; the raised error is enough.
    log = logging.getLogger("torch.export")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        module = torch.export.load(str(path)).module()
    finally:
        log.setLevel(level)
    return _no_grad(module)


def load_torchscript(path: Path) -> Predictor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still widely deployed
        module = torch.jit.load(str(path), map_location="cpu").eval()
    return _no_grad(module)


def load_onnx(path: Path) -> Predictor:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: Tensor) -> Tensor:
        return torch.from_numpy(session.run(None, {name: x.detach().cpu().float().numpy()})[0])

    return run


def load_safetensors(path: Path, card: dict[str, Any]) -> Predictor:
    from safetensors.torch import load_file

    from supernet.export.fold_bn import fold_batchnorm
    from supernet.models import build_child
    from supernet.space import Arch, SearchSpace

    space = SearchSpace.from_dict(card["space"])
    child = build_child(space.layers(space.validate(Arch.parse(card["arch"]))), space.spec.head.dropout)
    if card.get("bn_folded"):
        child = fold_batchnorm(child)
    child.load_state_dict(load_file(str(path)), strict=True)
    return _no_grad(child.eval())


def load_format(export_dir: Path, fmt: str, card: dict[str, Any]) -> Predictor:
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    path = export_dir / FORMATS[fmt].filename
    if not path.is_file():
        raise ExportError(f"{path} does not exist; this export was written with --formats "
                          f"{','.join(card.get('formats', [])) or '?'}")
    try:
        if fmt == "safetensors":
            return load_safetensors(path, card)
        return {"pt2": load_pt2, "torchscript": load_torchscript, "onnx": load_onnx}[fmt](path)
    except Exception as err:  # each runtime raises its own zoo of types for a damaged file
        raise ExportError(f"{path} cannot be loaded as {fmt} ({first_line(err)}); the file is damaged or "
                          "was not written by `supernet export`. Re-export the child") from err


def _no_grad(module: Callable[[Tensor], Tensor]) -> Predictor:
    def run(x: Tensor) -> Tensor:
        with torch.no_grad():
            return module(x)

    return run
