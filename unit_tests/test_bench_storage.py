"""fer.bench.storage: reading runs, skipping bad files, extra_info upgraded to schema 2 once."""

import json
import logging
import shutil
from pathlib import Path

import pytest

from fer.bench.records import SCHEMA, EpochRecord
from fer.bench.storage import Bench, CompareError, load_history, load_run

FIXTURES = Path(__file__).parent / "fixtures"
HISTORY = FIXTURES / "history"
SMOKE_RUN = FIXTURES / "report" / "smoke-run.json"


def run(name):
    return load_run(HISTORY / name)


def test_suite_run_is_read_with_rounds_and_metrics():
    r = run("base.json")
    assert len(r.benchmarks) == 2
    bench = r.benchmarks["test_gate_epoch.py::test_epoch[adam]"]
    assert bench.group == "gate" and len(bench.data) == 5
    assert bench.metric("median_images_per_s") > 0
    assert r.machine_info["fer"]["hardware_class"]


def test_v3_run_without_rounds_is_read():
    r = run("v3_run.json")
    assert r.version == "3.2.3" and all(b.data is None for b in r.benchmarks.values())


@pytest.mark.parametrize("name", ["corrupt.json", "empty.json", "foreign.json"])
def test_bad_files_are_skipped_with_a_warning(name, caplog):
    with caplog.at_level(logging.WARNING):
        assert run(name) is None
    assert name in caplog.text


def test_a_malformed_benchmark_is_skipped_not_the_run(tmp_path, caplog):
    payload = json.loads((HISTORY / "base.json").read_text())
    payload["benchmarks"][0]["stats"] = {"mean": 1.0}  # no median
    payload["benchmarks"].append({"name": "x", "stats": {"median": 1.0}, "extra_info": [1]})
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(payload))
    with caplog.at_level(logging.WARNING):
        r = load_run(path)
    assert list(r.benchmarks) == ["test_gate_epoch.py::test_epoch[sgd]"]
    assert caplog.text.count("malformed benchmark entry") == 2


def test_history_skips_bad_files_and_orders_runs(tmp_path, caplog):
    for name in ("base.json", "slow.json", "corrupt.json", "foreign.json"):
        shutil.copy(HISTORY / name, tmp_path / name)
    with caplog.at_level(logging.WARNING):
        runs = load_history(tmp_path)
    assert [r.path.name for r in runs] == ["base.json", "slow.json"]
    assert "corrupt.json" in caplog.text and "foreign.json" in caplog.text


def test_history_of_a_missing_folder():
    with pytest.raises(CompareError, match="no such folder"):
        load_history("/no/such/dir")


# ----------------------------------------------------- schema 1 -> 2 --

def test_legacy_benchmarks_are_upgraded_at_load():
    r = load_run(SMOKE_RUN)
    workers = r.benchmarks["perf_tests/test_workers.py::test_workers[4]"]
    assert workers.extra_info["schema"] == SCHEMA
    assert workers.experiment == "workers" and workers.params["num_workers"] == 4
    ddp = r.benchmarks["perf_tests/test_ddp.py::test_ddp[2]"]
    assert ddp.experiment == "ddp"
    assert ddp.params["world_size"] == 2 and ddp.params["per_device_batch"] == 64
    precision = r.benchmarks["perf_tests/test_precision.py::test_precision[amp_bf16-channels_last]"]
    assert precision.params["precision"] == "amp_bf16" and precision.params["channels_last"] is True


def test_legacy_dataparallel_groups_name_one_experiment():
    r = load_run(Path(__file__).parents[1] / "docs/perf/NVIDIA_H200-x1/dataparallel.json")
    assert {b.group for b in r.benchmarks.values()} == {
        "dataparallel-b32", "dataparallel-b64", "dataparallel-b128"}
    assert {b.experiment for b in r.benchmarks.values()} == {"dataparallel"}
    assert sorted(b.params["per_device_batch"] for b in r.benchmarks.values()) == [32, 64, 128]


def test_schema_2_extra_info_is_kept_as_is():
    extra = {"schema": 2, "experiment": "workers", "params": {"num_workers": 2},
             "num_workers": 99}
    b = Bench("t::a", "a", "some-group", 1.0, None, extra)
    assert b.extra_info is extra and b.experiment == "workers" and b.params == {"num_workers": 2}


def test_records_are_epoch_records_and_summary_falls_back_to_them():
    r = load_run(SMOKE_RUN)
    b = r.benchmarks["perf_tests/test_loader.py::test_loader[device]"]
    assert b.records and all(isinstance(x, EpochRecord) for x in b.records)
    assert b.records[0].images > 0
    stored = b.summary
    bare = Bench("t::b", "b", None, 1.0, None,
                 {k: v for k, v in b.extra_info.items() if k != "summary"})
    assert bare.summary["median_wall_s"] == pytest.approx(stored["median_wall_s"])
    assert Bench("t::c", "c", None, 1.0, None, {}).summary == {}


def test_a_malformed_record_names_the_benchmark():
    b = Bench("t::bad", "bad", None, 1.0, None, {"records": [{"epoch": 0}]})
    with pytest.raises(ValueError, match=r"t::bad: extra_info.records\[0\]"):
        _ = b.records


def test_skipped_tests_are_read():
    r = load_run(SMOKE_RUN)
    assert r.skipped and all({"test", "reason"} <= set(s) for s in r.skipped)
    assert run("base.json").skipped == []
