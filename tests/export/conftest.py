"""A small trained run directory (synthetic data, `small` space at 24/28 px) shared by the export tests."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from export_fronts import front_archs
from omegaconf import OmegaConf
from typer.testing import CliRunner

from supernet.config import compose_config, space_from_config
from supernet.data import make_loader, normalize
from supernet.export.data import data_settings, load_splits
from supernet.models import Supernet
from supernet.run.bn_recalibration import resize_batch
from supernet.run.directory import load_supernet, save_checkpoint
from supernet.space import Arch
from supernet_cli.main import app

OVERRIDES = [
    "data.name=synthetic", "data.val_size=96", "data.synthetic.train_size=576",
    "data.synthetic.test_size=128", "data.synthetic.image_size=28",
    "val.calib_images=96", "val.calib_batch_size=48", "val.batch_size=64",
    "space.resolutions=[24,28]", "seed=0",
]
TRAIN_STEPS = 4


def _train(model: Supernet, cfg, steps: int) -> None:
    """A few SGD steps on the min and a random child, so that logits have real margins (not near-ties)."""
    splits = load_splits(data_settings(cfg))
    space = model.space
    rng = random.Random(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    step = 0
    while step < steps:
        for images, labels in make_loader(splits.train, 32, shuffle=True, seed=0, epoch=step):
            x = normalize(images, splits.mean, splits.std)
            optimizer.zero_grad()
            for arch in (space.min(), space.sample(rng)):
                model.set_active(arch)
                F.cross_entropy(model(resize_batch(x, arch.resolution)), labels).backward()
            optimizer.step()
            step += 1
            if step == steps:
                break
    model.eval()


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = compose_config("train", OVERRIDES)
    model = Supernet(space_from_config(cfg))
    _train(model, cfg, TRAIN_STEPS)
    root = tmp_path_factory.mktemp("run")
    OmegaConf.save(cfg, root / "config.yaml", resolve=True)
    save_checkpoint(root / "checkpoints" / "best.pt", {"model": model.state_dict()}, {"step": TRAIN_STEPS})
    return root


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def arch(run_dir: Path) -> Arch:
    """The front's middle entry: a non-max child at 24 px (so inputs are resized from 28)."""
    _, cfg = load_supernet(run_dir)
    return front_archs(space_from_config(cfg))[1]


@pytest.fixture(scope="session")
def exported(run_dir: Path, arch: Arch, runner: CliRunner, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "child"
    # --target gpu on a machine without one: the card must say "not measured" rather than fail
    target = "cpu" if torch.cuda.is_available() else "gpu"
    result = runner.invoke(app, ["export", str(run_dir), "--arch", str(arch), "--out", str(out),
                                 "--target", target])
    assert result.exit_code == 0, result.output
    assert "max abs diff" in result.stdout and "ok" in result.stdout
    return out
