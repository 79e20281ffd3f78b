"""pytest plugin of the perf suite (loaded by the root conftest.py).

* ``--perf-scale smoke|full|auto`` and the ``perf_scale`` / ``perf_data`` fixtures;
* GPU, CUDA, cuDNN, torch, torchvision and timm versions, and the GPUs' UUIDs, serials
  and clock settings (:func:`fer.gpu.gpu_facts`), added to the benchmark JSON's
  ``machine_info`` (``pytest_benchmark_update_machine_info``);
* saved runs partitioned by hardware class: unless ``--benchmark-storage`` is
  given, runs go to ``.benchmarks/<hardware class>/<scale>/`` (e.g.
  ``.benchmarks/NVIDIA_H100_80GB_HBM3-x1/full/``), so ``--benchmark-compare`` only
  ever finds baselines of the same GPU model and count (or CPU model) and scale (runs saved
  before the scale folders, directly under ``<hardware class>/``, are still read by
  ``fer compare --history .benchmarks/<hardware class>``, which compares only the same work);
* the names of skipped tests and their reasons, kept in the JSON as
  ``fer_skipped`` (a skip rule of :mod:`fer.suite.experiments` says why a
  machine cannot run a grid point);
* options checked before any test runs (``pytest_configure``): ``--perf-rounds``
  below 1, or a ``--benchmark-storage`` folder that is a file (or lies under
  one), stop the session with one ``pytest.UsageError`` line instead of a
  fixture traceback per test, or a crash after the whole suite that loses the
  autosave;
* the suite's own state on one :class:`fer.suite.summary.PerfSession` in
  ``config.stash`` (as pytest-benchmark keeps its ``BenchmarkSession``): the
  benchmarks that finished (read from the ``benchmark`` fixture after each
  test), the skips, the expected duration printed up front and the machine's
  speed (the reference workload) printed at the end.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fer.suite.experiments import EXPERIMENTS
from fer.suite.scales import SCALE_CHOICES, resolve_scale
from fer.suite.summary import PerfSession, disturbances, expected_duration, format_summary, saved_sessions

DEFAULT_STORAGE = "file://./.benchmarks"


def pytest_addoption(parser) -> None:
    group = parser.getgroup("fer", "fer perf suite")

    group.addoption("--perf-scale", choices=SCALE_CHOICES, default="auto",
                    help="smoke: tiny model, small epochs (CPU, CI); full: efficientnet_b0 on "
                         "FER2013-sized epochs at 48x48 (GPU); study: 224x224 three-channel "
                         "inputs resized per sample in 8 workers, 6,400-image epochs (GPU); "
                         "auto (default): full on CUDA, else smoke")
    group.addoption("--perf-step", choices=("auto", "eager"), default="auto",
                    help="auto: the scale's fastest honest step (full/study: a whole-step CUDA "
                         "graph where the experiment is not about the step); eager: never graph")
    group.addoption("--perf-rounds", type=int, default=None, metavar="N",
                    help="timed epochs per benchmark (after one warm-up); default: the scale's (3)")


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark opens its storage
def pytest_configure(config) -> None:
    rounds = getattr(config.option, "perf_rounds", None)
    if rounds is not None and rounds < 1:
        raise pytest.UsageError(f"--perf-rounds {rounds}: must be >= 1 (timed epochs per "
                                "benchmark, after one warm-up)")
    _check_storage(getattr(config.option, "benchmark_storage", None))
    _check_json_path(getattr(config.option, "benchmark_json", None))
    _trim_benchmark_table(config.option)
    config.stash[SESSION] = PerfSession(started=time.monotonic())
    option = getattr(config.option, "benchmark_storage", None)
    if option == DEFAULT_STORAGE:
        # lazy: torch only when the perf suite runs (the unit tests load this plugin)
        from fer.gpu import hardware_class

        scale = resolve_scale(config.getoption("perf_scale", default="auto") or "auto",
                              cuda=_cuda_available()).name
        # one history per machine kind and scale: smoke and full runs never share a baseline
        config.option.benchmark_storage = f"{DEFAULT_STORAGE}/{hardware_class()}/{scale}"


#: pytest-benchmark's default columns and sort, which fer replaces unless the user chose
_PB_COLUMNS = ["min", "max", "mean", "stddev", "median", "iqr", "outliers", "ops", "rounds",
               "iterations"]


SESSION = pytest.StashKey[PerfSession]()


def perf_session(config) -> PerfSession:
    """This pytest session's perf-suite state."""
    return config.stash[SESSION]


