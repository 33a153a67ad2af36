"""`supernet export` / `supernet eval` end to end on a small trained run (synthetic data, 24/28 px).

The exported files are loaded in fresh processes that never import this project, and compared with the
supernet's own outputs for the child; `supernet eval` must reproduce the accuracy written in card.json.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from export_fronts import write_front
from safetensors.torch import load_file
from typer.testing import CliRunner

from supernet.config import space_from_config
from supernet.export import FORMATS, ExportError, ExportRequest, VerificationError, export_child
from supernet.export.data import (
    calibration_set,
    data_settings,
    load_splits,
    validation_images,
)
from supernet.export.writers import Format, write_torchscript
from supernet.run.bn_recalibration import recalibrate_bn
from supernet.run.child_eval import calibration_seed
from supernet.run.directory import load_supernet
from supernet.run.files import sha256_file
from supernet.space import Arch
from supernet_cli.main import app


def invoke(runner: CliRunner, *args: str):
    return runner.invoke(app, [str(a) for a in args])


def one_line(result) -> str:
    return " ".join((result.stdout + result.stderr).split())


@pytest.fixture(scope="module")
def reference(run_dir: Path, arch: Arch, tmp_path_factory) -> Path:
    """Inputs (3 real validation images, a batch size the export never used) and the supernet's outputs."""
    model, cfg = load_supernet(run_dir)
    splits = load_splits(data_settings(cfg))
    seed = calibration_seed(cfg.seed)
    calib = calibration_set(splits, cfg.val.calib_images, cfg.val.calib_batch_size, seed)
    model.set_active(arch)
    recalibrate_bn(model, calib.batches, arch.resolution)
    inputs = validation_images(splits, arch.resolution, (3,))[0]
    with torch.no_grad():
        outputs = model(inputs)
    folder = tmp_path_factory.mktemp("reference")
    torch.save({"inputs": inputs, "outputs": outputs, "digest": calib.digest}, folder / "reference.pt")
    np.save(folder / "inputs.npy", inputs.numpy())
    np.save(folder / "outputs.npy", outputs.numpy())
    return folder


