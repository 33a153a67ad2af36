"""The README's Python example runs as written, and the public names import without torch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    section = README.read_text().split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_the_readme_example_trains_measures_searches_and_exports(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_example(), "README.md", "exec"), {})
    card = (tmp_path / "exports" / "demo" / "card.json")
    assert card.is_file() and (tmp_path / "exports" / "demo" / "model.onnx").is_file()
    assert (tmp_path / "luts" / "demo.json").is_file()
    assert (tmp_path / "runs" / "demo" / "search").is_dir()


def test_importing_the_package_is_light() -> None:
    probe = ("import sys, supernet; supernet.Arch; print(sorted(supernet.__all__)); "
             "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    names, torch_loaded = done.stdout.strip().splitlines()
    assert "train_supernet" in names and "export_model" in names
    assert torch_loaded == "False"
