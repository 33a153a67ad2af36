"""The export's self-check: every written file, loaded back, must reproduce the supernet child.

The reference is the supernet itself with the child active (BN recalibrated, eval mode), not the
extracted copy, so extraction, BN folding and each writer are all checked in one comparison. The inputs
are real validation images at batch sizes other than the trace batch, which proves the dynamic axis.

Tolerance: float32 programs reorder sums, so differences grow with the size of the logits; a file
passes when max |out - ref| <= tol * max(1, max |ref|), with tol 1e-4, or 1e-3 when BN was folded
(folding rounds the product gamma / sqrt(var + eps) into the conv weight once more).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from supernet.errors import first_line
from supernet.export.errors import VerificationError
from supernet.export.loaders import Predictor, load_format
from supernet.export.writers import FORMATS

TOLERANCE = 1e-4
FOLDED_TOLERANCE = 1e-3


@dataclass(frozen=True)
class FormatCheck:
    format: str
    file: str
    bytes: int
    max_abs_diff: float
    tolerance: float
    batch_sizes: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance  # NaN compares False: a NaN output fails

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "bytes": self.bytes, "max_abs_diff": self.max_abs_diff,
                "tolerance": self.tolerance, "batch_sizes": list(self.batch_sizes), "ok": self.ok}


def tolerance_for(references: Sequence[Tensor], bn_folded: bool) -> float:
    scale = max(1.0, max(float(r.abs().max()) for r in references))
    return (FOLDED_TOLERANCE if bn_folded else TOLERANCE) * scale


def max_abs_diff(predict: Predictor, inputs: Sequence[Tensor], references: Sequence[Tensor]) -> float:
    worst = 0.0
    for x, ref in zip(inputs, references, strict=True):
        out = predict(x)
        if tuple(out.shape) != tuple(ref.shape):
            return float("inf")
        diff = float((out.float() - ref.float()).abs().max())
        if diff != diff:  # NaN
            return float("nan")
        worst = max(worst, diff)
    return worst


def verify_export(export_dir: Path, formats: Sequence[str], card: dict[str, Any], inputs: Sequence[Tensor],
                  references: Sequence[Tensor]) -> list[FormatCheck]:
    """Check every format; raise `VerificationError` listing each file's difference if any fails."""
    tolerance = tolerance_for(references, bool(card.get("bn_folded")))
    sizes = tuple(int(x.shape[0]) for x in inputs)
    checks = []
    for fmt in formats:
        path = export_dir / FORMATS[fmt].filename
        try:
            diff = max_abs_diff(load_format(export_dir, fmt, card), inputs, references)
        except Exception as err:  # a file that cannot even be loaded or run fails the check, with why
            raise VerificationError(f"self-check: {path.name} could not be loaded and run "
                                    f"({first_line(err)}); nothing was exported") from err
        checks.append(FormatCheck(fmt, path.name, path.stat().st_size, diff, tolerance, sizes))
    failed = [c for c in checks if not c.ok]
    if failed:
        numbers = "; ".join(f"{c.format}: max abs diff {c.max_abs_diff:.3g}" for c in checks)
        raise VerificationError(f"self-check failed for {', '.join(c.format for c in failed)} (tolerance "
                                f"{tolerance:.3g} on batch sizes {', '.join(map(str, sizes))}; {numbers}); "
                                "nothing was exported")
    return checks


@torch.no_grad()
def reference_outputs(model: torch.nn.Module, inputs: Sequence[Tensor]) -> list[Tensor]:
    model.eval()
    return [model(x).detach().cpu() for x in inputs]
