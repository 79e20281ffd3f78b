"""GPU facts that explain noise, on a CPU with a fake NVML: the sampler's clocks, temperature,
power and throttle reasons, machine_info's UUIDs, serials and clock settings, fer compare's
warnings and the dashboard's line; and without NVML nothing breaks."""

import itertools
import json
import sys
import time
from types import SimpleNamespace

import pytest

from fer import gpu
from fer.bench.dashboard import build_dashboard
from fer.bench.stats import compare
from fer.bench.storage import load_run
from fer.cli import main
from fer.gpu import UtilizationSampler, gpu_facts, reason_names
from fer.suite import plugin
from unit_tests.helpers import make_run

UUID_A = "GPU-1a2b3c4d-0000-1111-2222-333344445555"
UUID_B = "GPU-9f8e7d6c-0000-1111-2222-333344445555"


class FakeNVML:
    """pynvml as fer.gpu calls it, answering scripted readings (each sequence read in a cycle);
    a reading given as None raises, as NVML does for what a card does not support."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    def __init__(self, *, sm=(1980,), mem=(2619,), temps=(40,), power_mw=(300_000,), reasons=(0,),
                 uuids=(UUID_A,), serials=("1650123456789",), app=(1980, 2619),
                 default_app=(1980, 2619), old_api=False):
        self.uuids, self.serials, self.app, self.default_app = uuids, serials, app, default_app
        self.old_api = old_api
        self.cycles = {name: itertools.cycle(values) for name, values in
                       (("sm", sm), ("mem", mem), ("temps", temps), ("power", power_mw),
                        ("reasons", reasons), ("used", (10 * 2**30, 12 * 2**30)), ("util", (90, 99)))}
        self.inits = self.shutdowns = 0

    def _next(self, name):
        value = next(self.cycles[name])
        if value is None:
            raise RuntimeError("NVML: Not Supported")
        return value

    def nvmlInit(self):
        self.inits += 1

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return b"NVIDIA H200"

    def nvmlSystemGetDriverVersion(self):
        return "570.86.15"

    def nvmlSystemGetCudaDriverVersion(self):
        return 12080

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(total=150 * 2**30, used=self._next("used"))

    def nvmlDeviceGetUtilizationRates(self, handle):
        return SimpleNamespace(gpu=self._next("util"))

    def nvmlDeviceGetClockInfo(self, handle, clock):
        return self._next("sm" if clock == self.NVML_CLOCK_SM else "mem")

    def nvmlDeviceGetTemperature(self, handle, sensor):
        assert sensor == self.NVML_TEMPERATURE_GPU
        return self._next("temps")

    def nvmlDeviceGetPowerUsage(self, handle):
        return self._next("power")

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        if self.old_api:
            raise RuntimeError("NVML: Function Not Found")  # a driver before the new name
        return self._next("reasons")

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
        return self._next("reasons")

    def nvmlDeviceGetUUID(self, handle):
        return self.uuids[handle].encode()  # bytes, as older nvidia-ml-py returns

    def nvmlDeviceGetSerial(self, handle):
        if self.serials[handle] is None:
            raise RuntimeError("NVML: Not Supported")
        return self.serials[handle]

    def nvmlDeviceGetApplicationsClock(self, handle, clock):
        if self.app is None:
            raise RuntimeError("NVML: Not Supported")
        return self.app[clock == self.NVML_CLOCK_MEM]

    def nvmlDeviceGetDefaultApplicationsClock(self, handle, clock):
        return self.default_app[clock == self.NVML_CLOCK_MEM]

    def nvmlDeviceGetMaxClockInfo(self, handle, clock):
        return 3201 if clock == self.NVML_CLOCK_MEM else 1980

    def nvmlDeviceGetPersistenceMode(self, handle):
        return 1

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return 700_000


@pytest.fixture
def nvml(monkeypatch):
    """Install a FakeNVML as ``pynvml`` (all GPUs visible); returns the installer."""
    def install(**kwargs) -> FakeNVML:
        fake = FakeNVML(**kwargs)
        monkeypatch.setitem(sys.modules, "pynvml", fake)
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        return fake
    return install


def _machine_info(monkeypatch) -> dict:
    """What the plugin writes into a run's machine_info (software versions stubbed)."""
    monkeypatch.setattr(gpu, "software_info", lambda: {"torch": "2.11.0"})
    machine_info: dict = {}
    config = SimpleNamespace(getoption=lambda name, default=None: "full")
    plugin.pytest_benchmark_update_machine_info(config, machine_info)
    json.dumps(machine_info)  # stored as JSON
    return machine_info["fer"]


