"""The training step: eager, fused optimizer, CUDA graph, torch.compile and compile+graph,
each in fp32 and amp_bf16 (beyond the study).

At 48x48 an EfficientNet step is hundreds of small kernels and the host that launches
them sets the pace; this experiment measures what removes that overhead. Per benchmark,
``extra_info`` holds the host time to issue a step (``records[].host_step_s``) beside the
step time on the device timeline (``records[].step_s``, CUDA events, no per-step sync),
kernels per step (``step_breakdown``), GPU utilisation (``gpu_sampling``) and the compile
and capture seconds (``setup_s``), all kept apart from the timed epochs.
"""

import math

from fer.suite.experiments import EXPERIMENTS, STEP_MODES
from fer.suite.harness import run_point

EXPERIMENT = EXPERIMENTS["step"]


@EXPERIMENT.parametrize()
def test_step(benchmark, perf_scale, perf_data, params):
    records, summary = run_point(benchmark, EXPERIMENT, params, perf_scale, perf_data)
    mode = STEP_MODES[params["mode"]]
    info = benchmark.extra_info
    assert all(math.isfinite(r.loss) for r in records)
    assert all(r.host_step_s and r.host_step_s > 0 for r in records)
    if mode.get("cuda_graph"):
        assert info["setup_s"]["capture_s"] > 0  # recorded apart from the timed epochs
        assert info["graph"]["replays"] > 0
    if mode.get("compile"):
        assert info["setup_s"]["compile_s"] > 0
    assert info["config"]["optimizer_impl"] == mode.get("optimizer_impl", "auto")
