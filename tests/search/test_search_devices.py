"""Many devices on one run: one store shared by every device and later search, a front per device, the
search lock, `export --device` and `supernet specialise`."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from pathlib import Path

import pytest
from search_support import CountingEvaluator, FlopsLatency, search_settings
from typer.testing import CliRunner

from supernet.run.lock import LockedError, exclusive
from supernet.search import AccuracyStore, Device, run_search, search_devices
from supernet.search.devices import _name, read_devices_file
from supernet.search.errors import SearchConfigError
from supernet.space import SearchSpace
from supernet_cli.main import app

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class DepthLatency:
    """A second stand-in device: latency driven by depth and resolution more than by FLOPs."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def predict(self, arch) -> float:
        return 0.02 * self.space.flops(arch) / 1e6 + 0.04 * sum(arch.depths) + 0.004 * arch.resolution


def asked_pairs(evaluator: CountingEvaluator) -> list[tuple[str, int]]:
    """(arch, images of the record made) for every evaluation asked of the evaluator."""
    return [(str(arch), stop) for arch, _start, stop in evaluator.asked]


@pytest.fixture(scope="module")
def two_devices(run_dir: Path, space: SearchSpace, tmp_path_factory: pytest.TempPathFactory):
    """Devices dev-a and dev-b searched one after the other into RUN_DIR/search/, on a store of their own."""
    store_dir = tmp_path_factory.mktemp("store")
    from supernet.search import AccuracyEvaluator

    settings = search_settings("constraints.max_latency_ms=null", f"evaluation.store_dir={store_dir}")
    evaluator = CountingEvaluator(AccuracyEvaluator.from_run(run_dir, settings.evaluation))
    devices = [Device("dev-a", FlopsLatency(space), "cpu"), Device("dev-b", DepthLatency(space), "cpu")]
    seen_before_b: list[set] = []
    calls_before_b: list[int] = []

    def note(name, stats):
        if name == "dev-a" and stats.generation == 3:
            store = AccuracyStore(store_dir, evaluator.key)
            seen_before_b.append({(r.arch, r.images) for r in store.records})
            calls_before_b.append(evaluator.calls)

    results = search_devices(run_dir, devices, settings, evaluator=evaluator, on_generation=note)
    return results, evaluator, seen_before_b[0], calls_before_b[0], store_dir, settings


def test_the_second_device_evaluates_only_children_the_store_lacks(two_devices):
    (a, b), evaluator, seen, calls_a, _, _ = two_devices
    asked_by_b = asked_pairs(evaluator)[calls_a:]
    assert len(asked_by_b) == b.evaluations_now + b.promotions_now
    assert not set(asked_by_b) & seen  # nothing the store held was evaluated again
    # b starts from what a evaluated, so it knows more children than it evaluates
    assert b.evaluations_now < len(b.candidates)
    assert sum(1 for c in b.candidates if c.generation == -1) == len({arch for arch, _ in seen})
    assert b.generations[0].evaluated < b.generations[0].children
    assert all(e.candidate.images == evaluator.num_images for e in a.front + b.front)


def test_a_later_search_of_the_run_reuses_every_device_evaluation(two_devices, run_dir, space, tmp_path):
    _, evaluator, _, _, store_dir, _ = two_devices
    before = {(r.arch, r.images) for r in AccuracyStore(store_dir, evaluator.key).records}
    calls = evaluator.calls
    later = search_settings("constraints.max_latency_ms=null", f"evaluation.store_dir={store_dir}", "seed=4",
                            f"out_dir={tmp_path}")
    result = run_search(run_dir, None, later, device=Device("dev-c", DepthLatency(space), "cpu"),
                        evaluator=evaluator)
    assert not set(asked_pairs(evaluator)[calls:]) & before
    assert evaluator.calls - calls == result.evaluations_now + result.promotions_now


