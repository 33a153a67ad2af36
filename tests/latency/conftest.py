"""Fixtures of the latency tests."""

import pytest
from lut_support import TINY_SPACE
from typer.testing import CliRunner

from supernet.space import SearchSpace
from supernet_cli.main import app

# the small space cut to 8 children (kernel 3 or 5 per stage, resolution 24): 10 blocks (stem, first block,
# 2 per stage, final conv, classifier), a real onnxruntime build in a minute
SHRUNK = ["space.choices.kernel=[3,5]", "space.choices.expand=[2]", "space.choices.depth=[1]",
          "space.choices.width=[1.0]", "resolutions=[24]", "repeats=8", "warmup=2", "rounds=2", "threads=1",
          "sweeps=2", "statistic=min", "fit.children=3"]


@pytest.fixture
def tiny_space() -> SearchSpace:
    return SearchSpace.from_dict(TINY_SPACE)


@pytest.fixture(scope="session")
def built_table(tmp_path_factory):
    """A real onnxruntime table of the shrunk small space, built by `supernet lut build`: (path, output)."""
    folder = tmp_path_factory.mktemp("lut")
    out = folder / "small.json"
    result = CliRunner().invoke(app, ["lut", "build", "--target", "cpu", "--out", str(out), *SHRUNK,
                                      f"cache_dir={folder}"])
    assert result.exit_code == 0, result.output
    return out, result.output
