"""scripts/gpu_check.sh on a machine without CUDA: one clear line, exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_check_skips_in_one_line_without_cuda(tmp_path: Path) -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "gpu check: skip (no CUDA device visible to torch here; run scripts/gpu_check.sh on a GPU machine)"]
    assert not (tmp_path / "out").exists()  # it started nothing
