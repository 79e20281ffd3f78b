"""fer.gpu: quiet without GPUs, real facts and samples with one."""

import re

import pytest
import torch

from fer.gpu import UtilizationSampler, gpu_info, hardware_class, software_info

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_hardware_class_is_folder_safe():
    name = hardware_class()
    assert re.fullmatch(r"[A-Za-z0-9.+_-]+", name)
    assert hardware_class({"gpu_count": 2, "gpu_name": "NVIDIA H100 80GB HBM3"}) == \
        "NVIDIA_H100_80GB_HBM3-x2"
    assert hardware_class({}).startswith("cpu-")


def test_software_info():
    info = software_info()
    assert info["torch"] == torch.__version__ and "timm" in info


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_quiet_without_gpus():
    assert "gpu_name" not in gpu_info()
    with UtilizationSampler("cpu") as s:
        pass
    assert s.summary() == {}


@needs_cuda
@pytest.mark.gpu
def test_gpu_facts_and_sampling():
    info = gpu_info()
    assert info["gpu_count"] >= 1 and info["gpu_name"]
    assert info["cuda_runtime"] and info["cudnn"]
    x = torch.randn(4096, 4096, device="cuda")
    with UtilizationSampler("cuda", interval_s=0.05) as s:
        for _ in range(200):
            x = x @ x
            x = x / x.norm()
        torch.cuda.synchronize()
    summary = s.summary()
    assert summary["gpu_samples"] >= 1 and summary["gpu_mem_used_max_bytes"] > 0


@needs_cuda
@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "amp_fp16", "amp_bf16"])
@pytest.mark.parametrize("loader", ["device", "dataloader"])
def test_engine_on_cuda(precision, loader):
    from fer.config import TrainConfig
    from fer.data import make_synthetic_faces
    from fer.engine import build_trainer

    data = make_synthetic_faces(400, seed=0)
    config = TrainConfig(model="test_efficientnet", device="cuda", precision=precision,
                         loader=loader, num_workers=2 if loader == "dataloader" else 0,
                         epochs=2, batch_size=32, channels_last=True)
    records = build_trainer(config, data=data).fit()
    assert records[-1].peak_mem_kind == "cuda_max_allocated"
    assert records[-1].peak_mem_bytes > 0 and records[-1].images == 320


@needs_cuda
@pytest.mark.gpu
def test_dataparallel_on_one_gpu():
    from fer.config import TrainConfig
    from fer.data import make_synthetic_faces
    from fer.engine import build_trainer

    data = make_synthetic_faces(200, seed=0)
    config = TrainConfig(model="test_efficientnet", device="cuda", parallel="dp", devices=1,
                         epochs=1, batch_size=32)
    trainer = build_trainer(config, data=data)
    assert isinstance(trainer.model, torch.nn.DataParallel)
    assert trainer.fit()[0].images == 160
