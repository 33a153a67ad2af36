"""The run's accuracy store: every child evaluated by any search of a run, for any device, kept once.

One append-only JSONL file per evaluation key (checkpoint digest, calibration data and batching, validation
data, precision, device type), under RUN_DIR/search/accuracy/. A record is a child's top-1 hits on a prefix of
the validation images; a prefix and the full set are separate records, so a search that asked for the
prefix gets the same value again on a replay. Each record is appended by one `write` under an exclusive
`flock` after mending a torn last line (a writer killed mid-line), and lines that do not parse are
skipped on read: two searches may share the store at once, and a kill costs at most the children in
flight.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supernet.run.files import atomic_write_text
from supernet.run.lock import shared_append
from supernet.space import Arch

Request = tuple[Arch, int, int]  # a child and the validation images [start, stop) to count its hits on


@dataclass(frozen=True)
class Evaluation:
    """Top-1 hits of a child on the first `images` validation images."""

    arch: str
    correct: int
    images: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.images


def store_file(directory: Path, key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(directory) / f"{digest}.jsonl"


class AccuracyStore:
    """Evaluations of one run under one evaluation key; `records` lists them in file order."""

    def __init__(self, directory: str | Path, key: dict[str, Any]) -> None:
        self.path = store_file(Path(directory), key)
        self.key = dict(key)
        key_file = self.path.with_suffix(".key.json")
        if not key_file.is_file():
            atomic_write_text(key_file, json.dumps(self.key, indent=1, sort_keys=True) + "\n")
        self.records: list[Evaluation] = []
        self._by: dict[tuple[str, int], Evaluation] = {}
        self._offset = 0
        self.refresh()

    def refresh(self) -> None:
        """Read what other processes appended since the last read (a line still being written waits)."""
        if not self.path.is_file():
            return
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        for line in data[:end].split(b"\n"):
            record = _parse(line)
            if record is not None:
                self.records.append(record)
                self._by.setdefault((record.arch, record.images), record)
        self._offset += end

    def get(self, arch: Arch, images: int) -> Evaluation | None:
        found = self._by.get((str(arch), images))
        if found is None:
            self.refresh()
            found = self._by.get((str(arch), images))
        return found

    def add(self, record: Evaluation) -> None:
        line = json.dumps({"arch": record.arch, "correct": record.correct, "images": record.images}) + "\n"
        with shared_append(self.path) as fd:
            size = os.fstat(fd).st_size
            torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
            os.write(fd, (b"\n" if torn else b"") + line.encode())
            os.fsync(fd)
        self._by.setdefault((record.arch, record.images), record)

    def evaluate(self, jobs: Sequence[tuple[Arch, int, Evaluation | None]],
                 count: Callable[[Sequence[Request]], Iterable[int]]
                 ) -> Iterator[tuple[Evaluation, bool]]:
        """Each job's (arch, images, prefix) record on the first `images` validation images, in job order,
        with True where it was computed: read from the store, else counted by one call of
        `count([(arch, start, stop), ...])` and appended as each count arrives. A known shorter `prefix` of
        the same images is extended instead of counted again."""
        jobs = list(jobs)
        found = [self.get(arch, images) for arch, images, _ in jobs]
        todo = [i for i, record in enumerate(found) if record is None]
        bases, requests = {}, []
        for i in todo:
            arch, images, prefix = jobs[i]
            extend = prefix is not None and prefix.images < images
            start, bases[i] = (prefix.images, prefix.correct) if extend else (0, 0)
            requests.append((arch, start, images))
        counts = iter(count(requests)) if requests else iter(())
        for i, (arch, images, _) in enumerate(jobs):
            if found[i] is not None:
                yield found[i], False
                continue
            record = Evaluation(str(arch), bases[i] + next(counts), images)
            self.add(record)
            yield record, True

    def __iter__(self) -> Iterator[Evaluation]:
        return iter(self.records)


def _parse(line: bytes) -> Evaluation | None:
    try:
        data = json.loads(line)
        record = Evaluation(str(data["arch"]), int(data["correct"]), int(data["images"]))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None  # a torn line of a killed writer, or a blank one
    return record if record.images > 0 else None
