"""Run under torchrun by unit_tests/test_parallel.py: one DDP epoch, weights per rank."""

import os
import sys

import torch
import torch.distributed as dist

from fer.config import TrainConfig
from fer.data import make_synthetic_faces
from fer.engine import build_trainer
from fer.parallel import shutdown_distributed

out, mode = sys.argv[1], sys.argv[2]
config = TrainConfig(model="test_efficientnet", device="cpu", parallel="ddp", epochs=1,
                     batch_size=16, synthetic_size=400)
trainer = build_trainer(config, data=make_synthetic_faces(400, seed=0))
if mode == "crash" and dist.get_rank() == 1:
    os._exit(3)  # dies without a word; rank 0 is left waiting in a collective
record = trainer.fit()[0]
params = {name: p.detach() for name, p in trainer.raw_model.named_parameters()}
torch.save({"params": params, "record": record.to_dict()},
           os.path.join(out, f"rank{dist.get_rank()}.pt"))
shutdown_distributed()
