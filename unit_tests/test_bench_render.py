"""fer.bench.render: the comparison table and its markdown form."""

import json
from pathlib import Path

from fer.bench.render import format_markdown, format_table, short_name
from fer.bench.stats import compare
from fer.bench.storage import load_run

FIXTURES = Path(__file__).parent / "fixtures" / "history"


def test_short_name():
    assert short_name("perf_tests/test_x.py::test_epoch[adam]") == "test_epoch[adam]"
    assert short_name("plain") == "plain"


def test_table_shows_each_benchmark_and_the_tally():
    text = format_table(compare(load_run(FIXTURES / "base.json"), load_run(FIXTURES / "slow.json")))
    lines = text.splitlines()
    assert lines[0] == "baseline: base.json   candidate: slow.json"
    rows = [line for line in lines if line.startswith("test_")]
    assert sum("REGRESSED" in line for line in rows) == 2
    shift = next(line for line in lines if line.startswith("the run as a whole"))
    assert "2 benchmark(s) together" in shift and shift.endswith("REGRESSED")
    assert any(line.startswith("2 regressed, 0 improved, 0 unchanged, 0 inconclusive") for line in lines)
    assert "MDE" in lines[1] and "interval" in lines[1]
    assert "CROSS-MACHINE" not in text


def test_markdown_marks_cross_machine_and_added_removed(tmp_path):
    other = json.loads((FIXTURES / "base.json").read_text())
    other["machine_info"]["fer"]["hardware_class"] = "elsewhere"
    other["benchmarks"][1] = dict(other["benchmarks"][1], name="test_epoch[new]",
                                  fullname="test_gate_epoch.py::test_epoch[new]")
    path = tmp_path / "other.json"
    path.write_text(json.dumps(other))
    c = compare(load_run(FIXTURES / "base.json"), load_run(path), allow_cross_machine=True)
    md = format_markdown(c)
    assert "**Cross-machine comparison**" in md
    assert "- added: `test_epoch[new]`" in md and "- removed: `test_epoch[sgd]`" in md
    assert "| `test_epoch[adam]` |" in md and "**0 regressed, " in md
    assert "WARNING: CROSS-MACHINE" in format_table(c)
