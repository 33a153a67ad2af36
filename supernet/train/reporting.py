"""What a run tells people (progress bar, per-epoch table) and machines (metrics.jsonl, TensorBoard).

metrics.jsonl is append-only. When a run goes back to an earlier step (a resume, or the loss guard's
rollback), it writes a record with `"rewound_to": S`; the records before it with a step above S belong to
steps that are then run again, and `read_metrics` drops them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rich.table import Table

from supernet.run.files import DiskFullError, free_bytes, is_disk_full

REWOUND = "rewound_to"


class MetricsLog:
    """One JSON object per line, each handed to the kernel at once so a crash loses nothing logged."""

    def __init__(self, path: Path, tensorboard_dir: Path | None = None,
                 resumed_at: int | None = None) -> None:
        self.path = Path(path)
        if self.path.is_file():
            drop_torn_line(self.path)  # a writer killed mid-record; the next record would be glued to it
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._tb = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                from supernet.errors import SupernetError

                raise SupernetError("log.tensorboard=true needs the tensorboard package: "
                                    "pip install 'supernet[tensorboard]'") from err
            # On resume, TensorBoard drops its own events of the steps that will be run again.
            purge = None if resumed_at is None else resumed_at + 1
            self._tb = SummaryWriter(str(tensorboard_dir), purge_step=purge)
        if resumed_at is not None:
            self.rewind(resumed_at, f"resumed from step {resumed_at}")

    def write(self, record: dict[str, Any]) -> None:
        data = memoryview((json.dumps(record, sort_keys=True) + "\n").encode())
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError as err:
            os.ftruncate(self._fd, start)  # never leave half a record
            if is_disk_full(err):
                raise DiskFullError(self.path, None, free_bytes(self.path.parent), len(data)) from None
            raise
        if self._tb is not None:
            for key, value in _flatten(record).items():
                if isinstance(value, int | float) and key != "step":
                    self._tb.add_scalar(key, value, record.get("step", 0))

    def rewind(self, step: int, message: str) -> None:
        """Mark that the run continues from `step`: what was logged after it is run (and logged) again."""
        self.write({"step": step, "event": message, REWOUND: step})

    def close(self) -> None:
        os.close(self._fd)
        if self._tb is not None:
            self._tb.close()


def drop_torn_line(path: Path) -> int:
    """Cut a last line that lacks its newline (its writer was killed mid-record); return the bytes cut."""
    with open(path, "r+b") as f:
        end = pos = f.seek(0, os.SEEK_END)
        keep = 0
        while pos > 0:
            start = max(0, pos - (1 << 16))
            f.seek(start)
            block = f.read(pos - start)
            if pos == end and block.endswith(b"\n"):
                return 0
            newline = block.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            pos = start
        f.truncate(keep)
    return end - keep


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl's records as the run stands: those of steps run again after a rewind are dropped,
    and so is a torn last line of a run still writing (or killed)."""
    records: list[dict[str, Any]] = []
    lines = Path(path).read_text().split("\n")
    for line in lines[:-1]:  # the text after the last newline is empty, or a torn record
        record = json.loads(line)
        if REWOUND in record:
            records = [r for r in records if r.get("step", -1) <= record[REWOUND]]
        records.append(record)
    return records


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

