"""card.json (what the export is, how good, how fast, from what) and the README that goes beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from supernet.export.errors import ExportError
from supernet.run.files import sha256_file

CARD_VERSION = 1


def read_card(export_dir: Path) -> dict[str, Any]:
    path = Path(export_dir) / "card.json"
    if not path.is_file():
        raise ExportError(f"{export_dir} is not an export: no card.json (made by `supernet export`)")
    try:
        card = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ExportError(f"{path} cannot be read as JSON ({err})") from err
    for key in ("arch", "data", "preprocessing", "formats"):
        if key not in card:
            raise ExportError(f"{path} lacks '{key}'; re-export with this version of `supernet export`")
    return card


def check_files(export_dir: Path, card: dict[str, Any]) -> None:
    """Refuse, naming it, the first file whose size or sha256 differs from what card.json recorded."""
    for fmt, info in card.get("files", {}).items():
        path = Path(export_dir) / info["file"]
        if not path.is_file():
            raise ExportError(f"{path} ({fmt}) is missing; card.json lists it. Re-export the child")
        size = path.stat().st_size
        if size != info["bytes"]:
            raise ExportError(f"{path} ({fmt}) is damaged: {size:,} bytes where card.json records "
                              f"{info['bytes']:,}. Re-export the child")
        digest = sha256_file(path)
        if digest != info["sha256"]:
            raise ExportError(f"{path} ({fmt}) is damaged: its sha256 {digest[:16]}... differs from "
                              f"card.json's {info['sha256'][:16]}.... Re-export the child")


def preprocessing(resolution: int, channels: int, mean, std, native_size: int) -> dict[str, Any]:
    return {
        "input": f"float32 tensor [N, {channels}, {resolution}, {resolution}] (NCHW)",
        "resolution": resolution,
        "channels": channels,
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "steps": [
            "uint8 pixels to float: x / 255",
            "per channel: (x - mean) / std",
            f"resize {native_size}x{native_size} -> {resolution}x{resolution}: bilinear, align_corners=False"
            if native_size != resolution else f"no resize (images are already {resolution}x{resolution})",
        ],
    }


def render_readme(card: dict[str, Any]) -> str:
    """A short README: what the model is, its preprocessing, and how to load each file."""
    pre = card["preprocessing"]
    c, r = pre["channels"], pre["resolution"]
    acc = card.get("accuracy", {})
    files = card["formats"]
    lines = [
        f"# Exported child `{card['arch']}`",
        "",
        f"Space `{card['space_name']}`, {card['params']:,} parameters, {card['flops']:,} multiply-adds, "
        f"validation top-1 {_pct(acc.get('val_top1'))}, test top-1 {_pct(acc.get('test_top1'))} "
        f"(dataset `{card['data']['name']}`). Batch-norm statistics recalibrated on "
        f"{card['calibration']['images']} training images (digest `{card['calibration']['digest']}`)"
        + ("; batch norm folded into the convolutions." if card.get("bn_folded") else "."),
        "",
        "## Input",
        "",
        f"A float32 batch `[N, {c}, {r}, {r}]`, any N. Preprocess images exactly like this:",
        "",
        *(f"{i}. {step}" for i, step in enumerate(pre["steps"], 1)),
        "",
        f"with mean = {pre['mean']} and std = {pre['std']}. "
        f"The output is `[N, {card['num_classes']}]` logits.",
        "",
        "## Loading",
        "",
    ]
    if "pt2" in files:
        lines += ["`model.pt2`, with torch alone (torch.export program):", "", "```python", "import torch",
                  'model = torch.export.load("model.pt2").module()',
                  f"logits = model(torch.randn(8, {c}, {r}, {r}))", "```", ""]
    if "torchscript" in files:
        lines += ["`model.ts`, with torch alone (TorchScript; C++ loads it with `torch::jit::load`):",
                  "", "```python", "import torch", 'model = torch.jit.load("model.ts").eval()',
                  f"logits = model(torch.randn(8, {c}, {r}, {r}))", "```", ""]
    if "onnx" in files:
        exporter = card.get("exporters", {}).get("onnx", {})
        lines += [f"`model.onnx`, with onnxruntime alone (opset {exporter.get('opset')}, input `images`, "
                  "output `logits`, dynamic batch):", "", "```python", "import numpy as np",
                  "import onnxruntime as ort",
                  'session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])',
                  f'logits = session.run(None, {{"images": np.zeros((8, {c}, {r}, {r}), np.float32)}})[0]',
                  "```", ""]
    if "safetensors" in files:
        lines += ["`weights.safetensors` holds weights only (the state dict of the child); the layers come "
                  "from the `supernet` package and the space recorded in card.json:", "", "```python",
                  "import json",
                  "from safetensors.torch import load_file", "from supernet.models import build_child",
                  "from supernet.space import Arch, SearchSpace", 'card = json.load(open("card.json"))',
                  'space = SearchSpace.from_dict(card["space"])',
                  'child = build_child(space.layers(Arch.parse(card["arch"])))']
        if card.get("bn_folded"):
            lines += ["from supernet.export import fold_batchnorm",
                      "child = fold_batchnorm(child)  # same layout as the saved weights"]
        lines += ['child.load_state_dict(load_file("weights.safetensors"))', "child.eval()", "```", ""]
    lines += ["`arch.json` is the architecture; `card.json` holds accuracy, latency, the checkpoint and "
              "calibration hashes, the data settings and the versions used. `supernet eval <this folder>` "
              "recomputes the accuracy.", ""]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"
