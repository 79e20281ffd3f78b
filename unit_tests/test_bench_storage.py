"""fer.bench.storage: reading runs, skipping bad files, extra_info upgraded to schema 2 once."""

import json
import logging
import shutil
from pathlib import Path

import pytest

from fer.bench.storage import (
    MAX_ROUND_S,
    Bench,
    BenchmarkFileError,
    CompareError,
    load_history,
    load_run,
)
from fer.records import SCHEMA, EpochRecord

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


@pytest.mark.parametrize("name,match", [("corrupt.json", "not a readable JSON file"),
                                        ("empty.json", "not a readable JSON file"),
                                        ("foreign.json", "no 'benchmarks' list")])
def test_a_bad_file_named_explicitly_is_an_error(name, match):
    with pytest.raises(BenchmarkFileError, match=match) as info:
        run(name)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_a_malformed_benchmark_makes_the_file_an_error_naming_it(tmp_path):
    payload = json.loads((HISTORY / "base.json").read_text())
    payload["benchmarks"][0]["stats"] = {"mean": 1.0}  # no median
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(BenchmarkFileError, match=r"partial.json: benchmark "
                       r"'test_gate_epoch.py::test_epoch\[adam\]': stats.median is missing"):
        load_run(path)


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
    assert Bench("t::c", "c", None, 1.0, None, {}).summary == {"median_wall_s": 1.0}


def test_a_malformed_record_names_the_benchmark():
    b = Bench("t::bad", "bad", None, 1.0, None, {"records": [{"epoch": 0}]})
    with pytest.raises(ValueError, match=r"t::bad: extra_info.records\[0\]"):
        _ = b.records


def test_skipped_tests_are_read():
    r = load_run(SMOKE_RUN)
    assert r.skipped and all({"test", "reason"} <= set(s) for s in r.skipped)
    assert run("base.json").skipped == []


# ------------------------------------------- the schema check --

def _mutated(tmp_path, mutate, name="bad.json", source=HISTORY / "base.json"):
    payload = json.loads(source.read_text())
    mutate(payload)
    path = tmp_path / name
    path.write_text(json.dumps(payload))
    return path


def _set_stats(key, value):
    def mutate(p):
        p["benchmarks"][0]["stats"][key] = value
    return mutate


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("value", [NAN, INF, -INF, -1.0, 0, 0.0, 1e308, True, False, "1.0",
                                   None, [1.0], 10**400, MAX_ROUND_S * 1.01])
def test_a_median_outside_0_to_max_is_refused(tmp_path, value):
    path = _mutated(tmp_path, _set_stats("median", value))
    with pytest.raises(BenchmarkFileError, match=r"bad.json: benchmark .*stats.median is .* "
                       r"it must be a number of seconds in \(0, 1e\+06\]"):
        load_run(path)


@pytest.mark.parametrize("value", [NAN, INF, -2.0, 0, True, 1e308, "x"])
def test_a_bad_round_time_is_refused(tmp_path, value):
    def mutate(p):
        p["benchmarks"][1]["stats"]["data"][2] = value
    with pytest.raises(BenchmarkFileError, match=r"stats.data\[2\] is"):
        load_run(_mutated(tmp_path, mutate))


@pytest.mark.parametrize("value", [0, -3, True, 2.5, "5"])
def test_a_bad_round_count_is_refused(tmp_path, value):
    with pytest.raises(BenchmarkFileError, match=r"stats.rounds is .* integer in \[1, 1e\+15\]"):
        load_run(_mutated(tmp_path, _set_stats("rounds", value)))


def _set(path_keys, value):
    def mutate(p):
        target = p
        for k in path_keys[:-1]:
            target = target[k]
        target[path_keys[-1]] = value
    return mutate


@pytest.mark.parametrize("keys,value,match", [
    (("benchmarks", 0, "stats"), [1, 2], "stats is a list, not an object"),
    (("benchmarks", 0, "extra_info"), "x", "extra_info is a string, not an object"),
    (("benchmarks", 0, "extra_info", "summary"), [1], "extra_info.summary is a list"),
    (("benchmarks", 0, "extra_info", "summary", "median_images_per_s"), NAN,
     "summary.median_images_per_s is nan"),
    (("benchmarks", 0, "extra_info", "summary", "median_wall_s"), 0,
     "summary.median_wall_s is 0"),
    (("benchmarks", 0, "extra_info", "summary", "peak_mem_bytes"), True,
     "summary.peak_mem_bytes is true"),
    (("benchmarks", 0, "extra_info", "records"), {"a": 1}, "extra_info.records is an object"),
    (("benchmarks", 0, "extra_info", "params"), "adam", "extra_info.params is a string"),
    (("benchmarks", 0, "extra_info", "devices"), "two", "extra_info.devices is \"two\""),
    (("benchmarks", 0, "extra_info", "config"), [], "extra_info.config is a list"),
    (("machine_info",), [1], "machine_info is a list, not an object"),
    (("machine_info", "fer"), "gpu", "machine_info.fer is a string, not an object"),
    (("commit_info",), [], "commit_info is a list, not an object"),
    (("benchmarks", 0, "name"), 3, "name is a number, not a string"),
    (("benchmarks", 0, "group"), {}, "group is an object, not a string"),
    (("benchmarks", 1), "x", r"benchmarks\[1\]:  is a string"),
    (("benchmarks",), [], "holds no benchmarks"),
])
def test_wrong_types_are_refused_naming_the_field(tmp_path, keys, value, match):
    with pytest.raises(BenchmarkFileError, match=match) as info:
        load_run(_mutated(tmp_path, _set(keys, value)))
    assert "bad.json" in str(info.value) and "re-run the suite" in str(info.value)


