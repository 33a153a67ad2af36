"""Atomic writes on a full disk, and the clean-up of temp files that killed writers left behind."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time

import pytest

from supernet.run import files
from supernet.run.files import DiskFullError, atomic_write_bytes, atomic_write_data, remove_stale_temporaries


def _temporaries(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_write_that_cannot_fit_is_refused_before_the_disk_is_touched(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    target.write_bytes(b"old")
    monkeypatch.setattr(files, "free_bytes", lambda folder: 1000)
    with pytest.raises(DiskFullError, match=rf"cannot write {target} \(it needs 5.0 kB, 1.0 kB free\)"):
        atomic_write_data(target, b"x" * 5000)
    assert target.read_bytes() == b"old" and _temporaries(tmp_path) == []


def test_enospc_during_a_write_names_the_bytes_not_written_and_removes_the_temp_file(tmp_path):
    def half_then_full(f):
        f.write(b"x" * 400)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    target = tmp_path / "metrics.bin"
    with pytest.raises(DiskFullError, match=r"metrics.bin \(600 B could not be written"):
        atomic_write_bytes(target, half_then_full, size=1000)
    assert not target.exists() and _temporaries(tmp_path) == []


def test_other_write_errors_pass_through_and_clean_up(tmp_path):
    def broken(f):
        raise OSError(errno.EIO, "I/O error")

    with pytest.raises(OSError, match="I/O error"):
        atomic_write_bytes(tmp_path / "a", broken)
    assert list(tmp_path.iterdir()) == []


def test_a_real_full_disk_gives_one_line_and_leaves_it_empty(small_disk, monkeypatch):
    disk = small_disk(256 * 1024)
    with pytest.raises(DiskFullError, match=r"it needs 1.0 MB"):
        atomic_write_data(disk / "big.bin", b"x" * 1_000_000)
    # Past the free-space check (as when another writer fills the disk meanwhile), the kernel's ENOSPC.
    monkeypatch.setattr(files, "free_bytes", lambda folder: 1 << 40)
    with pytest.raises(DiskFullError, match=r"big.bin \(.* could not be written"):
        atomic_write_data(disk / "big.bin", b"x" * 1_000_000)
    assert list(disk.iterdir()) == []


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    return int(proc.stdout)


def _touch(path, age_s: float = 0.0):
    path.write_bytes(b"partial")
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_only_temporaries_of_gone_writers_from_before_this_process_are_removed(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    old = 3600 + time.time() - files.PROCESS_START
    stale = _touch(tmp_path / f".config.yaml.{dead}.abcd1234.tmp", old)
    stale_folder = tmp_path / f".child.{dead}.efgh5678.tmp"
    stale_folder.mkdir()
    _touch(stale_folder / "model.pt2")
    os.utime(stale_folder, (time.time() - old, time.time() - old))
    running = _touch(tmp_path / f".results.json.{alive}.ijkl9012.tmp", old)
    fresh = _touch(tmp_path / f".versions.json.{dead}.mnop3456.tmp", -10)  # written after this process began
    unnamed = _touch(tmp_path / ".last.pt.qrst7890.tmp", old)  # no writer id: nobody can tell whose
    ordinary = _touch(tmp_path / "notes.tmp", old)
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted([stale.name, stale_folder.name])
    assert all(p.exists() for p in (running, fresh, unnamed, ordinary))
    own = _touch(tmp_path / f".last.pt.{os.getpid()}.uvwx1234.tmp", old)
    removed = remove_stale_temporaries(tmp_path, every=True)
    assert sorted(p.name for p in removed) == sorted([running.name, fresh.name, unnamed.name])
    assert own.exists() and ordinary.exists()


def test_a_name_limits_the_clean_up_to_that_target(tmp_path):
    dead, old = _dead_pid(), 3600 + time.time() - files.PROCESS_START
    mine = _touch(tmp_path / f".child.{dead}.abcd1234.tmp", old)
    other = _touch(tmp_path / f".other.{dead}.abcd1234.tmp", old)
    assert remove_stale_temporaries(tmp_path, name="child") == [mine]
    assert other.exists()
