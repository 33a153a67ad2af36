"""Every shipped config composes, every shipped space builds, and the CLI shows a space."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from omegaconf import OmegaConf
from typer.testing import CliRunner

from supernet.config import CONFIG_DIR, ConfigError, compose_config, space_from_config
from supernet.models import Supernet
from supernet.run.directory import read_run_config
from supernet.space import SearchSpace
from supernet.train.config import SandwichConfig, TrainConfig
from supernet_cli.main import app

TOP_LEVEL = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
GROUP_FILES = sorted((p.parent.name, p.stem) for p in CONFIG_DIR.glob("*/*.yaml"))
SPACES = sorted(p.stem for p in (CONFIG_DIR / "space").glob("*.yaml"))
TRAIN_GROUPS = {next(iter(d)) for d in yaml.safe_load((CONFIG_DIR / "train.yaml").read_text())["defaults"]
                if isinstance(d, dict)}

runner = CliRunner()


def test_the_config_folder_is_found() -> None:
    assert {"train", "space/small", "space/ofa_mbv3"} <= set(TOP_LEVEL) | {f"{g}/{n}" for g, n in GROUP_FILES}


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_top_level_config_composes(name: str) -> None:
    cfg = compose_config(name)
    assert OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize(("group", "name"), GROUP_FILES, ids=[f"{g}/{n}" for g, n in GROUP_FILES])
def test_group_config_composes_into_train(group: str, name: str) -> None:
    # A group that train.yaml chooses by default is swapped; any other is added.
    override = f"{group}={name}" if group in TRAIN_GROUPS else f"+{group}={name}"
    cfg = compose_config("train", [override])
    node = OmegaConf.to_container(cfg[group], resolve=True)
    written = yaml.safe_load((CONFIG_DIR / group / f"{name}.yaml").read_text())
    written.pop("defaults", None)  # a group option may extend its schema, whose defaults fill the rest
    assert {k: node[k] for k in written} == written


@pytest.mark.parametrize("name", SPACES)
def test_shipped_space_builds_a_supernet(name: str) -> None:
    space = space_from_config(compose_config("train", [f"space={name}"]))
    assert space.name == name
    net = Supernet(space)
    assert sum(p.numel() for p in net.extract(space.max()).parameters()) == space.params(space.max())
    assert SearchSpace.from_yaml(CONFIG_DIR / "space" / f"{name}.yaml").spec == space.spec


def test_space_overrides_reach_the_space() -> None:
    space = space_from_config(compose_config("train", ["space=small", "space.resolutions=[24,28]"]))
    assert space.spec.resolutions == (24, 28)


@pytest.mark.parametrize("override", ["no_such_key=1", "optim.no_such_key=1"])
def test_unknown_override_key_is_a_config_error(override: str) -> None:
    with pytest.raises(ConfigError) as err:
        compose_config("train", [override])
    assert override.split("=")[0] in str(err.value)


def test_unknown_group_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no_such_space"):
        compose_config("train", ["space=no_such_space"])


def test_info_shows_the_space(ofa_space: SearchSpace) -> None:
    result = runner.invoke(app, ["info", "space=ofa_mbv3"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the table may wrap long cells
    assert "ofa_mbv3" in text
    assert f"{ofa_space.size():.3e} children" in text
    for arch in (ofa_space.max(), ofa_space.min()):
        assert f"{ofa_space.params(arch) / 1e6:.3f}" in text


def test_info_json(small_space: SearchSpace) -> None:
    result = runner.invoke(app, ["info", "space=small", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["name"] == "small" and data["children"] == small_space.size()
    assert data["max"] == {"arch": str(small_space.max()), "params": small_space.params(small_space.max()),
                           "flops": small_space.flops(small_space.max())}
    assert data["min"]["params"] == small_space.params(small_space.min())


def test_info_bad_override_is_one_line_and_exit_code_2() -> None:
    result = runner.invoke(app, ["info", "no_such_key=1"])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    names += [g.name for g in app.registered_groups]
    assert "info" in names
    for name in names:
        assert name in result.output


@pytest.mark.parametrize(("override", "message"), [
    ("epochs=abc", "epochs: Value 'abc' of type 'str' could not be converted to Float"),
    ("no_such=1", "Key 'no_such' not in 'TrainConfig'"),
    ("data.no_such=1", "Key 'no_such' not in 'DataConfig'"),
    ("optim.lr=-1", "optim.lr=-1.0: must be greater than 0"),
    ("optim.lr=0", "optim.lr=0.0: must be greater than 0"),
    ("epochs=-1", "epochs=-1.0: must be greater than 0"),
    ("data.batch_size=-1", "data.batch_size=-1: must be at least 1"),
    ("optim.momentum=2", "optim.momentum=2.0: must be at most 1"),
    ("precision=fp8", "precision='fp8': choose one of"),
    ("strategy.num_random=-1", "strategy.num_random=-1: must be at least 0"),
    ("strategy.no_such=1", "Key 'no_such' not in 'SandwichConfig'"),
])
def test_every_bad_value_is_one_line_naming_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        compose_config("train", [override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_defaults_live_in_the_schema_and_yaml_only_overrides() -> None:
    cfg = compose_config("train")
    assert cfg.optim.lr == TrainConfig().optim.lr and cfg.strategy.num_random == SandwichConfig().num_random
    assert "optim" not in yaml.safe_load((CONFIG_DIR / "train.yaml").read_text())


def test_a_run_config_read_back_is_checked(tmp_path) -> None:
    cfg = compose_config("train")
    cfg.data.batch_size = 0  # attribute writes are type-checked, not range-checked
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    with pytest.raises(ConfigError, match=re.escape("data.batch_size=0: must be at least 1")):
        read_run_config(tmp_path)


def test_config_command_prints_the_resolved_config() -> None:
    result = runner.invoke(app, ["config", "train", "optim.lr=0.05"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["optim"]["lr"] == 0.05
    bad = runner.invoke(app, ["config", "train", "optim.lr=-1"])
    assert bad.exit_code == 2 and "optim.lr=-1.0: must be greater than 0" in bad.output
