"""Engine overhead: the engine's epoch throughput against a bare training loop.

Both train the same model (same initial weights) with the same optimizer,
precision and batch size, drawing batches from identical device-resident
loaders (same data, same augmentation), in one process on one machine. The
bare loop is the minimum a training epoch needs: forward, loss, backward,
step. The engine adds what it measures (data-wait split, loss and accuracy
sums, skipped-step and NaN checks). Epochs alternate bare/engine to cancel
drift; medians are compared.

    python benchmarks/engine_bench.py [--model efficientnet_b0] [--images 1280] [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch

from fer import timing
from fer.config import TrainConfig
from fer.data import make_loader, make_synthetic_faces
from fer.engine import build_trainer, resolve_device


def bare_epoch(model, optimizer, loader, device, precision) -> float:
    """images/s of the plainest possible epoch."""
    criterion = torch.nn.CrossEntropyLoss()
    scaler = precision.scaler
    model.train()
    n = 0
    start = timing.now(device)
    for inputs, targets in loader:
        with precision.autocast():
            loss = criterion(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        n += len(inputs)
    return n / (timing.now(device) - start)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="efficientnet_b0")
    p.add_argument("--images", type=int, default=1280, help="training images per epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", default="adam")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--device", default="auto")
    p.add_argument("--repeats", type=int, default=5, help="timed epochs of each; medians compared")
    p.add_argument("--check", action="store_true", help="exit 1 below 0.97 of the bare loop")
    args = p.parse_args(argv)

    device = resolve_device(args.device)
    data = make_synthetic_faces(args.images, seed=0, split_fractions=(1.0, 0.0))
    config = TrainConfig(model=args.model, device=str(device), batch_size=args.batch_size,
                         optimizer=args.optimizer, precision=args.precision, loader="device",
                         epochs=args.repeats + 1, synthetic_size=args.images)
    trainer = build_trainer(config, data=data)
    bare_model = copy.deepcopy(trainer.raw_model)
    bare_opt = type(trainer.optimizer)(bare_model.parameters(), **trainer.optimizer.defaults)
    bare_loader = make_loader(data.split("train"), batch_size=args.batch_size, train=True,
                              loader="device", device=device, seed=0)
    print(f"{args.model}, batch {args.batch_size}, {args.optimizer}, {args.precision}, "
          f"{device}, {len(data)} images/epoch, torch {torch.__version__}")

    # one warm-up epoch each (allocator, cuDNN autotuning, first-touch)
    bare_epoch(bare_model, bare_opt, bare_loader, device, trainer.precision)
    trainer.train_epoch()  # advances the epoch itself
    bare, engine = [], []
    for i in range(args.repeats):
        bare.append(bare_epoch(bare_model, bare_opt, bare_loader, device, trainer.precision))
        engine.append(trainer.train_epoch().images_per_s)
        print(f"  round {i + 1}: bare {bare[-1]:8.1f} img/s   engine {engine[-1]:8.1f} img/s")
    ratio = statistics.median(engine) / statistics.median(bare)
    print(f"median: bare {statistics.median(bare):.1f} img/s, engine "
          f"{statistics.median(engine):.1f} img/s -> engine/bare = {ratio:.3f} (target >= 0.97)")
    if args.check and ratio < 0.97:
        return 1
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - start:.0f} s)")
    sys.exit(code)
