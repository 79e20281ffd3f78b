"""The measurement scripts under benchmarks/ run, at a tiny size, and report what they claim."""

import importlib.util
import json
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
    import math

    runs = [Run([math.exp(s + b) for b in (0.0, 0.5, 1.0)]) for s in (0.1, 0.0, -0.1)]
    common, specific = gate_power.common_and_specific(runs, lambda t: [t], calibrated=False)
    assert math.isclose(common, 0.1) and specific < 1e-12