def test_the_sampler_summarises_clocks_temperature_power_and_reasons(nvml):
    fake = nvml(sm=(1980, 1410, 1755, 1980, 1200), temps=(45, 71, 83, 60, 52),
                power_mw=(250_000, 690_000, 700_000, 400_000, 120_000),
                reasons=(0x0, 0x4, 0x44, 0x4, 0x1))
    with UtilizationSampler("cuda", interval_s=3600) as s:  # the thread never wakes: by hand
        for _ in range(5):
            s.sample()
    summary = s.summary()
    assert summary["sm_clock_mhz"] == {"min": 1200, "median": 1755, "max": 1980}
    assert summary["mem_clock_mhz"] == {"min": 2619, "median": 2619, "max": 2619}
    assert summary["temperature_c"] == {"min": 45, "median": 60, "max": 83}
    assert summary["power_w"] == {"min": 120, "median": 400, "max": 700}
    assert summary["throttle_reasons"] == ["gpu_idle", "hw_thermal_slowdown", "sw_power_cap"]
    assert summary["throttle_reason_samples"] == {"gpu_idle": 1, "hw_thermal_slowdown": 1,
                                                  "sw_power_cap": 3}
    assert summary["gpu_samples"] == 5 and summary["gpu_mem_used_max_bytes"] == 12 * 2**30
    assert summary["gpu_util_median_pct"] == 90
    assert fake.inits == fake.shutdowns == 1
    json.dumps(summary)  # stored in extra_info


def test_an_older_driver_and_a_card_without_a_power_sensor(nvml):
    nvml(old_api=True, power_mw=(None,), reasons=(0x20,))
    with UtilizationSampler("cuda", interval_s=3600) as s:
        s.sample()
        s.sample()
    summary = s.summary()
    assert summary["throttle_reasons"] == ["sw_thermal_slowdown"]  # read by the older call
    assert "power_w" not in summary and summary["sm_clock_mhz"]["max"] == 1980


def test_no_reason_seen_is_said_and_unread_reasons_are_absent(nvml):
    nvml(reasons=(0,))
    with UtilizationSampler("cuda", interval_s=3600) as s:
        s.sample()
    assert s.summary()["throttle_reasons"] == []  # read: nothing active
    nvml(reasons=(None,))
    with UtilizationSampler("cuda", interval_s=3600) as s:
        s.sample()
    assert "throttle_reasons" not in s.summary()  # unread: unknown, not "none"


def test_reason_names_by_bit():
    assert reason_names(0) == []
    assert reason_names(0x4 | 0x40) == ["sw_power_cap", "hw_thermal_slowdown"]
    assert reason_names(0x800 | 0x1) == ["gpu_idle", "0x800"]  # a bit newer than fer


def test_the_thread_samples_while_the_rounds_run(nvml):
    nvml()
    with UtilizationSampler("cuda", interval_s=0.01) as s:
        deadline = time.monotonic() + 10
        while s.samples < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    summary = s.summary()
    assert summary["gpu_samples"] >= 3 and summary["sm_clock_mhz"]["median"] == 1980


def test_machine_info_names_the_card_and_its_clock_settings(nvml, monkeypatch):
    nvml(uuids=(UUID_A, UUID_B), serials=("1650123456789", None), app=(1410, 2619))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # the second card only
    fer = _machine_info(monkeypatch)
    assert fer["hardware_class"] == "NVIDIA_H200-x1"
    assert fer["gpu_uuids"] == [UUID_B] and fer["gpu_serials"] == ["unknown"]
    clocks = fer["gpu_clocks"][0]
    assert clocks["applications_clocks"] == "set" and clocks["applications_sm_mhz"] == 1410
    assert clocks["default_applications_sm_mhz"] == 1980 and clocks["max_mem_mhz"] == 3201
    assert clocks["locked_clocks"] == "unknown" and clocks["persistence_mode"] == "on"
    assert clocks["power_limit_w"] == 700 and "gpc_clock_offset_mhz" not in clocks


