"""metrics.jsonl survives a writer killed mid-record and a full disk, and marks the steps run again."""

from __future__ import annotations

import errno
import json
import os

import pytest

from supernet.run.files import DiskFullError
from supernet.train import reporting
from supernet.train.reporting import MetricsLog, drop_torn_line, read_metrics


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_torn_last_line_is_cut_and_the_next_record_is_whole(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 4, "loss": 1.0}\n{"step": 5, "lo')
    log = MetricsLog(path, resumed_at=4)
    log.write({"step": 5, "loss": 0.9})
    log.close()
    assert _lines(path) == [{"step": 4, "loss": 1.0},
                            {"step": 4, "event": "resumed from step 4", "rewound_to": 4},
                            {"step": 5, "loss": 0.9}]


@pytest.mark.parametrize(("text", "kept"), [
    ("", ""), ("no newline at all", ""), ('{"a": 1}\n', '{"a": 1}\n'),
    ('{"a": 1}\n' + "x" * 70000, '{"a": 1}\n'),  # the torn line is longer than one read block
])
def test_drop_torn_line(tmp_path, text, kept):
    path = tmp_path / "m.jsonl"
    path.write_text(text)
    assert drop_torn_line(path) == len(text) - len(kept)
    assert path.read_text() == kept


def test_readers_drop_the_records_of_steps_run_again(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for step in (4, 8, 12):
        log.write({"step": step, "loss": float(step)})
    log.rewind(8, "rolled back")
    log.write({"step": 12, "loss": -12.0})
    log.write({"final": {"step": 12}})
    log.close()
    with open(path, "a") as f:
        f.write('{"step": 16, "lo')  # a writer killed mid-record, read before any resume repairs it
    records = read_metrics(path)
    assert [(r.get("step"), r.get("loss")) for r in records] == [
        (4, 4.0), (8, 8.0), (8, None), (12, -12.0), (None, None)]


def test_a_full_disk_leaves_no_half_record(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    log.write({"step": 1})
    real_write = os.write

    def half_then_full(fd, data):
        if len(data) > 10:
            real_write(fd, bytes(data[:10]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(reporting.os, "write", half_then_full)
    with pytest.raises(DiskFullError, match=r"cannot write .*metrics.jsonl \(\d+ B could not be written"):
        log.write({"step": 2, "loss": 1.5})
    assert path.read_text() == '{"step": 1}\n'