def run_isolated(code: str, cwd: Path) -> dict:
    """Run `code` in a fresh interpreter (no conftest, no project imports) and return its JSON line."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_export_writes_every_file_and_a_complete_card(exported: Path, run_dir: Path, arch: Arch, reference):
    names = {p.name for p in exported.iterdir()}
    assert names == {"weights.safetensors", "model.pt2", "model.ts", "model.onnx", "arch.json", "card.json",
                     "README.md"}
    assert not [p for p in exported.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
    card = json.loads((exported / "card.json").read_text())
    assert card["arch"] == str(arch) and Arch.from_json(card["arch_json"]) == arch
    assert Arch.from_json(json.loads((exported / "arch.json").read_text())) == arch
    _, cfg = load_supernet(run_dir)
    space = space_from_config(cfg)
    assert (card["params"], card["flops"]) == (space.params(arch), space.flops(arch))
    weights = load_file(str(exported / "weights.safetensors"))
    assert card["params"] == sum(t.numel() for k, t in weights.items() if "running" not in k
                                 and "num_batches" not in k)
    assert card["supernet_checkpoint"]["sha256"] == sha256_file(run_dir / "checkpoints" / "best.pt")
    assert card["calibration"]["digest"] == torch.load(reference / "reference.pt")["digest"]
    assert card["calibration"]["images"] == cfg.val.calib_images
    pre = card["preprocessing"]
    assert (pre["resolution"], pre["channels"]) == (24, 1) and len(pre["mean"]) == len(pre["std"]) == 1
    assert "28x28 -> 24x24" in " ".join(pre["steps"])
    assert (card["data"]["name"], card["data"]["val_size"], card["data"]["seed"]) == ("synthetic", 96, 0)
    assert 0.0 <= card["accuracy"]["val_top1"] <= 1.0 and card["accuracy"]["test_images"] == 128
    assert card["exporters"]["onnx"]["exporter"] in ("dynamo", "torchscript")
    assert card["exporters"]["onnx"]["opset"] >= 17
    assert card["bn_folded"] is False and card["latency_ms_predicted"] is None
    if not torch.cuda.is_available():
        assert card["latency_ms_measured"] is None and card["latency"]["target"] == "gpu"
    diffs = card["verification"]["max_abs_diff"]
    assert set(diffs) == set(FORMATS) and max(diffs.values()) <= card["verification"]["tolerance"]
    assert card["verification"]["batch_sizes"] != [card["verification"]["trace_batch"]]
    for fmt, info in card["files"].items():
        assert sha256_file(exported / info["file"]) == info["sha256"], fmt
    assert {"torch", "torchvision", "onnx", "onnxruntime", "supernet"} <= set(card["versions"])
    readme = (exported / "README.md").read_text()
    for needle in ("torch.export.load", "torch.jit.load", "onnxruntime", "load_file", str(pre["mean"])):
        assert needle in readme


def test_program_files_run_in_a_fresh_process_with_torch_alone(exported: Path, reference: Path):
    result = run_isolated(f"""
        import json, sys
        import torch
        ref = torch.load({str(reference / "reference.pt")!r})
        x, expected = ref["inputs"], ref["outputs"]
        pt2 = torch.export.load({str(exported / "model.pt2")!r}).module()
        ts = torch.jit.load({str(exported / "model.ts")!r}).eval()
        with torch.no_grad():
            diffs = {{name: float((m(x) - expected).abs().max()) for name, m in (("pt2", pt2), ("ts", ts))}}
            batch7 = pt2(torch.cat([x, x, x[:1]])).shape[0]
        print(json.dumps({{"diffs": diffs, "batch7": batch7, "scale": float(expected.abs().max()),
                          "supernet": any(m.split(".")[0] == "supernet" for m in sys.modules)}}))
    """, reference)
    assert result["supernet"] is False
    assert result["batch7"] == 7
    tolerance = 1e-4 * max(1.0, result["scale"])
    assert result["diffs"]["pt2"] <= tolerance and result["diffs"]["ts"] <= tolerance, result


def test_onnx_runs_in_a_fresh_process_with_onnxruntime_alone(exported: Path, reference: Path):
    result = run_isolated(f"""
        import json, sys
        import numpy as np
        import onnxruntime as ort
        x = np.load({str(reference / "inputs.npy")!r})
        expected = np.load({str(reference / "outputs.npy")!r})
        session = ort.InferenceSession({str(exported / "model.onnx")!r}, providers=["CPUExecutionProvider"])
        out = session.run(None, {{session.get_inputs()[0].name: x}})[0]
        one = session.run(None, {{session.get_inputs()[0].name: x[:1]}})[0]
        print(json.dumps({{"diff": float(np.abs(out - expected).max()), "one": list(one.shape),
                          "scale": float(np.abs(expected).max()),
                          "imported": sorted({{m.split(".")[0] for m in sys.modules}}
                                             & {{"torch", "supernet"}})}}))
    """, reference)
    assert result["imported"] == []
    assert result["one"] == [1, 10]
    assert result["diff"] <= 1e-4 * max(1.0, result["scale"]), result


def test_eval_reproduces_the_card_accuracy(exported: Path, runner: CliRunner):
    card = json.loads((exported / "card.json").read_text())
    for split, fmt in (("test", "pt2"), ("val", "onnx")):
        result = invoke(runner, "eval", exported, "--split", split, "--format", fmt, "--json")
        assert result.exit_code == 0, one_line(result)
        data = json.loads(result.stdout)
        assert data["top1"] == card["accuracy"][f"{split}_top1"] == data["card_top1"]
        assert data["images"] == card["accuracy"][f"{split}_images"]
        assert data["format"] == fmt
    plain = invoke(runner, "eval", exported)
    assert plain.exit_code == 0 and f"{100 * card['accuracy']['test_top1']:.2f} %" in plain.stdout


def test_pick_from_a_hand_written_front_with_folded_bn(run_dir: Path, exported: Path, arch: Arch,
                                                       runner: CliRunner, tmp_path: Path, reference: Path,
                                                       monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    _, cfg = load_supernet(run)
    write_front(run / "search" / "cpu", space_from_config(cfg))
    out = tmp_path / "picked"
    measured = []

    def fake_measure(model, resolution, target, in_channels, lut, onnx_file):  # tested with the tables
        measured.append((resolution, target, type(model).__name__, in_channels, lut))
        return 1.25, "by a stand-in"

    monkeypatch.setattr("supernet.export.pipeline.measure", fake_measure)
    result = invoke(runner, "export", run, "--pick", "1", "--fold-bn", "--formats", "pt2,safetensors",
                    "--out", out, "--target", "cpu")
    assert result.exit_code == 0, one_line(result)
    card = json.loads((out / "card.json").read_text())
    assert card["arch"] == str(arch) and card["bn_folded"] is True
    assert card["selection"]["how"] == "pick" and card["selection"]["index"] == 1
    assert card["latency_ms_predicted"] == 2.5 and card["latency"]["predicted_from"] == "pareto"
    assert card["latency_ms_measured"] == 1.25
    assert measured == [(arch.resolution, "cpu", "Sequential", 1, None)]  # the front names no table
    assert card["latency"]["measured_on"] and card["latency"]["measured_how"] == "by a stand-in"
    assert card["formats"] == ["safetensors", "pt2"] and {p.name for p in out.iterdir()} >= {"model.pt2"}
    # folding moved BN into the convs: same function as the unfolded export, within 1e-4
    x = torch.load(reference / "reference.pt")["inputs"]
    folded = torch.export.load(str(out / "model.pt2")).module()
    plain = torch.export.load(str(exported / "model.pt2")).module()
    with torch.no_grad():
        a, b = folded(x), plain(x)
    assert (a - b).abs().max() < 1e-4 * max(1.0, float(b.abs().max()))
    assert "batch_norm" not in str(torch.export.load(str(out / "model.pt2")).graph)
    assert "batch_norm" in str(torch.export.load(str(exported / "model.pt2")).graph)


@pytest.mark.parametrize(("args", "message"), [
    (["--arch", "r24-w0.5:k3e2-w1:k3e2-w1:k3e2"], "stage 0 width 0.5 is not one of {0.75, 1}"),
    (["--arch", "r30-w1:k3e2-w1:k3e2-w1:k3e2"], "resolution 30 is not one of {24, 28}"),
    (["--pick", "0"], "no pareto.json under"),
    (["--pick", "0", "--target", "gpu"], "run `supernet search"),
    (["--max-latency-ms", "1"], "needs --target"),
    (["--formats", "pt2,tflite", "--arch", "r24-w1:k3e2-w1:k3e2-w1:k3e2"], "unknown format 'tflite'"),
    (["--arch", "r24-w1:k3e2-w1:k3e2-w1:k3e2", "--lut", "missing.json"], "--lut missing.json: no such file"),
    ([], "exactly one of --arch"),
])
def test_bad_input_is_one_line_and_exit_code_2(run_dir: Path, runner: CliRunner, tmp_path: Path, args,
                                               message):
    result = invoke(runner, "export", run_dir, *args, "--out", tmp_path / "out")
    assert result.exit_code == 2, one_line(result)
    assert message in one_line(result)
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_bad_pick_and_budget_on_a_front(run_dir: Path, runner: CliRunner, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    _, cfg = load_supernet(run)
    write_front(run / "search" / "cpu", space_from_config(cfg))
    result = invoke(runner, "export", run, "--pick", "5")
    assert result.exit_code == 2 and "--pick 5 is out of range" in one_line(result)
    assert "has 3 entries" in one_line(result)
    result = invoke(runner, "export", run, "--max-latency-ms", "0.5", "--target", "cpu")
    assert result.exit_code == 2 and "the fastest is predicted at 1.5 ms" in one_line(result)


def test_unwritable_or_foreign_output_is_refused(run_dir: Path, arch: Arch, runner: CliRunner,
                                                 tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = invoke(runner, "export", run_dir, "--arch", str(arch), "--out", blocker / "export")
    assert result.exit_code == 2 and "cannot write the export to" in one_line(result)
    result = invoke(runner, "export", run_dir, "--arch", str(arch), "--out", blocker)
    assert result.exit_code == 2 and "is a file" in one_line(result)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = invoke(runner, "export", run_dir, "--arch", str(arch), "--out", foreign)
    assert result.exit_code == 2 and "exists and is not an export" in one_line(result)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_eval_errors_are_one_line(runner: CliRunner, tmp_path: Path, exported: Path):
    result = invoke(runner, "eval", tmp_path)
    assert result.exit_code == 2 and "no card.json" in one_line(result)
    result = invoke(runner, "eval", exported, "--split", "train")
    assert result.exit_code == 2


def test_a_file_that_does_not_match_fails_the_export_and_leaves_nothing(run_dir: Path, arch: Arch,
                                                                        tmp_path: Path, monkeypatch):
    def perturbed(model, example, path):
        # a wrong program: the same child with its classifier bias shifted by one
        broken = copy.deepcopy(model)
        with torch.no_grad():
            broken[-1][-1].bias.add_(1.0)
        return write_torchscript(broken, example, path)

    monkeypatch.setitem(FORMATS, "torchscript", Format("torchscript", "model.ts", perturbed, runnable=True))
    out = tmp_path / "exports" / "child"
    failed = r"self-check failed for torchscript .*torchscript: max abs diff 1"
    with pytest.raises(VerificationError, match=failed):
        export_child(ExportRequest(run_dir=run_dir, arch=str(arch), out=out, formats=("torchscript",)))
    assert not out.exists() and list((tmp_path / "exports").iterdir()) == []
    assert issubclass(VerificationError, ExportError)


def test_the_card_times_the_written_model_onnx_in_onnxruntime(run_dir: Path, arch: Arch, runner: CliRunner,
                                                              tmp_path: Path):
    out = tmp_path / "onnx-only"
    result = invoke(runner, "export", run_dir, "--arch", str(arch), "--formats", "onnx", "--out", out,
                    "--target", "cpu")
    assert result.exit_code == 0, one_line(result)
    card = json.loads((out / "card.json").read_text())
    assert card["latency_ms_measured"] > 0
    how = card["latency"]["measured_how"]
    assert how.startswith("the written model.onnx on cpu") and "onnxruntime" in how, how