def test_a_further_device_starts_from_the_store_and_waits_its_own_patience(two_devices, run_dir, space,
                                                                           tmp_path):
    """No generation can add a whole hypervolume: the seeded search stops after `seeded_patience`
    generations, while a search of a fresh store waits `patience` (here: never stops)."""
    _, evaluator, _, _, store_dir, _ = two_devices
    stall = ["stop.patience=null", "stop.seeded_patience=1", "stop.min_gain=1"]
    seeded = run_search(run_dir, None, search_settings("constraints.max_latency_ms=null", *stall,
                                                       f"evaluation.store_dir={store_dir}",
                                                       f"out_dir={tmp_path / 'seeded'}"),
                        device=Device("dev-d", DepthLatency(space), "cpu"), evaluator=evaluator)
    assert seeded.seeded and [g.generation for g in seeded.generations] == [0, 1]
    assert seeded.generations[0].evaluated == 0  # the whole first population came from the store
    summary = json.loads((tmp_path / "seeded" / "summary.json").read_text())
    assert summary["seeded_from_store"] is True and summary["stopped_early"] is True
    fresh = run_search(run_dir, None, search_settings("constraints.max_latency_ms=null", *stall,
                                                      f"evaluation.store_dir={tmp_path / 'store'}",
                                                      f"out_dir={tmp_path / 'fresh'}"),
                       device=Device("dev-d", DepthLatency(space), "cpu"), evaluator=evaluator)
    assert not fresh.seeded and len(fresh.generations) == fresh.settings.generations + 1


def test_each_device_has_its_folder_and_the_overview_shows_them_all(two_devices, run_dir):
    (a, b), *_ = two_devices
    for result in (a, b):
        assert result.out_dir == run_dir / "search" / result.device
        pareto = json.loads((result.out_dir / "pareto.json").read_text())
        assert pareto["device"] == result.device and len(pareto["front"]) == len(result.front)
    overview = json.loads((run_dir / "search" / "devices.json").read_text())
    assert [d["device"] for d in overview["devices"]] == ["dev-a", "dev-b"]
    assert overview["devices"][1]["hypervolume"] == pytest.approx(b.hypervolume)
    assert (run_dir / "search" / "fronts.png").read_bytes()[:8] == PNG_SIGNATURE


def test_export_picks_from_the_front_of_the_device_named(two_devices, run_dir, space):
    from supernet.export import SelectionError, select_arch

    (a, b), *_ = two_devices
    for result in (a, b):
        best = max(result.front, key=lambda e: (e.candidate.accuracy, -e.candidate.measures.latency_ms))
        chosen = select_arch(space, run_dir, pick="best", device=result.device)
        assert chosen.arch == best.candidate.arch and chosen.device == result.device
        budget = result.front[1].candidate.measures.latency_ms
        within = select_arch(space, run_dir, max_latency_ms=budget, device=result.device)
        assert within.arch == result.front[1].candidate.arch  # the front is sorted by latency
    with pytest.raises(SelectionError, match=r"no pareto.json at .*dev-z.* \(searched: .*dev-a, dev-b"):
        select_arch(space, run_dir, pick="best", device="dev-z")


def test_specialise_exports_every_device_and_budget_with_an_index(two_devices, run_dir, tmp_path):
    (a, b), *_ = two_devices
    budgets = {"dev-a": [a.front[0].candidate.measures.latency_ms, a.front[-1].candidate.measures.latency_ms],
               "dev-b": [b.front[-1].candidate.measures.latency_ms]}
    devices_file = tmp_path / "devices.yaml"
    devices_file.write_text("devices:\n" + "".join(
        f"  - name: {name}\n    lut: unused-{name}.json\n    budgets_ms: {values}\n"
        for name, values in budgets.items()))
    out = tmp_path / "exports"
    result = CliRunner().invoke(app, ["specialise", str(run_dir), str(devices_file), "--out", str(out),
                                      "--formats", "safetensors"])
    assert result.exit_code == 0, result.output
    index = json.loads((out / "index.json").read_text())["exports"]
    assert [(row["device"], row["budget_ms"]) for row in index] == [
        (name, value) for name, values in budgets.items() for value in values]
    fronts = {"dev-a": a, "dev-b": b}
    for row in index:
        front = fronts[row["device"]].front
        fitting = [e.candidate for e in front if e.candidate.measures.latency_ms <= row["budget_ms"]]
        assert row["arch"] == str(max(fitting, key=lambda c: (c.accuracy, -c.measures.latency_ms)).arch)
        card = json.loads((Path(row["export"]) / "card.json").read_text())
        assert card["arch"] == row["arch"] and (Path(row["export"]) / "weights.safetensors").is_file()
        assert Path(row["export"]) == out / row["device"] / f"{row['budget_ms']:g}ms"