def _trim_benchmark_table(option) -> None:
    """pytest-benchmark's own table, cut to what a run of epochs means: the median epoch, its
    IQR and the rounds, by name (so a sweep reads in order). Explicit choices are kept; the
    default is the list above up to pytest-benchmark 5.2 and None (the same list) from 5.3."""
    if getattr(option, "benchmark_columns", None) in (_PB_COLUMNS, None):
        option.benchmark_columns = ["median", "iqr", "rounds"]
    if getattr(option, "benchmark_sort", None) == "min":
        option.benchmark_sort = "name"


def pytest_report_header(config) -> list[str]:
    if not config.getoption("perf_scale", default=None):
        return []
    return ["fer perf suite: every benchmark is one warm-up epoch and --perf-rounds timed epochs "
            "of one run (benchmark.pedantic); pytest-benchmark's min_rounds/warmup settings do "
            "not apply"]


def pytest_collection_finish(session) -> None:
    """Say up front how long the selected benchmarks should take."""
    state = perf_session(session.config)
    state.points = sum(1 for item in session.items if "perf_scale" in getattr(item, "fixturenames", ()))
    if not state.points or session.config.option.collectonly:
        return

    scale = resolve_scale(session.config.getoption("perf_scale"), cuda=_cuda_available())
    state.saved = saved_sessions(_storage_folder(session.config))
    state.to_run = _points_to_run(session.items, scale)
    text = expected_duration(state.to_run, scale.name, state.saved)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and text:
        reporter.write_line(text)


def _points_to_run(items, scale) -> int:
    """The grid points this machine will run: the skip rules of the registry, asked now."""
    # lazy: torch only when the perf suite runs (the unit tests load this plugin)
    from fer.suite.harness import skip_reason

    count = 0
    for item in items:
        if "perf_scale" not in getattr(item, "fixturenames", ()):
            continue
        experiment = EXPERIMENTS.get(getattr(getattr(item, "function", None), "fer_experiment", ""))
        params = getattr(getattr(item, "callspec", None), "params", {}).get("params")
        if experiment is None or params is None or skip_reason(experiment, params, scale) is None:
            count += 1
    return count


