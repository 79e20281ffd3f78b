"""Fuzz suite: hostile inputs through the real CLI entry point, in process.

Every input below goes through ``fer.cli.main([...])`` — generated and mutated
benchmark JSON (``fer compare``, ``fer report``), FER2013 CSV rows and FER+
vote rows (``fer data inspect``), and ``fer train`` flag combinations — and
must end in exit 0 (or 1, a regression verdict), or exit 2 with exactly one
line on stderr naming the problem: never a traceback, never an exception
escaping ``main``.

Training never starts here: ``Trainer.fit`` is replaced by a stub, so a flag
combination runs every check ``fer train`` makes before its first step (the
config, output paths, the checkpoint folder, the data, the model) and stops.

The examples are derandomised, so the counts are the same on every run; run
``python -m pytest unit_tests/test_fuzz.py -q -s`` to print them (the README's
reliability table is this output).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer.cli import main
from unit_tests.helpers import write_fer_csv

FIXTURES = Path(__file__).parent / "fixtures"
BASE_RUN = FIXTURES / "history" / "base.json"

#: category -> {"tried", "ok", "clean error"}: printed at the end of the module
COUNTS: dict[str, dict[str, int]] = defaultdict(lambda: {"tried": 0, "ok": 0, "clean error": 0})

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


def run_cli(category: str, argv: list[str], ok_codes: tuple[int, ...] = (0,)) -> int:
    """``fer argv`` in process: exit in ok_codes, or 2 with one line on stderr, no traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
    text = err.getvalue()
    assert "Traceback" not in text, f"fer {' '.join(argv)}:\n{text}"
    assert code in (*ok_codes, 2), f"fer {' '.join(argv)} exited {code}:\n{text}"
    COUNTS[category]["tried"] += 1
    if code == 2:
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) == 1, f"fer {' '.join(argv)}: expected one line, got:\n{text}"
        assert "error" in lines[0], lines[0]
        COUNTS[category]["clean error"] += 1
    else:
        COUNTS[category]["ok"] += 1
    return code


@pytest.fixture(scope="module", autouse=True)
def _print_counts():
    yield
    if not COUNTS:
        return
    width = max(map(len, COUNTS))
    print(f"\n\n{'category':<{width}}  {'tried':>5}  {'ok':>4}  {'clean error':>11}")
    for name, c in COUNTS.items():
        print(f"{name:<{width}}  {c['tried']:>5}  {c['ok']:>4}  {c['clean error']:>11}")
    total = {k: sum(c[k] for c in COUNTS.values()) for k in ("tried", "ok", "clean error")}
    print(f"{'total':<{width}}  {total['tried']:>5}  {total['ok']:>4}  {total['clean error']:>11}")


# ------------------------------------------------------------ benchmark JSON --

DEEP = "__DEEP__"
HOSTILE = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0, 0.0, -1, -1e-9, 1e308, 10**400, True,
                     False, None, "", "x", "NaN", [], {}, [None], {"": None}, DEEP]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=4),
    st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=3),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=6),
)


