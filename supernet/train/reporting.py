"""What a run tells people (progress bar, per-epoch table) and machines (metrics.jsonl, TensorBoard)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table


class MetricsLog:
    """One JSON object per line, flushed at once so a crash loses nothing already logged."""

    def __init__(self, path: Path, tensorboard_dir: Path | None = None) -> None:
        self.path = path
        self._file = open(path, "a")  # noqa: SIM115  (held open for the run's lifetime)
        self._tb = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                from supernet.errors import SupernetError

                raise SupernetError("log.tensorboard=true needs the tensorboard package: "
                                    "pip install 'supernet[tensorboard]'") from err
            self._tb = SummaryWriter(str(tensorboard_dir))

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in _flatten(record).items():
                if isinstance(value, int | float) and key != "step":
                    self._tb.add_scalar(key, value, record.get("step", 0))

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def epoch_table(epoch: int, step: int, rows: list[dict[str, Any]], extra: dict[str, Any]) -> Table:
    title = f"epoch {epoch} · step {step}" + "".join(f" · {k} {v}" for k, v in extra.items())
    table = Table(title=title)
    for column in ("child", "acc %", "params (M)", "FLOPs (M)", "arch"):
        table.add_column(column, justify="right" if column not in ("child", "arch") else "left")
    for row in rows:
        table.add_row(row["child"], f"{100 * row['acc']:.2f}", f"{row['params'] / 1e6:.3f}",
                      f"{row['flops'] / 1e6:.1f}", row["arch"])
    return table

