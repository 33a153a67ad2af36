"""The search's own files: every evaluated child (`candidates.jsonl`) and the resume state (`state.json`).

`candidates.jsonl` gets one line per truly evaluated child, flushed at once, so an interrupted search
loses at most the child being evaluated; a torn last line (a kill during the write) is dropped on read.
`state.json` is rewritten atomically after every generation and records what the evaluations and the
generations depend on, so a resume under other settings is refused instead of silently mixed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supernet.run.files import atomic_write_text
from supernet.search.errors import SearchStateError
from supernet.search.objectives import Measures
from supernet.space import Arch, ArchError, SearchSpace

STATE_FORMAT = "supernet-search-state"
STATE_VERSION = 1


@dataclass(frozen=True)
class Candidate:
    """One truly evaluated child: validation accuracy and its cheap measures."""

    arch: Arch
    accuracy: float
    measures: Measures
    generation: int

    def value(self, name: str) -> float:
        return self.accuracy if name == "accuracy" else self.measures.get(name)

    def to_json(self) -> dict[str, Any]:
        m = self.measures
        return {"arch": str(self.arch), "accuracy": self.accuracy, "latency_ms": m.latency_ms,
                "params": m.params, "flops": m.flops, "memory_bytes": m.memory_bytes,
                "generation": self.generation}


class CandidateLog:
    """The evaluated children in evaluation order, in memory and appended to `candidates.jsonl`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.by_arch: dict[Arch, Candidate] = {}

    def load(self, space: SearchSpace, measures) -> None:
        """Read an earlier search's evaluations; the cheap measures are recomputed from `measures`."""
        for line_no, record in _records(self.path):
            try:
                arch = space.parse(record["arch"])
                accuracy = float(record["accuracy"])
                generation = int(record["generation"])
            except (KeyError, TypeError, ValueError, ArchError) as err:
                raise SearchStateError(f"{self.path} line {line_no} is not a candidate of this run's space "
                                       f"({err}); start over with --restart") from err
            self.by_arch.setdefault(arch, Candidate(arch, accuracy, measures(arch), generation))
        self._end_on_a_line_break()

    def _end_on_a_line_break(self) -> None:
        """End the file on a line break, so the next append starts a line of its own: a last line written
        whole but for its line break is completed, a torn one (dropped on read) is cut off."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        start = data.rfind(b"\n") + 1
        try:
            json.loads(data[start:])
        except (json.JSONDecodeError, UnicodeDecodeError):
            with open(self.path, "r+b") as f:
                f.truncate(start)
            return
        with open(self.path, "ab") as f:
            f.write(b"\n")

    def get(self, arch: Arch) -> Candidate | None:
        return self.by_arch.get(arch)

    def add(self, candidate: Candidate) -> None:
        self.by_arch[candidate.arch] = candidate
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(candidate.to_json()) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def __len__(self) -> int:
        return len(self.by_arch)

    def __iter__(self) -> Iterator[Candidate]:
        return iter(self.by_arch.values())


def _records(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        return
    lines = path.read_text().split("\n")
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if i == len(lines):  # the torn last line of an interrupted write: that child is re-evaluated
                return
            raise SearchStateError(f"{path} line {i} is not JSON ({err}); start over with --restart") from err
        yield i, record


@dataclass
class SearchState:
    """What was done so far, and what it depended on."""

    trajectory: dict[str, Any]
    evaluation: dict[str, Any]  # what an accuracy depends on: checkpoint, calibration and validation data
    latency: dict[str, Any]  # which latency table predicted
    generation: int = -1  # the last completed generation (-1: none yet)
    finished: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "trajectory": self.trajectory,
                "evaluation": self.evaluation, "latency": self.latency, "generation": self.generation,
                "finished": self.finished}

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
                       int(data["generation"]), bool(data["finished"]))
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
