"""Exports on a full disk, and `supernet eval` on damaged files: one line, exit 2, nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from test_export_cli import invoke, one_line
from typer.testing import CliRunner

from supernet.run import files
from supernet.run.files import sha256_file


def _error(result) -> str:
    assert result.exit_code == 2, one_line(result)
    assert "Traceback" not in result.output
    text = one_line(result)
    assert text.count("error:") == 1, text
    return text[text.index("error:"):]


def _fill(disk: Path, leave: int) -> None:
    """Fill `disk` but for about `leave` bytes."""
    free = shutil.disk_usage(disk).free
    (disk / "filler").write_bytes(b"\0" * max(0, free - leave))


def test_a_full_disk_refuses_the_first_file_and_removes_the_staging_folder(run_dir, arch, runner,
                                                                           small_disk):
    disk = small_disk(4 << 20)
    _fill(disk, 16 * 1024)
    text = _error(invoke(runner, "export", run_dir, "--arch", str(arch), "--out", disk / "child",
                         "--formats", "safetensors,torchscript"))
    assert f"disk full: cannot write {disk}/child/weights.safetensors (it needs" in text
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_enospc_from_the_disk_itself_is_one_line_not_an_abort(run_dir, arch, runner, small_disk,
                                                              monkeypatch):
    # torch's zip writer (TorchScript, pt2) aborted the process here; the writers now hand it bytes.
    disk = small_disk(4 << 20)
    _fill(disk, 16 * 1024)
    monkeypatch.setattr(files, "free_bytes", lambda folder: 1 << 40)  # past the check, to the kernel
    text = _error(invoke(runner, "export", run_dir, "--arch", str(arch), "--out", disk / "child",
                         "--formats", "torchscript"))
    assert f"disk full: cannot write {disk}/child/model.ts" in text and "could not be written" in text
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_injected_full_disk_names_the_final_path(run_dir, arch, runner, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "free_bytes", lambda folder: 1000)
    out = tmp_path / "exports" / "child"
    text = _error(invoke(runner, "export", run_dir, "--arch", str(arch), "--out", out, "--formats", "pt2"))
    assert f"disk full: cannot write {out}/model.pt2 (it needs" in text and "1.0 kB free" in text
    assert list((tmp_path / "exports").iterdir()) == []


def test_stale_staging_folders_of_a_killed_export_are_removed(run_dir, arch, runner, tmp_path):
    out = tmp_path / "exports" / "child"
    out.parent.mkdir()
    stale = out.parent / ".child.999999999.abcd1234.tmp"  # no such process id on Linux
    stale.mkdir()
    (stale / "model.pt2").write_bytes(b"half")
    old = time.time() - 3600  # killed before this process started
    os.utime(stale, (old, old))
    result = invoke(runner, "export", run_dir, "--arch", str(arch), "--out", out, "--formats", "safetensors")
    assert result.exit_code == 0, one_line(result)
    assert sorted(p.name for p in out.parent.iterdir()) == ["child"]


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x08\x07garbage, not a model" * 50)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


TAMPERED = [
    ("model.onnx", _garbage, ["--format", "onnx"]),
    ("model.onnx", _garbage, []),  # not the format evaluated, and still noticed
    ("model.pt2", _garbage, []),
    ("model.ts", _empty, ["--format", "torchscript"]),
    ("weights.safetensors", _truncated, ["--format", "safetensors"]),
]


@pytest.fixture
def damaged(exported, tmp_path):
    def make(name: str, damage, update_card: bool = False) -> Path:
        copy = tmp_path / "child"
        shutil.copytree(exported, copy)
        damage(copy / name)
        if update_card:  # a card edited to match: only the loaders stand between the file and the user
            card = json.loads((copy / "card.json").read_text())
            for info in card["files"].values():
                if info["file"] == name:
                    info.update(bytes=(copy / name).stat().st_size, sha256=sha256_file(copy / name))
            (copy / "card.json").write_text(json.dumps(card))
        return copy

    return make


@pytest.mark.parametrize(("name", "damage", "args"), TAMPERED)
def test_eval_names_the_damaged_file_from_its_digest(damaged, runner: CliRunner, name, damage, args):
    folder = damaged(name, damage)
    text = _error(invoke(runner, "eval", folder, *args))
    assert f"{folder / name}" in text and "is damaged" in text and "Re-export" in text


@pytest.mark.parametrize(("name", "damage", "args"), [t for t in TAMPERED if t[2]] + [TAMPERED[2]])
def test_every_loader_failure_is_one_line(damaged, runner: CliRunner, name, damage, args):
    folder = damaged(name, damage, update_card=True)
    text = _error(invoke(runner, "eval", folder, *args))
    assert f"{folder / name} cannot be loaded as" in text and "Re-export" in text
