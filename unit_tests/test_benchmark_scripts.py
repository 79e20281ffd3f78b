"""The measurement scripts under benchmarks/ run, at a tiny size, and report what they claim."""

import importlib.util
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_peer_timm_compares_fer_with_a_bare_timm_loop(tmp_path, capsys):
    peer = _load("peer_timm")
    out = tmp_path / "peer.json"
    assert peer.main(["--device", "cpu", "--model", "test_efficientnet", "--steps", "3",
                      "--warmup", "1", "--repeats", "2", "--batch-size", "16",
                      "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["peer_images_per_s"]) == len(result["fer_images_per_s"]) == 2
    assert result["ratio"] == result["fer_median"] / result["peer_median"] > 0
    assert "fer/peer" in capsys.readouterr().out


def test_gate_power_splits_common_from_specific_noise():
    gate_power = _load("gate_power")

    class Run:  # just what common_and_specific reads
        def __init__(self, levels):
            self.benchmarks = {f"b{i}": level for i, level in enumerate(levels)}

    # three runs x three benchmarks: each run shifted as a whole (+0.1, 0, -0.1), nothing else
    runs = [Run([math.exp(s + b) for b in (0.0, 0.5, 1.0)]) for s in (0.1, 0.0, -0.1)]
    common, specific = gate_power.common_and_specific(runs, lambda t: [t], calibrated=False)
    assert math.isclose(common, 0.1) and specific < 1e-12


def _trial(path: Path, epoch_factor: float, seed: int) -> None:
    """A stored `fer ab` trial of 8 benchmarks x 8 pairs: the typical step unchanged (noise
    0.5% a pair), the whole epoch ``epoch_factor`` times B's typical step over A's."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(8):
        pairs = []
        for j in range(8):
            step = 0.08 * (1 + i / 10)
            b_step = step * math.exp(rng.gauss(0, 0.005))
            a = {"wall_s": 10 * step * 1.05, "steps": 10, "step_s": {"q25": step}}
            b = {"wall_s": 10 * b_step * 1.05 * epoch_factor * math.exp(rng.gauss(0, 0.005)),
                 "steps": 10, "step_s": {"q25": b_step}}
            pairs.append({"a": a, "b": b, "order": "AB" if j % 4 in (0, 3) else "BA",
                          "proc": j % 2})
        rows.append({"fullname": f"test_optimizer[o{i}]", "name": f"o{i}", "verdict": "unknown",
                     "pairs": pairs, "disturbed_pairs": 0, "counters": {"verdict": "unchanged"}})
    path.write_text(json.dumps({"options": {"threshold": 0.05, "confidence": 0.95},
                                "rows": rows}))


def test_ab_power_judges_stored_trials_again_by_today_s_statistics(tmp_path):
    """The stored pairs of an A/A and of a +15% stall, judged again: the stall regressed on
    every benchmark and the run's whole epoch and excess; the A/A flagged nowhere."""
    ab_power = _load("ab_power")
    (tmp_path / "ab").mkdir()
    _trial(tmp_path / "ab" / "aa-0.json", 1.0, seed=1)
    _trial(tmp_path / "ab" / "stall8-0.json", 1.15, seed=2)
    lines = ab_power.summarize_rejudged(tmp_path)
    aa = next(line for line in lines if line.startswith("| aa |"))
    stall = next(line for line in lines if line.startswith("| stall8 |"))
    assert aa.startswith("| aa | 1 | 0 / 0 / 0 of 1 | 0% (0-0%) |") and aa.endswith("| 0/1 |")
    assert stall.startswith("| stall8 | 1 | 0 / 1 / 1 of 1 | 100% (100-100%) |"), stall
