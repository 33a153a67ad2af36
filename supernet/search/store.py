"""The search's own files: the children it knows (`candidates.jsonl`) and the resume state (`state.json`).

Both are rewritten atomically after every generation; the accuracies themselves live in the run's
accuracy store. `state.json` records what the evaluations and the generations depend on, so a resume
under other settings is refused instead of silently mixed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supernet.run.files import atomic_write_text
from supernet.search.errors import SearchStateError
from supernet.search.objectives import Measures
from supernet.space import Arch

STATE_FORMAT = "supernet-search-state"
STATE_VERSION = 2


@dataclass(frozen=True)
class Candidate:
    """One truly evaluated child: validation accuracy and its cheap measures."""

    arch: Arch
    accuracy: float
    measures: Measures
    generation: int  # the generation that first met it (-1: known from the run's store before)
    images: int = 0  # the validation images its accuracy was counted on

    def value(self, name: str) -> float:
        return self.accuracy if name == "accuracy" else self.measures.get(name)

    def to_json(self) -> dict[str, Any]:
        m = self.measures
        return {"arch": str(self.arch), "accuracy": self.accuracy, "latency_ms": m.latency_ms,
                "params": m.params, "flops": m.flops, "memory_bytes": m.memory_bytes,
                "generation": self.generation, "images": self.images}


def write_candidates(path: Path, candidates: Iterable[Candidate]) -> None:
    """candidates.jsonl: every child the search knows, one JSON line each, rewritten whole."""
    atomic_write_text(path, "".join(json.dumps(c.to_json()) + "\n" for c in candidates))


@dataclass
class SearchState:
    """What was done so far, and what it depended on."""

    trajectory: dict[str, Any]
    evaluation: dict[str, Any]  # what an accuracy depends on: checkpoint, calibration and validation data
    latency: dict[str, Any]  # which latency table predicted
    generation: int = -1  # the last completed generation (-1: none yet)
    finished: bool = False
    prior_records: int = 0  # the accuracy store's records when the search began: what it started from

    def to_json(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "trajectory": self.trajectory,
                "evaluation": self.evaluation, "latency": self.latency, "generation": self.generation,
                "finished": self.finished, "prior_records": self.prior_records}

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> SearchState | None:
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if data.get("format") != STATE_FORMAT or data.get("version") != STATE_VERSION:
                raise ValueError(f"not a version-{STATE_VERSION} search state")
            return cls(dict(data["trajectory"]), dict(data["evaluation"]), dict(data["latency"]),
                       int(data["generation"]), bool(data["finished"]), int(data["prior_records"]))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise SearchStateError(f"search state {path} is damaged ({err}); start over with --restart"
                                   ) from err

    def differences(self, other: SearchState) -> list[str]:
        """What differs from `other` in what the results depend on, as 'key: here vs there'."""
        out = []
        for section in ("trajectory", "evaluation", "latency"):
            mine, theirs = getattr(self, section), getattr(other, section)
            out += [f"{section}.{k}: {mine.get(k)!r} vs {theirs.get(k)!r}"
                    for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]
        return out