def _cuda_available() -> bool:
    import torch  # lazy: torch only when the perf suite runs (the unit tests load this plugin)

    return torch.cuda.is_available()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each finished benchmark of the suite (its name and extra_info) for the summary,
    and each skipped test with its reason for the JSON (pytest-benchmark's JSON alone only
    holds the benchmarks that ran)."""
    outcome = yield
    report = outcome.get_result()
    state = perf_session(item.config)
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        state.skipped.append({"test": report.nodeid, "reason": reason.removeprefix("Skipped: ")})
    if report.when != "call" or not report.passed:
        return
    bench = getattr(item, "funcargs", {}).get("benchmark")
    extra = getattr(bench, "extra_info", None)
    if isinstance(extra, dict) and extra.get("records") and extra.get("experiment"):
        state.note(getattr(bench, "name", item.name), extra)


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    state = perf_session(config)
    if not state.results:
        return
    storage = None
    if getattr(config.option, "benchmark_autosave", False) or getattr(
            config.option, "benchmark_save", None):
        storage = _storage_folder(config)
    text = format_summary(state.results, json_path=_json_path(config), storage=storage,
                          session=state)
    if text:
        terminalreporter.write_sep("=", "fer perf suite")
        terminalreporter.write_line(text)


def _storage_folder(config) -> str | None:
    option = str(getattr(config.option, "benchmark_storage", "") or "")
    if "://" in option and not option.startswith("file://"):
        return None
    return option.removeprefix("file://") or None


def _json_path(config) -> str | None:
    """The --benchmark-json path as the user gave it (pytest-benchmark <= 5.2 opens a file,
    whose name is that path; later versions keep a path, whose .name would be its base name)."""
    value = getattr(config.option, "benchmark_json", None)
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else None


def _check_json_path(value) -> None:
    """A --benchmark-json path whose folder cannot exist fails now, not after the suite ran."""
    if not isinstance(value, (str, os.PathLike)):
        return  # an open file: argparse has already opened it
    path = Path(value)
    if path.is_dir():
        raise pytest.UsageError(f"--benchmark-json {value}: is a folder; pass a file path")
    existing = next((p for p in path.absolute().parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise pytest.UsageError(f"--benchmark-json {value}: {existing} is a file, so the run "
                                "cannot be written under it; pass another path")


def _check_storage(option: str | None) -> None:
    """A file-system --benchmark-storage must be a folder, or creatable as one."""
    if not option or ("://" in option and not option.startswith("file://")):
        return  # another backend (elasticsearch): pytest-benchmark checks it
    path = Path(option.removeprefix("file://"))
    if path.exists():
        if not path.is_dir():
            raise pytest.UsageError(f"--benchmark-storage {option}: {path} is a file, not a "
                                    "folder; pass a folder for the saved runs")
        return
    existing = next((p for p in path.absolute().parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise pytest.UsageError(f"--benchmark-storage {option}: {existing} is a file, so no "
                                "folder can be made under it; pass another folder")


@pytest.hookimpl(hookwrapper=True)
def pytest_benchmark_generate_json(config, benchmarks, include_data, machine_info, commit_info):
    """Keep an interrupted run's finished benchmarks: drop the one cut off mid-way
    (no rounds recorded), on which pytest-benchmark would fail to write any JSON."""
    benchmarks[:] = [b for b in benchmarks if b.has_error or _rounds_of(b)]
    yield


def _rounds_of(bench) -> list:
    stats = getattr(bench, "stats", None)  # Metadata.stats is a Stats with .data
    return getattr(stats, "data", None) or getattr(getattr(stats, "stats", None), "data", None) or []


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # before pytest-benchmark saves the run
def pytest_sessionfinish(session, exitstatus):
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        perf_session(session.config).interrupted = True
    yield


def pytest_benchmark_update_json(config, benchmarks, output_json) -> None:
    state = perf_session(config)
    output_json["fer_skipped"] = list(state.skipped)
    output_json["fer_session"] = state.facts()
    disturbed = disturbances(state.results)  # marked where a baseline reader will see it
    for bench in output_json.get("benchmarks") or []:
        if bench.get("name") in disturbed and isinstance(bench.get("extra_info"), dict):
            bench["extra_info"]["disturbed"] = disturbed[bench["name"]]


def pytest_benchmark_update_machine_info(config, machine_info) -> None:
    # lazy: torch only when the perf suite runs (the unit tests load this plugin)
    from fer.gpu import gpu_facts, gpu_info, hardware_class, software_info

    gpus = gpu_info()
    machine_info["fer"] = {
        "hardware_class": hardware_class(gpus),
        "perf_scale": config.getoption("perf_scale", default="auto"),
        **software_info(),
        **gpus,
        **gpu_facts(),  # UUIDs, serials, clock settings: which card, set how
    }


@pytest.fixture(scope="session")
def perf_scale(pytestconfig):
    """The perf scale of this session (``--perf-scale``, ``--perf-rounds``)."""
    import torch  # lazy: torch only when the perf suite runs (the unit tests load this plugin)

    return resolve_scale(pytestconfig.getoption("perf_scale"), cuda=torch.cuda.is_available(),
                         rounds=pytestconfig.getoption("perf_rounds"),
                         eager=pytestconfig.getoption("perf_step") == "eager")


@pytest.fixture(scope="session")
def perf_pose_data(perf_scale):
    """Synthetic stick figures at the suite's scale, drawn once per session."""
    # lazy: torch only when the perf suite runs (the unit tests load this plugin)
    from fer.data.pose import make_synthetic_poses, parse_pose_size

    return make_synthetic_poses(perf_scale.pose_images, input_size=parse_pose_size(perf_scale.pose_size),
                                seed=0)


@pytest.fixture(scope="session")
def perf_data(perf_scale):
    """The synthetic faces at the suite's scale, drawn once per session."""
    # lazy: torch only when the perf suite runs (the unit tests load this plugin)
    from fer.data import make_synthetic_faces

    return make_synthetic_faces(perf_scale.synthetic_size, seed=0)