def _paths(node, prefix=()):
    """Every (container path, key) in a JSON document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _mutate(doc, data) -> str:
    """1-3 mutations of ``doc``: a value replaced by a hostile one, or a key deleted."""
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        if isinstance(parent, dict) and data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(HOSTILE)
    text = json.dumps(doc)
    depth = data.draw(st.sampled_from([50, 5000, 200_000]))
    return text.replace(f'"{DEEP}"', "[" * depth + "]" * depth)


def _small_report_run() -> dict:
    """A schema-2 run of two workers benchmarks (one chart: fast to render)."""
    def record(epoch, wall):
        return {"epoch": epoch, "images": 64, "steps": 2, "wall_s": wall, "data_wait_s": 0.1,
                "compute_s": wall - 0.1, "images_per_s": 64 / wall, "loss": 1.5,
                "train_acc": 0.3, "lr": 0.001, "peak_mem_bytes": 1000,
                "peak_mem_kind": "process_peak_rss", "skipped_steps": 0, "val_loss": 1.4,
                "val_acc": 0.35, "eval_s": 0.05}
    benches = []
    for workers, wall in ((0, 1.0), (2, 0.8)):
        records = [record(0, wall * 1.5), record(1, wall), record(2, wall)]
        benches.append({
            "name": f"test_workers[{workers}]", "fullname": f"t.py::test_workers[{workers}]",
            "group": "workers", "stats": {"median": wall, "rounds": 2, "data": [wall, wall]},
            "extra_info": {"schema": 2, "experiment": "workers",
                           "params": {"num_workers": workers}, "records": records,
                           "summary": {"median_wall_s": wall, "median_images_per_s": 64 / wall,
                                       "median_data_wait_share": 0.1 / wall}}})
    return {"machine_info": {"fer": {"hardware_class": "cpu-x", "perf_scale": "smoke"}},
            "commit_info": {"id": "abc"}, "datetime": "2026-01-01T00:00:00",
            "version": "5.2.3", "benchmarks": benches}


@FUZZ
@given(data=st.data())
def test_mutated_runs_through_fer_compare(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("cmp")
    bad = folder / "mutated.json"
    bad.write_text(_mutate(json.loads(BASE_RUN.read_text()), data))
    base = str(BASE_RUN)
    run_cli("benchmark JSON, mutated: fer compare", ["compare", base, str(bad)], (0, 1))
    run_cli("benchmark JSON, mutated: fer compare", ["compare", str(bad), base, "--json",
                                                     "--fail-on-regression"], (0, 1))


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_mutated_runs_through_fer_report(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("rep")
    bad = folder / "mutated.json"
    bad.write_text(_mutate(_small_report_run(), data))
    run_cli("benchmark JSON, mutated: fer report", ["report", str(bad), "--out",
                                                    str(folder / "out")])


JSON_DOCS = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["benchmarks", "stats", "median", "name", "extra_info", "machine_info",
                         "commit_info", "data", "summary", "records", "fer", "x"]),
        inner, max_size=5),
    max_leaves=12)


@FUZZ
@given(doc=JSON_DOCS, raw=st.binary(max_size=40), use_raw=st.booleans())
def test_generated_documents_through_fer_compare(tmp_path_factory, doc, raw, use_raw):
    path = tmp_path_factory.mktemp("gen") / "generated.json"
    if use_raw:
        path.write_bytes(raw)
    else:
        path.write_text(json.dumps(doc))
    run_cli("benchmark JSON, generated documents", ["compare", str(BASE_RUN), str(path)], (0, 1))


@settings(FUZZ, max_examples=15)
@given(data=st.data())
def test_histories_skip_bad_files(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("hist")
    shutil.copy(BASE_RUN, folder / "a.json")
    shutil.copy(FIXTURES / "history" / "same.json", folder / "b.json")
    (folder / "c.json").write_text(_mutate(json.loads(BASE_RUN.read_text()), data))
    code = run_cli("benchmark JSON, mutated: fer compare --history",
                   ["compare", "--history", str(folder)], (0, 1))
    assert code in (0, 1)  # two good runs: one bad file never blocks a history


# ----------------------------------------------------------- FER2013 / FER+ --

PIXELS = " ".join(["128"] * 2304)
USAGES = ["Training", "PublicTest", "PrivateTest"]

ROW = st.one_of(
    st.tuples(st.integers(0, 6), st.sampled_from(USAGES)).map(
        lambda t: f"{t[0]},{PIXELS},{t[1]}"),
    st.sampled_from(["", "   ", "7," + PIXELS + ",Training", "-1," + PIXELS + ",Training",
                     "x," + PIXELS + ",Training", "3," + PIXELS + ",Nope",
                     "3," + PIXELS + ",Training,extra", "3,1 2 3,Training",
                     "3," + PIXELS.replace("128", "256", 1) + ",Training",
                     "3," + PIXELS.replace("128", "1a8", 1) + ",Training",
                     "3," + PIXELS + " 5,Training", "3," + PIXELS[:1000],
                     "3,,Training", "\u00e9,\u00e9,\u00e9", "3," + PIXELS + ",Training\r"]),
)


@FUZZ
@given(rows=st.lists(ROW, max_size=8), header=st.sampled_from(
    ["emotion,pixels,Usage", "emotion, Usage, pixels", "pixels", "emotion,pixels", "a,b,c", ""]),
    skip=st.booleans(), crlf=st.booleans())
def test_fer2013_rows_through_fer_data_inspect(tmp_path_factory, rows, header, skip, crlf):
    path = tmp_path_factory.mktemp("csv") / "fer2013.csv"
    if header == "emotion, Usage, pixels":
        rows = [",".join((r.split(",") + ["", ""])[i] for i in (0, 2, 1)) if r.strip() else r
                for r in rows]
    newline = "\r\n" if crlf else "\n"
    path.write_text(newline.join([header, *rows]) + newline)
    argv = ["data", "inspect", str(path), "--no-cache", "--json"]
    run_cli("FER2013 CSV rows: fer data inspect", argv + (["--skip-bad-rows"] if skip else []))


VOTE = st.one_of(st.integers(0, 10).map(str),
                 st.sampled_from(["nan", "inf", "-inf", "-1", "x", "", "1e400", "3.5"]))


@FUZZ
@given(votes=st.lists(st.lists(VOTE, min_size=10, max_size=10), min_size=1, max_size=6),
       blank_at=st.integers(0, 8), extra=st.sampled_from(["", ",1", None]),
       mode=st.sampled_from(["majority", "soft"]), skip=st.booleans())
def test_ferplus_votes_through_fer_data_inspect(tmp_path_factory, votes, blank_at, extra, mode,
                                                skip):
    folder = tmp_path_factory.mktemp("plus")
    fer = folder / "fer2013.csv"
    write_fer_csv(fer, n=len(votes))
    splits = np.arange(len(votes)) % 3
    lines = ["Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
             "contempt,unknown,NF"]
    for i, row in enumerate(votes):
        line = f"{USAGES[splits[i]]},fer{i:07d}.png," + ",".join(row)
        lines.append(line + extra if extra is not None and i == 0 else line)
    lines.insert(min(blank_at, len(lines)), "") if blank_at else None
    plus = folder / "fer2013new.csv"
    plus.write_text("\n".join(lines) + "\n")
    argv = ["data", "inspect", str(fer), "--ferplus", str(plus), "--ferplus-mode", mode,
            "--no-cache", "--json"]
    run_cli("FER+ vote rows: fer data inspect", argv + (["--skip-bad-rows"] if skip else []))


# ----------------------------------------------------------------- fer train --

def _flag_pool(root: Path) -> dict[str, list[str | None]]:
    a_file = root / "a_file"
    votes = root / "fer2013new.csv"
    return {
        "--image-size": ["48", "64", "10000", "0", "-8", "50", "x", "640", "648"],
        "--drop-rate": ["0", "0.5", "1", "1.5", "-0.1", "nan", "inf"],
        "--learning-rate": ["0.01", "0", "-1", "inf", "nan", "1e-3", "x"],
        "--model": ["test_efficientnet", "hrnet_w18_small", "bogus_net_b9"],
        "--task": ["fer", "pose", "nope"],
        "--ferplus": [str(votes), "/no/such/votes.csv"],
        "--ferplus-mode": ["majority", "soft", "x"],
        "--coco-images": [str(root)],
        "--metrics-json": [str(root / "out" / "m.json"), str(a_file / "m.json"), str(root)],
        "--checkpoint-dir": [str(root / "ck"), str(a_file), str(a_file / "ck")],
        "--batch-size": ["1", "8", "0", "-4", "x"],
        "--epochs": ["1", "0", "-1", "2"],
        "--optimizer": ["adam", "sgd", "lion"],
        "--precision": ["fp32", "fp8"],
        "--num-workers": ["0", "-1"],
        "--pose-size": ["64x64", "10x10", "99999x32", "abc"],
        "--warmup-epochs": ["0", "1", "5"],
        "--label-smoothing": ["0", "0.1", "1", "nan"],
        "--momentum": ["0.9", "inf", "-1"],
        "--weight-decay": ["0", "nan"],
        "--device": ["cpu", "tpu", "cuda:7"],
        "--data": ["synthetic", str(root / "fer2013.csv"), "/no/such.csv", str(a_file)],
        "--pretrained": [str(root / "nan.pth"), "/no/such.pth"],
        "--seed": ["0", "-1", "x"],
        "--skip-bad-rows": [None], "--imbalance": [None], "--resume": [None],
        "--overwrite": [None], "--channels-last": [None],
    }


@pytest.fixture(scope="module")
def train_root(tmp_path_factory):
    import torch

    from fer.models import build_model

    root = tmp_path_factory.mktemp("train")
    (root / "a_file").write_text("not a folder")
    write_fer_csv(root / "fer2013.csv", n=6)
    (root / "fer2013new.csv").write_text(
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,"
        "unknown,NF\n" + "".join(f"{u},f{i}.png,0,10,0,0,0,0,0,0,0,nan\n"
                                  for i, u in enumerate(USAGES * 2)))
    state = build_model("test_efficientnet").state_dict()
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first].view(-1)[0] = float("nan")
    torch.save(state, root / "nan.pth")
    return root


@pytest.fixture(scope="module")
def no_training():
    """Trainer.fit replaced: every check before the first step runs, no step does."""
    from fer.engine import Trainer

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "fit", lambda self, *a, **k: [])
        yield


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_train_flag_combinations(train_root, no_training, data):
    pool = _flag_pool(train_root)
    names = data.draw(st.lists(st.sampled_from(sorted(pool)), min_size=1, max_size=4,
                               unique=True))
    argv = ["train", "--synthetic-size", "16", "--max-steps-per-epoch", "1", "--epochs", "1"]
    if "--device" not in names:
        argv += ["--device", "cpu"]
    for name in names:
        value = data.draw(st.sampled_from(pool[name]))
        argv += [name] if value is None else [name, value]
    if "pose" in argv and "--pose-size" not in names:
        argv += ["--pose-size", "64x64"]  # pose at its default 256x192 is slow to draw
    shutil.rmtree(train_root / "ck", ignore_errors=True)
    run_cli("fer train flag combinations", argv)
