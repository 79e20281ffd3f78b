"""docs/ARCHITECTURE.md kept true by the code: the import layers (read from the doc's own table
and from every module's imports), no cycles, torch-free modules, every lazy import with its
reason, and the documented extension points (an experiment, a chart, a gated metric, a verdict)
working when used exactly as the doc says."""

import ast
import fnmatch
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
#: what a lazy import may keep out of a light module: slow to import, or optional (pynvml;
#: pytest, which only the test extra installs)
HEAVY = {"torch", "torchvision", "timm", "matplotlib", "scipy", "PIL", "safetensors", "pynvml",
         "tqdm", "numpy", "pytest"}


def _name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


MODULES = {_name(p): p for p in sorted((ROOT / "fer").rglob("*.py"))}


class _Imports(ast.NodeVisitor):
    """The runtime imports of one module: (target, line, inside a function), TYPE_CHECKING
    blocks left out."""

    def __init__(self, name: str, is_package: bool) -> None:
        self.package = name if is_package else name.rpartition(".")[0]
        self.found: list[tuple[str, int, bool]] = []
        self.depth = 0

    def visit_If(self, node):
        if "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node):
        for alias in node.names:
            self.found.append((alias.name, node.lineno, self.depth > 0))

    def visit_ImportFrom(self, node):
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")[:len(self.package.split(".")) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        self.found.append((base, node.lineno, self.depth > 0))
        for alias in node.names:
            self.found.append((f"{base}.{alias.name}", node.lineno, self.depth > 0))


def _imports(name: str) -> list[tuple[str, int, bool]]:
    path = MODULES[name]
    visitor = _Imports(name, path.name == "__init__.py")
    visitor.visit(ast.parse(path.read_text()))
    return visitor.found


def _fer_target(target: str) -> str | None:
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _edges(*, top_level_only: bool = False) -> dict[str, set[str]]:
    edges = {}
    for name in MODULES:
        targets = {_fer_target(t) for t, _, inner in _imports(name)
                   if not (top_level_only and inner)}
        edges[name] = {t for t in targets if t and t != name}
    return edges


def _layers() -> dict[str, int]:
    """Module -> layer, from the doc's "Import layers" table."""
    table = DOC.read_text().split("## Import layers", 1)[1].split("\n## ", 1)[0]
    patterns = []
    for row in re.findall(r"^\| (\d+) \| [^|]+ \| ([^|]+) \|$", table, re.M):
        patterns += [(p.strip(), int(row[0])) for p in row[1].split(",")]
    assert len(patterns) > 20, "the doc's layer table was not found"
    layers = {}
    for name in MODULES:
        for pattern, layer in patterns:
            if name == pattern or fnmatch.fnmatch(name, pattern):
                layers[name] = layer
                break
    return layers


def test_every_module_has_a_layer():
    missing = sorted(set(MODULES) - set(_layers()))
    assert not missing, f"docs/ARCHITECTURE.md's layer table does not place {missing}"


