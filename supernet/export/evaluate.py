"""`evaluate_export`: top-1 accuracy of an exported file, recomputed from the data settings in its card."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from supernet.errors import SupernetError, first_line
from supernet.export.card import check_files, read_card
from supernet.export.data import DEFAULT_EVAL_BATCH, labelled_batches, load_splits, split
from supernet.export.errors import ExportError
from supernet.export.loaders import PROGRAM_FORMATS, load_format
from supernet.export.writers import FORMATS
from supernet.run.child_eval import count_top1


@dataclass(frozen=True)
class EvalResult:
    export_dir: str
    arch: str
    split: str
    format: str
    top1: float
    images: int
    card_top1: float | None  # what card.json recorded for this split at export time
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def default_format(card: dict[str, Any]) -> str:
    for fmt in (*PROGRAM_FORMATS, "safetensors"):
        if fmt in card["formats"]:
            return fmt
    raise ExportError(f"the export holds no loadable model (formats: {card['formats']})")


def evaluate_export(export_dir: Path, split_name: str = "test", fmt: str | None = None,
                    batch_size: int = DEFAULT_EVAL_BATCH) -> EvalResult:
    start = time.perf_counter()
    export_dir = Path(export_dir)
    card = read_card(export_dir)
    fmt = fmt or default_format(card)
    if fmt not in card["formats"]:
        raise ExportError(f"--format {fmt}: this export holds {', '.join(card['formats'])} only")
    check_files(export_dir, card)  # every file, not only the one evaluated: a damaged one is never silent
    predict = load_format(export_dir, fmt, card)
    splits = load_splits(card["data"])
    pre = card["preprocessing"]
    if splits.in_channels != pre["channels"]:
        raise ExportError(f"the data in card.json gives {splits.in_channels}-channel images but the model "
                          f"takes {pre['channels']}; is the dataset at {card['data'].get('root')} the one "
                          "it was exported with?")
    dataset = split(splits, split_name)
    try:
        batches = labelled_batches(dataset, pre["mean"], pre["std"], pre["resolution"], batch_size)
        hits, count = count_top1(predict, batches)
    except SupernetError:
        raise
    except Exception as err:  # a file that loads yet cannot run on the card's input
        path = export_dir / FORMATS[fmt].filename
        raise ExportError(f"{path} loaded but failed on {split_name} images ({first_line(err)}); the file "
                          "or card.json is damaged. Re-export the child") from err
    if count == 0:
        raise ExportError(f"the {split_name} split of {card['data']['name']} is empty; nothing to evaluate")
    recorded = card.get("accuracy", {}).get(f"{split_name}_top1")
    return EvalResult(str(export_dir), card["arch"], split_name, fmt, hits / count, count, recorded,
                      time.perf_counter() - start)