@pytest.mark.parametrize("app,state", [((1980, 2619), "default"), ((1980, 1593), "set"),
                                       (None, "unknown")])
def test_applications_clocks_against_their_defaults(nvml, app, state):
    nvml(app=app)
    facts = gpu_facts()
    assert facts["gpu_uuids"] == [UUID_A] and facts["gpu_clocks"][0]["applications_clocks"] == state


class _NoDriver:
    def nvmlInit(self):
        raise RuntimeError("NVML Shared Library Not Found")


@pytest.mark.parametrize("module", [None, _NoDriver()], ids=["no-pynvml", "no-driver"])
def test_without_nvml_nothing_breaks(monkeypatch, tmp_path, module):
    monkeypatch.setitem(sys.modules, "pynvml", module)  # None: `import pynvml` raises
    assert gpu_facts() == {}
    with UtilizationSampler("cuda") as s:
        pass
    assert s.summary() == {}
    fer = _machine_info(monkeypatch)
    assert "gpu_uuids" not in fer and "gpu_clocks" not in fer
    # runs without GPU facts: no GPU line in fer compare or on the dashboard
    for i in range(3):
        make_run(tmp_path / f"run{i}.json", {"a[1]": [1.0, 1.01, 0.99]}, when=f"2026-01-0{i + 1}T00:00:00")
    runs = [load_run(tmp_path / f"run{i}.json") for i in range(3)]
    assert runs[0].gpu_facts == {} and runs[0].benchmarks["t.py::a[1]"].gpu_sampling == {}
    assert _gpu_lines(compare(runs[:2], runs[2])) == []


# -- fer compare and the dashboard read what the suite stored


def _run(path, *, uuid=UUID_A, clocks="default", reasons=None, sampled=True,
         when="2026-01-01T00:00:00"):
    """A run of two benchmarks with GPU facts: its card, its applications clocks, and per
    benchmark NVML's samples with the reasons given (gpu_idle where none are)."""
    make_run(path, {"a[1]": [1.0, 1.01, 0.99], "a[2]": [2.0, 2.02, 1.98]}, when=when)
    doc = json.loads(path.read_text())
    doc["machine_info"]["fer"].update(
        gpu_uuids=[uuid], gpu_serials=["1650123456789"],
        gpu_clocks=[{"applications_clocks": clocks, "applications_sm_mhz": 1410,
                     "applications_mem_mhz": 2619, "locked_clocks": "unknown"}])
    for bench in doc["benchmarks"] if sampled else []:
        bench["extra_info"]["gpu_sampling"] = {
            "sm_clock_mhz": {"min": 1200, "median": 1950, "max": 1980},
            "temperature_c": {"min": 41, "median": 70, "max": 84},
            "throttle_reasons": (reasons or {}).get(bench["name"], ["gpu_idle"])}
    path.write_text(json.dumps(doc))
    return load_run(path)


def _history(tmp_path, n=3, **kwargs):
    return [_run(tmp_path / f"base{i}.json", when=f"2026-01-0{i + 1}T00:00:00", **kwargs)
            for i in range(n)]


def _gpu_lines(comparison) -> list[str]:
    lines = [r for r in comparison.reasons() if "GPU" in r or "throttled" in r]
    assert all("\n" not in line for line in lines)
    return lines


def test_compare_warns_when_the_runs_ran_on_another_card(tmp_path, capsys):
    base = _history(tmp_path)
    same = _run(tmp_path / "same.json", when="2026-01-09T00:00:00")
    assert _gpu_lines(compare(base, same)) == []
    other = _run(tmp_path / "other.json", uuid=UUID_B, when="2026-01-09T00:00:00")
    lines = _gpu_lines(compare(base, other))
    assert len(lines) == 1
    assert "3 of 3 baseline run(s) ran on another physical GPU than the candidate" in lines[0]
    assert "(GPU-1a2b3c4d vs GPU-9f8e7d6c)" in lines[0]
    assert main(["compare", str(base[0].path), str(other.path)]) in (0, 1)
    assert "ran on another physical GPU" in capsys.readouterr().out