def test_no_import_runs_up_the_layers():
    layers = _layers()
    upward = [f"{a} (layer {layers[a]}) imports {b} (layer {layers[b]})"
              for a, targets in _edges().items() for b in sorted(targets)
              if layers.get(b, 0) > layers.get(a, 0)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    edges = _edges()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


TORCH_FREE = ["fer.records", "fer.config", "fer.tasks", "fer.optim", "fer.precision",
              "fer.suite.experiments", "fer.suite.scales", "fer.suite.summary", "fer.bench.*",
              "fer.cli", "fer.cli.*"]


def test_torch_free_modules_import_no_torch_at_module_level():
    edges = _edges(top_level_only=True)
    heavy_direct = {name: {t.split(".")[0] for t, _, inner in _imports(name) if not inner}
                    & {"torch", "torchvision", "timm"} for name in MODULES}

    def pulls_torch(name, seen=()):
        if heavy_direct[name]:
            return [name]
        for target in sorted(edges[name]):
            if target not in seen:
                chain = pulls_torch(target, (*seen, name))
                if chain:
                    return [name, *chain]
        return None

    for name in MODULES:
        if any(fnmatch.fnmatch(name, p) for p in TORCH_FREE):
            chain = pulls_torch(name)
            assert chain is None, f"{' -> '.join(chain)} imports torch at module level"


def _says_why(lines: list[str], i: int) -> bool:
    """Line ``i`` is an import whose reason is on it, or on a line of the block of imports it
    belongs to, or on a comment line just above that block."""
    while i >= 0:
        text = lines[i].strip()
        if "# lazy:" in text:
            return True
        if not text.startswith(("from ", "import ")):
            return False
        i -= 1
    return False


def test_every_import_inside_a_function_says_why():
    unexplained = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        for _target, line, inner in _imports(name):
            if not inner:
                continue
            if not _says_why(lines, line - 1):
                unexplained.append(f"{path.relative_to(ROOT)}:{line}: {lines[line - 1].strip()}")
    assert not unexplained, ("imports inside a function need a `# lazy: <reason>` (or belong "
                             "at the top):\n" + "\n".join(sorted(set(unexplained))))


def test_lazy_imports_are_heavy():
    """A lazy import of something light is an import that belongs at the top."""
    edges = _edges(top_level_only=True)

    def heavy(target, seen=()):
        if target.split(".")[0] in HEAVY:
            return True
        module = _fer_target(target)
        if module is None or module in seen:
            return False
        own = {t.split(".")[0] for t, _, inner in _imports(module) if not inner}
        parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
        return bool(own & HEAVY) or any(heavy(t, (*seen, module))
                                        for t in [*edges[module], *parents] if t != module)

    light = [f"{name}: {target}" for name in MODULES for target, _, inner in _imports(name)
             if inner and target and "." not in target and not heavy(target)
             and target not in ("fer",)]
    light += [f"{name}: {target}" for name in MODULES for target, _, inner in _imports(name)
              if inner and _fer_target(target) and target == _fer_target(target)
              and not heavy(target)]
    assert not light, "light imports inside functions: " + ", ".join(sorted(set(light)))


# ----------------------------------------------- the documented extension points --

def test_the_documented_extension_points_work(tmp_path, monkeypatch, pytester):
    """A toy experiment, its chart, a gated metric and the verdicts, added as the doc says."""
    from fer.bench import charts, render, stats
    from fer.bench.report import render_report
    from fer.bench.storage import load_run
    from fer.suite import experiments
    from fer.suite.experiments import Experiment
    from unit_tests.helpers import make_run

    # an experiment: one registry entry (and a test file calling run_point, below)
    toy = Experiment(name="toy", title="Toy", factor="toy factor", section="toy",
                     grid=({"batch_size": 32}, {"batch_size": 48}), finding="toys are fast")
    monkeypatch.setitem(experiments.EXPERIMENTS, "toy", toy)
    # a chart: a section title and a chart function reading Bench's methods
    monkeypatch.setitem(experiments.SECTIONS, "toy", "Toy section")

    def toy_chart(entries, out):
        path = out / "toy.png"
        path.write_bytes(b"png")
        fastest = min(entries, key=lambda b: min(b.epoch_times()))
        return path, f"{fastest.name} is the fastest toy"

    monkeypatch.setitem(charts.SECTION_CHARTS, "toy", toy_chart)
    # a gated metric: a judge in METRIC_JUDGES
    def judge_epochs(new, olds, options):
        change = len(new.epoch_times()) / len(olds[0].epoch_times()) - 1
        verdict = stats.REGRESSED if change < 0 else stats.UNCHANGED
        return stats.Judgement("epochs", verdict, change, method="count of timed epochs")

    monkeypatch.setitem(stats.METRIC_JUDGES, "epochs", judge_epochs)

    base = make_run(tmp_path / "base.json", {"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0, 2.0]},
                    group="toy")
    fewer = make_run(tmp_path / "new.json", {"a": [1.0, 1.0], "b": [2.0, 2.0, 2.0]}, group="toy")
    report = render_report([base], tmp_path / "report")
    assert report.findings["toy"] == "a is the fastest toy" and "Toy section" in report.markdown
    result = stats.compare(load_run(base), load_run(fewer),
                           stats.GateOptions(gate_on=("time", "epochs")))
    rows = {r.fullname: r for r in result.rows}
    assert rows["t.py::a"].verdict == stats.REGRESSED and "epochs" in rows["t.py::a"].judgements
    assert json.loads(json.dumps(result.to_dict()))["rows"]

    # the experiment's test file, as perf_tests/ holds them, collected by pytest
    pytester.makeconftest('pytest_plugins = ["fer.suite.plugin"]')
    pytester.makepyfile(test_toy="""
        from fer.suite.experiments import EXPERIMENTS, Experiment
        from fer.suite.harness import run_point

        EXPERIMENTS["toy"] = Experiment(name="toy", title="Toy", factor="toy factor",
                                        section="toy", grid=({"batch_size": 32},),
                                        finding="toys are fast")
        EXPERIMENT = EXPERIMENTS["toy"]

        @EXPERIMENT.parametrize()
        def test_toy(benchmark, perf_scale, perf_data, params):
            run_point(benchmark, EXPERIMENT, params, perf_scale, perf_data)
    """)
    result = pytester.runpytest_inprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    assert "test_toy.py::test_toy[32]" in result.stdout.str()

    # a verdict: VERDICTS, _SEVERITY and render's _ICON agree
    assert set(stats.VERDICTS) <= set(stats._SEVERITY) and set(stats.VERDICTS) <= set(render._ICON)


@pytest.mark.slow
def test_a_toy_experiment_runs_through_run_point(monkeypatch):
    """The experiment step end to end: one real (tiny) benchmark of a registered toy."""
    from fer.data import make_synthetic_faces
    from fer.suite import experiments
    from fer.suite.experiments import Experiment
    from fer.suite.harness import run_point
    from fer.suite.scales import resolve_scale

    toy = Experiment(name="toy", title="Toy", factor="toy factor", section="toy",
                     grid=({"batch_size": 32},), finding="toys are fast",
                     step_breakdown_on_cpu=False)
    monkeypatch.setitem(experiments.EXPERIMENTS, "toy", toy)

    from unit_tests.helpers import FakeBenchmark

    bench = FakeBenchmark()
    scale = resolve_scale("smoke", cuda=False, rounds=1)
    run_point(bench, toy, {"batch_size": 32}, scale, make_synthetic_faces(200, seed=0),
              synthetic_size=200)
    assert bench.extra_info["experiment"] == "toy" and bench.group == "toy"
    assert bench.extra_info["config"]["batch_size"] == 32
