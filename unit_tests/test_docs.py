"""The commands the README and docs/ show are real: each `fer` command line parses with fer's
own parser, each pytest flag exists, each tox environment and script is there. A doc that
drifts from the code fails here, naming the page and the line."""

import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fer.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: commands the docs show that are not this project's (a package manager, another tool)
FOREIGN = {"pip", "tensorboard", "nvidia-smi", "./config.sh", "open", "cd", "export"}


def _shell_lines(text: str):
    """(line number, command line) of every ```sh block, continuation lines joined, and of
    every `$ ` line of a ```text block (an example's command)."""
    lang, pending, start = None, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^```(\w*)", line)
        if fence:
            lang = None if lang is not None else (fence.group(1) or "plain")
            continue
        if lang == "sh":
            if not pending:
                start = number
            pending += line.rstrip("\\").rstrip() + " "
            if not line.rstrip().endswith("\\"):
                if pending.strip():
                    yield start, pending.strip()
                pending = ""
        elif lang == "text" and line.startswith("$ "):
            yield number, line[2:]


def _commands(line: str) -> list[list[str]]:
    """The simple commands of a line: comments, redirections and placeholders dropped."""
    words = shlex.split(line, comments=True)
    commands, current = [], []
    for word in words:
        if word in ("&&", "||", ";", "|"):
            commands.append(current)
            current = []
        else:
            current.append(word)
    commands.append(current)
    cleaned = []
    for words in commands:
        for i, word in enumerate(words):
            if word.startswith((">", "<", "2>")):
                words = words[:i]
                break
        cleaned.append([w for w in words if w not in ("...", "…")])
    return [c for c in cleaned if c]


def _all_commands():
    for page in PAGES:
        for number, line in _shell_lines(page.read_text()):
            for words in _commands(line):
                yield f"{page.relative_to(ROOT)}:{number}", words


CASES = list(_all_commands())


@pytest.fixture(scope="module")
def pytest_flags() -> set[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120).stdout
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", out))


def _tox_envs() -> set[str]:
    return set(re.findall(r"^\[testenv:([\w-]+)\]", (ROOT / "tox.ini").read_text(), re.M))


def test_the_docs_show_commands():
    assert len(CASES) > 40 and {w[0] for _, w in CASES} >= {"fer", "pytest", "python", "tox"}


@pytest.mark.parametrize("where,words", CASES, ids=[f"{w}:{c[0]}" for w, c in CASES])
def test_each_command_is_real(where, words, pytest_flags):
    check(where, words, pytest_flags)


@pytest.mark.parametrize("line,error", [
    ("fer compare --no-such-flag", "does not parse"),
    ("fer report", "does not parse"),  # a required argument missing
    ("pytest perf_tests --perf-scale smoke --perf-nothing 3", "pytest has no --perf-nothing"),
    ("tox -e unit,gpu-nothing", "no environment gpu-nothing"),
    ("python benchmarks/nothing.py --out x", "no script benchmarks/nothing.py"),
    ("make everything", "neither this project's command"),
])
def test_a_drifted_command_is_caught(line, error, pytest_flags):
    with pytest.raises((AssertionError, pytest.fail.Exception), match=re.escape(error)):
        check("page.md:1", _commands(line)[0], pytest_flags)


def check(where: str, words: list[str], pytest_flags: set[str]) -> None:
    """Fail, naming ``where``, unless ``words`` is a real command of this project."""
    while words and re.match(r"^[A-Z_]+=", words[0]):  # FER_RUN=x tox ...: the environment
        words = words[1:]
    head = words[0]
    if head in ("python", "python3") and words[1:3] == ["-m", "pytest"]:
        head, words = "pytest", ["pytest", *words[3:]]
    if head == "torchrun":
        words = words[words.index("fer"):] if "fer" in words else words
        head = words[0]
    if head in FOREIGN:
        return
    if head == "fer":
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                build_parser([words[1]]).parse_args(words[1:])
        except SystemExit as exc:
            assert exc.code == 0, f"{where}: `{' '.join(words)}` does not parse: {err.getvalue()}"
    elif head == "pytest":
        unknown = [w.split("=")[0] for w in words[1:]
                   if w.startswith("--") and w.split("=")[0] not in pytest_flags]
        assert not unknown, f"{where}: pytest has no {', '.join(unknown)}"
        for word in words[1:]:
            if not word.startswith("-") and "/" not in word and word in ("perf_tests", "unit_tests"):
                assert (ROOT / word).is_dir(), f"{where}: no folder {word}"
    elif head == "tox":
        envs = words[words.index("-e") + 1].split(",")
        missing = set(envs) - _tox_envs()
        assert not missing, f"{where}: tox.ini has no environment {', '.join(sorted(missing))}"
    elif head in ("python", "python3", "bash"):
        script = next(w for w in words[1:] if not w.startswith("-"))
        assert (ROOT / script).is_file(), f"{where}: no script {script}"
    else:
        pytest.fail(f"{where}: `{head}` is neither this project's command nor listed as foreign")


def test_the_compare_example_is_what_fer_compare_prints(capsys, monkeypatch):
    """docs/compare.md's example is the output of real runs, regenerated, not edited."""
    example = ROOT / "docs" / "compare-example"
    monkeypatch.chdir(example)
    from fer.cli import main

    assert main(["compare", "run1.json", "run2.json", "slow20.json"]) == 0
    printed = capsys.readouterr().out
    assert printed == (example / "compare.txt").read_text()
    assert printed in (ROOT / "docs" / "compare.md").read_text()
