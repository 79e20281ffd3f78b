"""fer's training throughput against a bare timm training loop on synthetic tensors.

The peer is what timm's ``benchmark.py --bench train`` measures: a timm model, one
fixed batch of random tensors already on the device, and a loop of zero_grad,
forward (under autocast), loss, backward and optimizer step, timed after a
warm-up with the device synchronised. timm's script lives in its repository, not
in the installed package, so this is our own loop written to do the same work
(same model, input shape, batch, precision and optimizer as the fer run); it
is the ceiling for a step with no data path and no metrics.

fer's side is ``fer train``'s engine exactly as a user runs it: the
device-resident loader with its augmentation, the loss and accuracy summed on
the device, the per-step clock. Both sides run alternately (A/B, ``--repeats``
times each) in one process on one device; the script prints each side's median
images/s, the spread of the repeats, and the ratio fer / peer (the issue's
target is >= 0.95).

    python benchmarks/peer_timm.py --device cuda --model efficientnet_b0 --precision fp32
    python benchmarks/peer_timm.py --device cuda --cuda-graph --out peer.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peer_loop(model_name: str, *, device: str, batch: int, channels: int, size: int,
              precision: str, steps: int, warmup: int) -> float:
    """images/s of the bare loop (timm's --bench train, on fer's input shape)."""
    import timm
    import torch

    from fer.optim import create_optimizer
    from fer.precision import resolve_precision

    torch.manual_seed(0)
    model = timm.create_model(model_name, num_classes=7, in_chans=channels).to(device).train()
    optimizer = create_optimizer(model, "adam")
    prec = resolve_precision(precision, device)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch, channels, size, size, device=device)
    y = torch.randint(0, 7, (batch,), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with prec.autocast():
            loss = loss_fn(model(x), y)
        prec.backward_and_step(loss, optimizer)

    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def fer_epoch(model_name: str, *, device: str, batch: int, channels: int, size: int,
              precision: str, steps: int, warmup: int, cuda_graph: bool,
              optimizer_impl: str) -> float:
    """images/s of fer's engine: one warm-up epoch, then one timed epoch of ``steps``."""
    from fer.config import TrainConfig
    from fer.data import make_synthetic_faces
    from fer.engine import build_trainer

    images = int((steps + 1) * batch / 0.8) + batch  # 80% train
    config = TrainConfig(model=model_name, device=device, batch_size=batch, epochs=2,
                         synthetic_size=images, precision=precision, channels=channels,
                         image_size=size, loader="device", max_steps_per_epoch=steps,
                         cuda_graph=cuda_graph, optimizer_impl=optimizer_impl, run_dir="none")
    trainer = build_trainer(config, data=make_synthetic_faces(images, seed=0))
    trainer.steps_per_epoch = max(warmup, 1)
    trainer.train_epoch()  # warm-up (and capture): untimed
    trainer.steps_per_epoch = steps
    record = trainer.train_epoch()
    return record.images_per_s


def spread(xs: list[float]) -> float:
    """(max - min) / median: the spread of the repeats."""
    return (max(xs) - min(xs)) / statistics.median(xs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--model", default="efficientnet_b0")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--precision", default="fp32", choices=("fp32", "amp_fp16", "amp_bf16"))
    p.add_argument("--image-size", type=int, default=48)
    p.add_argument("--channels", type=int, default=1, choices=(1, 3))
    p.add_argument("--steps", type=int, default=200, help="timed steps per repeat")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    p.add_argument("--repeats", type=int, default=3, help="A/B repeats (alternating)")
    p.add_argument("--cuda-graph", action="store_true", help="fer's graphed step")
    p.add_argument("--optimizer-impl", default="auto")
    p.add_argument("--out", help="write the figures as JSON here")
    args = p.parse_args(argv)
    common = dict(device=args.device, batch=args.batch_size, channels=args.channels,
                  size=args.image_size, precision=args.precision, steps=args.steps,
                  warmup=args.warmup)
    peer, ours = [], []
    for _ in range(args.repeats):  # alternating, so that a drift hits both alike
        peer.append(peer_loop(args.model, **common))
        ours.append(fer_epoch(args.model, cuda_graph=args.cuda_graph,
                              optimizer_impl=args.optimizer_impl, **common))
    med_peer, med_ours = statistics.median(peer), statistics.median(ours)
    result = {
        "model": args.model, "device": args.device, "batch_size": args.batch_size,
        "precision": args.precision, "input": [args.channels, args.image_size, args.image_size],
        "cuda_graph": args.cuda_graph, "optimizer_impl": args.optimizer_impl,
        "peer_images_per_s": peer, "fer_images_per_s": ours,
        "peer_median": med_peer, "fer_median": med_ours, "ratio": med_ours / med_peer,
        "peer": "a bare timm train loop on synthetic tensors (timm benchmark.py --bench train)",
    }
    print(f"{args.model} {args.precision} batch {args.batch_size} on {args.device}"
          f"{' (fer: --cuda-graph)' if args.cuda_graph else ''}: peer {med_peer:,.0f} img/s "
          f"(spread {100 * spread(peer):.1f}%), fer {med_ours:,.0f} img/s (spread "
          f"{100 * spread(ours):.1f}%), fer/peer {result['ratio']:.3f}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    from fer.errors import FERError

    try:
        sys.exit(main())
    except FERError as exc:  # a flag combination fer refuses: one line, exit 2
        print(f"peer_timm.py: {exc}", file=sys.stderr)
        sys.exit(2)
