"""`supernet --help` and every `supernet <command> --help` answer without importing torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

HELPS = [["--help"], ["train", "--help"], ["search", "--help"], ["export", "--help"], ["eval", "--help"],
         ["specialise", "--help"], ["lut", "build", "--help"], ["lut", "validate", "--help"],
         ["config", "--help"], ["info", "--help"]]

PROBE = """
import sys
from supernet_cli.main import app
try:
    app(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print("exit", code, "torch" in sys.modules)
"""


@pytest.mark.parametrize("args", HELPS, ids=[" ".join(a) for a in HELPS])
def test_help_does_not_import_torch(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "exit 0 False", done.stdout[-500:]
