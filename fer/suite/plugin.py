"""pytest plugin of the perf suite (loaded by the root conftest.py).

* ``--perf-scale smoke|full|auto`` and the ``perf_scale`` / ``perf_data`` fixtures;
* GPU, CUDA, cuDNN, torch, torchvision and timm versions added to the
  benchmark JSON's ``machine_info`` (``pytest_benchmark_update_machine_info``);
* saved runs partitioned by hardware class: unless ``--benchmark-storage`` is
  given, runs go to ``.benchmarks/<hardware class>/`` (e.g.
  ``.benchmarks/NVIDIA_H100_80GB_HBM3-x1/``), so ``--benchmark-compare`` only
  ever finds baselines of the same GPU model and count (or CPU model);
* the names of skipped tests and their reasons, kept in the JSON as
  ``fer_skipped`` (a skip rule of :mod:`fer.suite.experiments` says why a
  machine cannot run a grid point);
* options checked before any test runs (``pytest_configure``): ``--perf-rounds``
  below 1, or a ``--benchmark-storage`` folder that is a file (or lies under
  one), stop the session with one ``pytest.UsageError`` line instead of a
  fixture traceback per test, or a crash after the whole suite that loses the
  autosave.
"""

from __future__ import annotations

import pytest

DEFAULT_STORAGE = "file://./.benchmarks"

MARKERS = {
    "gpu": "needs one CUDA device",
    "multi_gpu": "needs two or more CUDA devices",
    "slow": "takes more than a few seconds",
    "distributed": "starts torch.distributed process groups",
}


def pytest_addoption(parser) -> None:
    group = parser.getgroup("fer", "fer perf suite")
    from fer.suite.scales import SCALE_CHOICES

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
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    rounds = getattr(config.option, "perf_rounds", None)
    if rounds is not None and rounds < 1:
        raise pytest.UsageError(f"--perf-rounds {rounds}: must be >= 1 (timed epochs per "
                                "benchmark, after one warm-up)")
    _check_storage(getattr(config.option, "benchmark_storage", None))
    _trim_benchmark_table(config.option)
    option = getattr(config.option, "benchmark_storage", None)
    if option == DEFAULT_STORAGE:
        from fer.gpu import hardware_class

        config.option.benchmark_storage = f"{DEFAULT_STORAGE}/{hardware_class()}"


#: pytest-benchmark's default columns and sort, which fer replaces unless the user chose
_PB_COLUMNS = ["min", "max", "mean", "stddev", "median", "iqr", "outliers", "ops", "rounds",
               "iterations"]


def _trim_benchmark_table(option) -> None:
    """pytest-benchmark's own table, cut to what a run of epochs means: the median epoch, its
    IQR and the rounds, by name (so a sweep reads in order). Explicit choices are kept."""
    if getattr(option, "benchmark_columns", None) == _PB_COLUMNS:
        option.benchmark_columns = ["median", "iqr", "rounds"]
    if getattr(option, "benchmark_sort", None) == "min":
        option.benchmark_sort = "name"


def pytest_report_header(config) -> list[str]:
    if not config.getoption("perf_scale", default=None):
        return []
    return ["fer perf suite: every benchmark is one warm-up epoch and --perf-rounds timed epochs "
            "of one run (benchmark.pedantic); pytest-benchmark's min_rounds/warmup settings do "
            "not apply"]


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    from fer.suite.summary import RESULTS, format_summary

    if not RESULTS:
        return
    storage = None
    if getattr(config.option, "benchmark_autosave", False) or getattr(
            config.option, "benchmark_save", None):
        option = str(getattr(config.option, "benchmark_storage", "") or "")
        storage = option.removeprefix("file://") or None
    text = format_summary(RESULTS, json_path=_json_path(config), storage=storage)
    if text:
        terminalreporter.write_sep("=", "fer perf suite")
        terminalreporter.write_line(text)


def _json_path(config) -> str | None:
    value = getattr(config.option, "benchmark_json", None)
    return getattr(value, "name", None) or (str(value) if isinstance(value, str) else None)


def _check_storage(option: str | None) -> None:
    """A file-system --benchmark-storage must be a folder, or creatable as one."""
    from pathlib import Path

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


def pytest_runtest_logreport(report) -> None:
    """Remember skipped tests and why: the report lists them (pytest-benchmark's
    JSON alone only holds the benchmarks that ran)."""
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skips.append({"test": report.nodeid, "reason": reason.removeprefix("Skipped: ")})


_skips: list[dict] = []


def pytest_sessionstart(session) -> None:
    from fer.suite.summary import RESULTS

    _skips.clear()
    RESULTS.clear()


def pytest_benchmark_update_json(config, benchmarks, output_json) -> None:
    output_json["fer_skipped"] = list(_skips)


def pytest_benchmark_update_machine_info(config, machine_info) -> None:
    from fer.gpu import gpu_info, hardware_class, software_info

    gpus = gpu_info()
    machine_info["fer"] = {
        "hardware_class": hardware_class(gpus),
        "perf_scale": config.getoption("perf_scale", default="auto"),
        **software_info(),
        **gpus,
    }


@pytest.fixture(scope="session")
def perf_scale(pytestconfig):
    """The perf scale of this session (``--perf-scale``, ``--perf-rounds``)."""
    import torch

    from fer.suite.scales import resolve_scale

    return resolve_scale(pytestconfig.getoption("perf_scale"), cuda=torch.cuda.is_available(),
                         rounds=pytestconfig.getoption("perf_rounds"),
                         eager=pytestconfig.getoption("perf_step") == "eager")


@pytest.fixture(scope="session")
def perf_pose_data(perf_scale):
    """Synthetic stick figures at the suite's scale, drawn once per session."""
    from fer.data.pose import make_synthetic_poses, parse_pose_size

    return make_synthetic_poses(perf_scale.pose_images, input_size=parse_pose_size(perf_scale.pose_size),
                                seed=0)


@pytest.fixture(scope="session")
def perf_data(perf_scale):
    """The synthetic faces at the suite's scale, drawn once per session."""
    from fer.data import make_synthetic_faces

    return make_synthetic_faces(perf_scale.synthetic_size, seed=0)
