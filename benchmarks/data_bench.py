"""Data-layer benchmark: parse speed, cache speed and loader throughput.

Measures, in one run on one machine, ours against the reference:

1. first parse of a full-size (35,887-row) fer2013.csv: ``fer``'s vectorised
   reader vs torchvision's ``FER2013`` parse loop (train + test splits; its md5
   check of the official file is bypassed, the parse itself is torchvision's);
2. a cached second load of the same file;
3. training-loader throughput at the same augmentations: the DataLoader path
   with ``--workers`` workers vs the device-resident path.

Prints medians and ratios; ``--check`` exits 1 if a target is missed
(parse >= 5x torchvision, cached load <= 0.2 s, device path >= 10x).

    python benchmarks/data_bench.py [--rows 35887] [--repeats 3] [--check]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from fer.data import LoaderOptions, make_loader, make_synthetic_faces, read_fer2013_csv
from fer.data.export import write_fer2013_csv


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torchvision_parse(root: Path) -> int:
    """torchvision's FER2013 parse of both splits, with its md5 check bypassed."""
    import torchvision.datasets.fer2013 as tv_fer

    real_check = tv_fer.check_integrity
    tv_fer.check_integrity = lambda *a, **k: True
    try:
        train = tv_fer.FER2013(str(root), split="train")
        test = tv_fer.FER2013(str(root), split="test")
    finally:
        tv_fer.check_integrity = real_check
    return len(train) + len(test)


def loader_throughput(data, loader: str, batch_size: int, workers: int, epochs: int) -> float:
    """Median images/s over ``epochs`` full passes (after one warm-up pass)."""
    if loader == "device":
        options = LoaderOptions(kind="device", seed=0)
    else:
        options = LoaderOptions(kind=loader, num_workers=workers,
                                persistent_workers=workers > 0, seed=0)
    it = make_loader(data, batch_size=batch_size, train=True, options=options)
    rates = []
    for epoch in range(epochs + 1):
        it.set_epoch(epoch)
        start = time.perf_counter()
        n = sum(len(x) for x, _ in it)
        if epoch:  # the first pass warms workers and caches
            rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=35887, help="rows of the CSV (FER2013: 35887)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats; medians reported")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers to compare with")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--loader-images", type=int, default=20000, help="images per loader epoch")
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = p.parse_args(argv)

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, threads {torch.get_num_threads()}")
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FER_CACHE_DIR"] = str(Path(tmp) / "cache")
        root = Path(tmp)
        (root / "fer2013").mkdir()
        csv_path = root / "fer2013" / "fer2013.csv"
        data = make_synthetic_faces(args.rows, seed=0)
        write_fer2013_csv(data, csv_path)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"\n[parse] {args.rows} rows, {size_mb:.0f} MB")

        ours = _median_time(lambda: read_fer2013_csv(csv_path, cache=False), args.repeats)
        theirs = _median_time(lambda: torchvision_parse(root), args.repeats)
        ratio = theirs / ours
        print(f"  torchvision FER2013 parse  {theirs:8.3f} s (median of {args.repeats})")
        print(f"  fer first parse            {ours:8.3f} s   -> {ratio:.1f}x faster (target >= 5x)")
        if ratio < 5:
            failures.append(f"parse speed-up {ratio:.1f}x < 5x")

        read_fer2013_csv(csv_path)  # writes the cache
        cached = _median_time(lambda: read_fer2013_csv(csv_path), max(args.repeats, 5))
        print(f"  fer cached load            {cached:8.3f} s   (target <= 0.2 s)")
        if cached > 0.2:
            failures.append(f"cached load {cached:.3f} s > 0.2 s")

    train = make_synthetic_faces(args.loader_images, seed=1, split_fractions=(1.0, 0.0))
    print(f"\n[loaders] {args.loader_images} images, batch {args.batch_size}, "
          "crop+flip+normalise")
    slow = loader_throughput(train, "dataloader", args.batch_size, args.workers, args.repeats)
    fast = loader_throughput(train, "device", args.batch_size, 0, args.repeats)
    ratio = fast / slow
    print(f"  DataLoader, {args.workers} workers         {slow:10.0f} images/s (median)")
    print(f"  device-resident (cpu)          {fast:10.0f} images/s (median) "
          f"-> {ratio:.1f}x (target >= 10x)")
    if ratio < 10:
        failures.append(f"device loader {ratio:.1f}x < 10x")

    if failures:
        print("\nMISSED: " + "; ".join(failures))
        return 1 if args.check else 0
    print("\nall targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