def test_records_lacking_fields_or_of_wrong_type_are_refused(tmp_path):
    def drop_loss(p):
        for b in p["benchmarks"]:
            for r in b["extra_info"].get("records") or []:
                r.pop("loss", None)
    with pytest.raises(BenchmarkFileError, match=r"extra_info.records\[0\] lacks loss"):
        load_run(_mutated(tmp_path, drop_loss, source=SMOKE_RUN))

    def string_wall(p):
        p["benchmarks"][0]["extra_info"]["records"][1]["wall_s"] = "fast"
    with pytest.raises(BenchmarkFileError, match=r"records\[1\].wall_s is \"fast\""):
        load_run(_mutated(tmp_path, string_wall, source=SMOKE_RUN))


def test_a_known_parameter_of_the_wrong_type_is_refused(tmp_path):
    def workers(p):
        b = next(b for b in p["benchmarks"] if "test_workers" in b["fullname"])
        b["extra_info"]["num_workers"] = "4"  # a legacy run keeps params at the top level
    with pytest.raises(BenchmarkFileError, match=r"extra_info.params.num_workers is \"4\""):
        load_run(_mutated(tmp_path, workers, source=SMOKE_RUN))


def test_duplicate_benchmarks_are_refused(tmp_path):
    def dup(p):
        p["benchmarks"].append(p["benchmarks"][0])
    with pytest.raises(BenchmarkFileError, match="appears twice"):
        load_run(_mutated(tmp_path, dup))


def test_deep_nesting_is_a_clean_error_not_a_recursion_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BenchmarkFileError, match="deep.json: nested too deeply"):
        load_run(path)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"", b"[]", b"null", b"3"])
def test_non_runs_are_errors(tmp_path, content):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(BenchmarkFileError, match="x.json"):
        load_run(path)


def test_missing_file_and_folder_are_errors(tmp_path):
    with pytest.raises(BenchmarkFileError, match="no such file"):
        load_run(tmp_path / "nope.json")
    with pytest.raises(BenchmarkFileError, match="is a folder"):
        load_run(tmp_path)


def test_history_skips_a_bad_file_with_one_warning_naming_field(tmp_path, caplog):
    shutil.copy(HISTORY / "base.json", tmp_path / "a.json")
    _mutated(tmp_path, _set_stats("median", NAN), name="b.json")
    with caplog.at_level(logging.WARNING):
        runs = load_history(tmp_path)
    assert [r.path.name for r in runs] == ["a.json"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "b.json" in warnings[0].getMessage()
    assert "stats.median is nan" in warnings[0].getMessage()


def test_every_committed_run_loads():
    root = Path(__file__).parents[1]
    good = [p for p in (*FIXTURES.rglob("*.json"), *(root / "docs").rglob("*.json"))
            if p.name not in ("corrupt.json", "empty.json", "foreign.json")]
    assert len(good) >= 8
    for path in good:
        assert load_run(path).benchmarks


def test_summary_lacking_a_key_is_completed_from_the_records():
    r = load_run(SMOKE_RUN)
    b = r.benchmarks["perf_tests/test_loader.py::test_loader[device]"]
    full = dict(b.summary)
    partial = Bench("t::p", "p", None, 1.0, None,
                    {**b.extra_info, "summary": {"peak_mem_bytes": 5}})
    assert partial.summary["peak_mem_bytes"] == 5
    assert partial.summary["median_images_per_s"] == pytest.approx(full["median_images_per_s"])
    assert Bench("t::q", "q", None, 2.5, None, {}).summary == {"median_wall_s": 2.5}


def test_special_files_in_a_history_never_hang(tmp_path, caplog):
    import os

    shutil.copy(run("base.json").path, tmp_path / "a.json")
    os.mkfifo(tmp_path / "fifo.json")  # a reader that opened it would wait for a writer forever
    with caplog.at_level(logging.WARNING):
        runs = load_history(tmp_path)
    assert len(runs) == 1 and "not a regular file" in caplog.text