def test_compare_warns_on_other_clock_settings_never_on_unknown_ones(tmp_path):
    base = _history(tmp_path)
    lines = _gpu_lines(compare(base, _run(tmp_path / "set.json", clocks="set", when="2026-01-09")))
    assert len(lines) == 1 and "ran with other GPU clock settings than the candidate" in lines[0]
    assert ("(applications clocks default, locked clocks unknown vs applications clocks set "
            "(1410/2619 MHz SM/memory), locked clocks unknown)") in lines[0]
    assert _gpu_lines(compare(base, _run(tmp_path / "unknown.json", clocks="unknown",
                                         when="2026-01-09"))) == []


def test_compare_warns_on_throttling_seen_on_one_side_only(tmp_path):
    base = _history(tmp_path)
    hot = _run(tmp_path / "hot.json", when="2026-01-09",
               reasons={"a[1]": ["gpu_idle", "sw_power_cap", "hw_thermal_slowdown"]})
    assert _gpu_lines(compare(base, hot)) == [
        "1 benchmark(s) throttled in the candidate but not in the baseline (hw_thermal_slowdown, "
        "sw_power_cap; a[1]): the card slowed itself, so part of a change may be the card's, not the "
        "code's"]
    # the converse: one baseline run throttled, the candidate did not
    cool = _run(tmp_path / "cool.json", when="2026-01-09")
    lines = _gpu_lines(compare([*base, hot], cool))
    assert len(lines) == 1 and "throttled in baseline runs but not in the candidate" in lines[0]
    # both throttled, a clock setting (not throttling), or a side not sampled: nothing to say
    assert _gpu_lines(compare([*base, hot], _run(tmp_path / "hot2.json", when="2026-01-10",
                                                 reasons={"a[1]": ["sw_power_cap"]}))) == []
    setting = _run(tmp_path / "setting.json", when="2026-01-09",
                   reasons={"a[2]": ["applications_clocks_setting"]})
    assert _gpu_lines(compare(base, setting)) == []
    assert _gpu_lines(compare(base, _run(tmp_path / "unsampled.json", when="2026-01-09",
                                         sampled=False))) == []


def test_stored_facts_are_read_safely(tmp_path):
    run = _run(tmp_path / "r.json")
    assert run.gpu_facts["uuids"] == [UUID_A] and run.gpu_facts["serials"] == ["1650123456789"]
    assert run.benchmarks["t.py::a[1]"].gpu_sampling["sm_clock_mhz"]["median"] == 1950
    doc = json.loads(run.path.read_text())
    doc["machine_info"]["fer"]["gpu_uuids"] = "GPU-not-a-list"
    doc["benchmarks"][0]["extra_info"]["gpu_sampling"] = {
        "sm_clock_mhz": {"min": "fast", "median": 1, "max": 2}, "throttle_reasons": "sw_power_cap"}
    run.path.write_text(json.dumps(doc))
    damaged = load_run(run.path)
    assert "uuids" not in damaged.gpu_facts
    assert damaged.benchmarks[doc["benchmarks"][0]["fullname"]].gpu_sampling == {}


def test_the_dashboard_shows_the_newest_runs_gpu(tmp_path):
    folder = tmp_path / "history"
    folder.mkdir()
    _run(folder / "old.json", when="2026-01-01T00:00:00")
    _run(folder / "new.json", uuid=UUID_B, when="2026-01-02T00:00:00",
         reasons={"a[1]": ["sw_power_cap"], "a[2]": ["sw_power_cap", "hw_slowdown"]})
    site = build_dashboard([folder], tmp_path / "site")
    index = (site.out / "index.html").read_text()
    line = next(x for x in index.split("<p") if "gpu-facts" in x)
    assert "GPU of the newest run: GPU-9f8e7d6c (serial 1650123456789)" in line
    assert "applications clocks default, locked clocks unknown" in line
    assert "SM clock 1,200-1,980 MHz (median 1,950)" in line and "temperature 41-84 °C" in line
    assert "throttled: hw_slowdown in 1 benchmark(s), sw_power_cap in 2 benchmark(s)" in line
    assert "gpu-facts" in next(site.out.rglob("comparison.html")).read_text()
    # a CPU history shows none
    cpu = tmp_path / "cpu"
    cpu.mkdir()
    make_run(cpu / "run.json", {"a[1]": [1.0, 1.01, 0.99]})
    site = build_dashboard([cpu], tmp_path / "cpu-site")
    assert "gpu-facts" not in (site.out / "index.html").read_text()