def _hold(path: str, ready) -> None:
    with exclusive(path, "held"):
        ready.set()
        signal.pause()


def test_a_second_search_of_the_same_folder_is_refused_naming_the_first(run_dir, table, evaluator, tmp_path):
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(str(tmp_path / ".lock"), ready))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(LockedError, match=rf"the search in {tmp_path} is in use by pid {holder.pid} on "):
            run_search(run_dir, "cpu", search_settings(f"out_dir={tmp_path}"), table=table,
                       evaluator=evaluator)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(30)
    assert evaluator.calls == 0 and not (tmp_path / "state.json").exists()


class _Table:
    def __init__(self, target: str, runtime: str | None, fid: str) -> None:
        self.fingerprint = {"target": target, **({"runtime": runtime} if runtime else {})}
        self.fingerprint_id = fid


def test_devices_are_named_by_target_and_runtime_and_by_fingerprint_where_that_is_ambiguous():
    devices = [Device("", _Table("cpu", "onnxruntime", "cpu-1"), "cpu"),
               Device("", _Table("cpu", None, "cpu-2"), "cpu"),
               Device("", _Table("cpu", None, "cpu-3"), "cpu"),
               Device("", _Table("gpu", "tensorrt", "gpu-4"), "gpu")]
    _name(devices)
    assert [d.name for d in devices] == ["cpu-onnxruntime", "cpu-2", "cpu-3", "gpu-tensorrt"]
    with pytest.raises(SearchConfigError, match="two devices are named 'x'"):
        _name([Device("x", _Table("cpu", None, "a"), "cpu"), Device("x", _Table("cpu", None, "b"), "cpu")])


@pytest.mark.parametrize(("text", "message"), [
    ("devices: []\n", "lists no devices"),
    ("devices:\n  - name: a\n    budgets_ms: [-1]\n", "budget -1 ms must be positive"),
    ("devices:\n  - name: a\n    colour: red\n", "colour"),
    ("devices:\n  - name: a\n    budgets_ms: fast\n", "budgets_ms"),
])
def test_a_bad_devices_file_is_one_line_naming_the_key(tmp_path, text, message):
    path = tmp_path / "devices.yaml"
    path.write_text(text)
    with pytest.raises(SearchConfigError, match=message):
        read_devices_file(path)


def test_the_shipped_devices_file_reads():
    from supernet.config import CONFIG_DIR

    entries = read_devices_file(CONFIG_DIR / "devices.yaml")
    assert [e.name for e in entries] == ["cpu-2threads", "cpu-1thread"]
    assert entries[0].budgets_ms == [0.4, 0.8]


def test_a_second_export_to_one_folder_is_refused_naming_the_first(run_dir, space, tmp_path):
    from supernet.export import ExportRequest, export_child
    from supernet.export.pipeline import export_lock

    out = tmp_path / "export"
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(str(export_lock(out)), ready))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(LockedError, match=rf"export folder {out} is in use by pid {holder.pid} on "):
            export_child(ExportRequest(run_dir=run_dir, arch=str(space.min()), out=out,
                                       formats=("safetensors",)))
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(30)
    assert not out.exists()
