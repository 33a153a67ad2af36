"""Choosing the child: --arch, --pick N|best, --max-latency-ms with --target, and each way to get it wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from export_fronts import write_front

from supernet.config import compose_config, space_from_config
from supernet.errors import SupernetError
from supernet.export import SelectionError, select_arch
from supernet.space import ArchError


@pytest.fixture(scope="module")
def space():
    return space_from_config(compose_config("train", ["data.name=synthetic", "space.resolutions=[24,28]"]))


@pytest.fixture
def run(tmp_path: Path, space):
    archs = write_front(tmp_path / "search" / "cpu", space)
    return tmp_path, archs


def test_arch_string_is_parsed_and_validated(space, tmp_path):
    arch = space.max()
    assert select_arch(space, tmp_path, arch=str(arch)).arch == arch
    bad = str(arch).replace("w1:", "w0.5:", 1)
    with pytest.raises(ArchError, match=r"stage 0 width 0.5 is not one of \{0.75, 1\}"):
        select_arch(space, tmp_path, arch=bad)
    with pytest.raises(ArchError, match="resolution 32 is not one of"):
        select_arch(space, tmp_path, arch=str(arch).replace("r28", "r32", 1))


def test_pick_by_index_and_best(space, run):
    run_dir, archs = run
    for i, arch in enumerate(archs):
        chosen = select_arch(space, run_dir, pick=str(i))
        assert (chosen.arch, chosen.index, chosen.how) == (arch, i, "pick")
    best = select_arch(space, run_dir, pick="best")
    assert (best.arch, best.index) == (archs[1], 1)  # accuracy 0.74 is the highest
    assert best.predicted_latency_ms == 2.5
    assert best.describe()["entry"]["accuracy"] == 0.74
    assert select_arch(space, run_dir, pick="0", target="cpu").target == "cpu"


def test_pick_out_of_range_names_the_front_size(space, run):
    run_dir, _ = run
    with pytest.raises(SelectionError, match=r"--pick 3 is out of range: .* has 3 entries \(0..2\)"):
        select_arch(space, run_dir, pick="3")
    with pytest.raises(SelectionError, match="neither an index"):
        select_arch(space, run_dir, pick="fastest")


def test_max_latency_picks_the_most_accurate_within_budget(space, run):
    run_dir, archs = run
    assert select_arch(space, run_dir, max_latency_ms=10.0, target="cpu").arch == archs[1]
    assert select_arch(space, run_dir, max_latency_ms=2.4, target="cpu").arch == archs[0]
    assert select_arch(space, run_dir, max_latency_ms=2.5, target="cpu").arch == archs[1]  # inclusive
    with pytest.raises(SelectionError, match=r"meets --max-latency-ms 1: the fastest is predicted at 1.5 ms"):
        select_arch(space, run_dir, max_latency_ms=1.0, target="cpu")
    with pytest.raises(SelectionError, match="needs --target"):
        select_arch(space, run_dir, max_latency_ms=1.0)


def test_missing_front_says_which_command_makes_it(space, tmp_path):
    with pytest.raises(SelectionError, match=r"no pareto.json .*run `supernet search .* --target gpu` first"):
        select_arch(space, tmp_path, pick="0", target="gpu")
    with pytest.raises(SelectionError, match=r"no pareto.json under .*supernet search"):
        select_arch(space, tmp_path, pick="0")
    with pytest.raises(SelectionError, match=r"no pareto.json at"):
        select_arch(space, tmp_path, pick="0", search_dir=tmp_path / "elsewhere")


def test_several_targets_need_target_and_search_dir_overrides(space, run):
    run_dir, archs = run
    gpu_archs = write_front(run_dir / "search" / "gpu", space, target="gpu", accuracies=(0.9, 0.5, 0.4))
    with pytest.raises(SelectionError, match=r"several targets \(cpu, gpu\)"):
        select_arch(space, run_dir, pick="best")
    assert select_arch(space, run_dir, pick="best", target="gpu").arch == gpu_archs[0]
    assert select_arch(space, run_dir, pick="best", search_dir=run_dir / "search" / "cpu").arch == archs[1]
    with pytest.raises(SelectionError, match="is a front for target 'gpu', not --target 'cpu'"):
        select_arch(space, run_dir, pick="0", target="cpu", search_dir=run_dir / "search" / "gpu")


def test_exactly_one_way_of_choosing(space, run):
    run_dir, archs = run
    with pytest.raises(SelectionError, match="exactly one of"):
        select_arch(space, run_dir)
    with pytest.raises(SelectionError, match="got --arch, --pick"):
        select_arch(space, run_dir, arch=str(archs[0]), pick="0")
    with pytest.raises(SelectionError, match="--target 'tpu' is not one of cpu, gpu"):
        select_arch(space, run_dir, pick="0", target="tpu")


def test_front_from_another_space_or_damaged_is_refused(space, run):
    run_dir, _ = run
    path = run_dir / "search" / "cpu" / "pareto.json"
    data = json.loads(path.read_text())
    data["front"][1]["arch"] = "r24-w1:k7e4-w1:k3e3-w1:k3e3"
    path.write_text(json.dumps(data))
    with pytest.raises(SelectionError, match=r"front entry 1 is not a child of this run's space: .*stage 0"):
        select_arch(space, run_dir, pick="1")
    del data["front"][2]["latency_ms"]
    path.write_text(json.dumps(data))
    with pytest.raises(SelectionError, match="front entry 2 lacks latency_ms"):
        select_arch(space, run_dir, pick="0")
    path.write_text("{not json")
    with pytest.raises(SelectionError, match="cannot be read as JSON"):
        select_arch(space, run_dir, pick="0")
    assert issubclass(SelectionError, SupernetError)


def test_a_target_finds_the_front_of_its_one_runtime_device(tmp_path) -> None:
    from supernet.export.select import find_pareto

    front = tmp_path / "search" / "cpu-onnxruntime" / "pareto.json"
    front.parent.mkdir(parents=True)
    front.write_text("{}")
    assert find_pareto(tmp_path, "cpu", None) == front
    (tmp_path / "search" / "cpu-torch").mkdir()
    (tmp_path / "search" / "cpu-torch" / "pareto.json").write_text("{}")
    with pytest.raises(SelectionError, match="several cpu devices"):
        find_pareto(tmp_path, "cpu", None)
