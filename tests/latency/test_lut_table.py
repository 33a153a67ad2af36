import json
import random

import pytest
from lut_support import CHILD_OFFSET, CHILD_SCALE, FakeMeasurer, fake_layer_ms

from supernet.latency import (
    DeviceMismatchError,
    LatencyTable,
    LatencyTableError,
    MissingEntryError,
    build_table,
)
from supernet.latency.table import _digest
from supernet.space import SearchSpace


@pytest.fixture
def table(tiny_space, tmp_path) -> LatencyTable:
    return build_table(tiny_space, FakeMeasurer(), tmp_path / "tiny.json", progress=False)


def test_predictions_follow_entries_and_fit(table, tiny_space):
    rng = random.Random(3)
    for arch in [tiny_space.max(), tiny_space.min(), *(tiny_space.sample(rng) for _ in range(20))]:
        raw = sum(fake_layer_ms(layer) for layer in tiny_space.layers(arch))
        assert table.predict_raw(arch) == pytest.approx(raw)
        assert table.predict(arch) == pytest.approx(CHILD_SCALE * raw + CHILD_OFFSET)
    assert table.fit.form == "scale+offset"
    held = table.fit_report["held_out"]
    assert held["n"] == 3 and held["mape_pct"] == pytest.approx(0.0, abs=1e-6)
    assert held["kendall_tau"] == pytest.approx(1.0)


def test_saved_table_loads_back_equal(table, tiny_space, tmp_path):
    loaded = LatencyTable.load(tmp_path / "tiny.json")
    assert loaded.entries == table.entries
    assert loaded.fingerprint == table.fingerprint
    assert loaded.fit == table.fit
    assert loaded.space.spec == tiny_space.spec
    arch = tiny_space.max()
    assert loaded.predict(arch) == pytest.approx(table.predict(arch))


def test_missing_key_names_the_key(table, tiny_space, tmp_path):
    arch = tiny_space.max()
    layer = tiny_space.layers(arch)[3]
    entries = {k: v for k, v in table.entries.items() if k != layer.key()}
    broken = LatencyTable(table.fingerprint, tiny_space, entries, table.fit, path=tmp_path / "x.json")
    with pytest.raises(MissingEntryError, match=layer.key().replace("|", r"\|")) as err:
        broken.predict(arch)
    assert str(arch) in str(err.value)
    with pytest.raises(MissingEntryError, match="does not cover space 'tiny'"):
        broken.require_covers(tiny_space)
    table.require_covers(tiny_space)


def test_a_table_does_not_cover_another_space(table, tiny_space):
    wider = SearchSpace.from_dict({**json.loads(json.dumps(table.to_json()["space"]["spec"])),
                                   "resolutions": [16, 24, 32]})
    with pytest.raises(MissingEntryError, match="resolution=32"):
        table.require_covers(wider)


def test_a_table_of_another_runtime_is_refused_for_timing(table):
    here = {**FakeMeasurer().fingerprint(), "runtime": "torch", "runtime_version": "2.x"}
    with pytest.raises(DeviceMismatchError, match="runtime: 'onnxruntime' vs 'torch'"):
        table.check_device(here)


def test_a_table_edited_by_hand_is_refused(table, tmp_path):
    path = tmp_path / "tiny.json"
    data = json.loads(path.read_text())
    assert data["digest"] == table.digest and data["fingerprint"]["runtime"] == "onnxruntime"
    data["space"]["name"], data["space"]["hash"] = "small", "0123456789ab"
    path.write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match=f"latency table {path}: its content does not match its dig"):
        LatencyTable.load(path)
    data["digest"] = _digest({k: v for k, v in data.items() if k != "digest"})  # a digest made to fit
    path.write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match="its space name or hash does not match its spec"):
        LatencyTable.load(path)


def test_fingerprint_mismatch_refuses_measuring_but_predicts(table, tiny_space):
    here = FakeMeasurer(device="another cpu").fingerprint()
    with pytest.raises(DeviceMismatchError) as err:
        table.check_device(here)
    message = str(err.value)
    assert "test cpu" in message and "another cpu" in message and "predicting is allowed" in message.lower()
    table.check_device(FakeMeasurer().fingerprint())  # same device: fine
    assert table.predict(tiny_space.min()) > 0


def test_corrupt_or_truncated_file_is_a_clear_error(table, tmp_path):
    path = tmp_path / "tiny.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(LatencyTableError, match=f"{path}.*corrupt or truncated"):
        LatencyTable.load(path)
    path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(LatencyTableError, match=f"{path} is not a latency table"):
        LatencyTable.load(path)
    data = json.loads(text)
    del data["space"]
    data["digest"] = _digest({k: v for k, v in data.items() if k != "digest"})
    path.write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match=f"{path} is damaged.*'space'"):
        LatencyTable.load(path)
    data = json.loads(text)
    data["entries"][next(iter(data["entries"]))] = -1.0
    data["digest"] = _digest({k: v for k, v in data.items() if k != "digest"})
    path.write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match="not a positive latency"):
        LatencyTable.load(path)
    with pytest.raises(LatencyTableError, match="no latency table at"):
        LatencyTable.load(tmp_path / "absent.json")
