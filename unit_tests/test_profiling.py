"""Profiler: the category map, a real CPU profile, the trace files, the CLI."""

import json
import math

import pytest

from fer.cli import main
from fer.config import TrainConfig
from fer.data import make_synthetic_faces
from fer.engine import build_trainer
from fer.profiling import CATEGORIES, categorize, profile_training

KNOWN = {
    # convolutions: aten, cuDNN, oneDNN/mkldnn, depthwise, autograd nodes, kernels
    "aten::conv2d": "convolution",
    "aten::convolution": "convolution",
    "aten::cudnn_convolution": "convolution",
    "aten::mkldnn_convolution": "convolution",
    "aten::convolution_backward": "convolution",
    "aten::_conv_depthwise2d": "convolution",
    "autograd::engine::evaluate_function: ConvolutionBackward0": "convolution",
    "sm90_xmma_fprop_implicit_gemm_f32f32_tf32f32_f32_nhwckrsc_nhwc": "convolution",
    "void conv2d_c1_k1_nhwc_kernel<float>": "convolution",
    # batch norm
    "aten::batch_norm": "batch_norm",
    "aten::native_batch_norm_backward": "batch_norm",
    "aten::cudnn_batch_norm": "batch_norm",
    "void cudnn::bn_fw_tr_1C11_kernel_NCHW<float>": "batch_norm",
    # activations
    "aten::silu_": "activation",
    "aten::silu_backward": "activation",
    "aten::sigmoid": "activation",
    "aten::relu": "activation",
    # elementwise
    "aten::add_": "elementwise",
    "aten::mul": "elementwise",
    "aten::div_": "elementwise",
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>":
        "elementwise",
    # pooling / linear
    "aten::adaptive_avg_pool2d": "pooling_linear",
    "aten::mean": "pooling_linear",
    "aten::addmm": "pooling_linear",
    "aten::linear": "pooling_linear",
    # optimizer
    "Optimizer.step#Adam.step": "optimizer",
    "aten::_foreach_add_": "optimizer",
    "aten::_foreach_addcdiv_": "optimizer",
    "aten::_fused_adam_": "optimizer",
    "void at::native::(anonymous namespace)::multi_tensor_apply_kernel": "optimizer",
    # host/device copies
    "aten::copy_": "data_copy",
    "aten::to": "data_copy",
    "aten::_to_copy": "data_copy",
    "Memcpy HtoD (Pageable -> Device)": "data_copy",
    "Memcpy DtoH (Device -> Pinned)": "data_copy",
    # the rest
    "ProfilerStep#3": "other",
    "aten::empty": "other",
}


@pytest.mark.parametrize("name,category", sorted(KNOWN.items()))
def test_category_map(name, category):
    assert categorize(name) == category


@pytest.fixture(scope="module")
def cpu_profile(tmp_path_factory):
    out = tmp_path_factory.mktemp("profile")
    data = make_synthetic_faces(300, seed=0)
    trainer = build_trainer(TrainConfig(model="test_efficientnet", device="cpu", batch_size=16,
                                  synthetic_size=300), data=data)
    return profile_training(trainer, steps=3, wait=1, warmup=1, out_dir=out), out


def test_real_cpu_profile_shares(cpu_profile):
    summary, _ = cpu_profile
    assert set(summary.categories) == set(CATEGORIES)
    assert math.isclose(sum(summary.categories.values()), 1.0, rel_tol=1e-9)
    assert summary.categories["convolution"] > 0
    assert summary.dominant_category == max(summary.categories, key=summary.categories.get)
    assert summary.time_basis == "cpu" and summary.total_time_us > 0
    assert summary.profiled_steps == 5 and summary.profiled_wall_s > 0
    assert summary.top_ops and summary.top_ops[0].self_time_us >= summary.top_ops[-1].self_time_us
    assert summary.peak_memory_bytes > 0


def test_trace_files(cpu_profile):
    summary, out = cpu_profile
    trace = json.loads((out / "trace.json").read_text())
    assert trace["traceEvents"]
    assert not (out / "tensorboard").exists()  # one trace on disk, not two copies
    # fer's own split of each step is a labelled range in the trace (Perfetto shows it)
    names = {e.get("name") for e in trace["traceEvents"]}
    assert {"data_wait", "forward", "backward", "optimizer_step"} <= names
    assert summary.ops_per_step > 0 and summary.host_ms_per_step > 0
    saved = json.loads((out / "profile.json").read_text())
    assert saved["fer_profile"] == 1
    assert saved["categories"] == summary.categories
    assert {"top_ops", "top_allocating_ops", "dominant_category", "steps"} <= set(saved)


def test_cli_profile_prints_table(tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["profile", "--steps", "2", "--wait", "0", "--warmup", "1",
                 "--synthetic-size", "200", "--batch-size", "16", "--model", "test_efficientnet",
                 "--device", "cpu", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "time by category" in text and "convolution" in text and "dominant:" in text
    assert "time per step:" in text and "ui.perfetto.dev" in text  # and how to open the trace
    assert (out / "profile.json").is_file()


@pytest.mark.slow
def test_cli_profile_is_quiet_on_a_cpu_box(tmp_path):
    """The profiler's native log lines (kineto's profiler_start, gpuGetDeviceCount on a CPU
    box) do not reach the user's terminal."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "fer", "profile", "--steps", "1", "--wait", "0", "--warmup", "0",
         "--synthetic-size", "100", "--batch-size", "8", "--model", "test_efficientnet",
         "--device", "cpu", "--out", str(tmp_path / "p")], capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for noise in ("profiler_start", "profiler_stop", "gpuGetDeviceCount"):
        assert noise not in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize("flag,value", [("--steps", "0"), ("--top", "-3"), ("--wait", "-1")])
def test_cli_profile_bad_numbers_are_one_line_exit_2(capsys, flag, value):
    with pytest.raises(SystemExit) as exc:
        main(["profile", flag, value, "--synthetic-size", "100", "--device", "cpu"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: '{value}' must be >=" in err and err.count("\n") == 1
