"""One side of ``fer ab``: a live process that trains one benchmark point an epoch at a time.

``fer ab`` (:mod:`fer.suite.ab`) starts two of these, one per side, each with its side's
checkout first on ``sys.path`` so that ``import fer`` is *that* side's code, and alternates
single epochs between them. This file is run by its path (never imported by fer): it uses only
the side's public suite API (``fer.suite.experiments``, ``fer.suite.harness``,
``fer.suite.scales``, ``fer.engine``) and, loaded by path from the driver's checkout so that
both sides are measured by the same code, :mod:`fer.counters` and :mod:`fer.suite.load`.

The protocol: one JSON object a line on stdin, one answer a line on the original stdout
(everything else the side prints goes to stderr):

* ``{"op": "hello"}`` -> where ``fer`` was imported from, torch's version
* ``{"op": "skips", "points", "scale"}`` -> why this machine cannot run each point, or None
* ``{"op": "load", "experiment", "params", "scale", "threads"}`` -> builds the trainer of
  that grid point and trains one warm-up epoch; ``{"skip": reason}`` where this machine
  cannot run it
* ``{"op": "epoch"}`` -> trains the next epoch: its record, and other processes' CPU share
  during it
* ``{"op": "count"}`` -> the exact counters (``fer.counters``); ``{"op": "breakdown"}`` ->
  the profiled step breakdown
* ``{"op": "quit"}``
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback

import torch

import fer
from fer.data import make_synthetic_faces
from fer.data.pose import make_synthetic_poses, parse_pose_size
from fer.engine import build_trainer
from fer.profiling import step_breakdown
from fer.suite import harness
from fer.suite.experiments import EXPERIMENTS
from fer.suite.scales import resolve_scale


def _load_by_path(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Side:
    def __init__(self) -> None:
        self.trainer = None
        self.driver = os.environ["FER_AB_DRIVER"]  # the driver's fer package folder
        self.counters = _load_by_path("fer_ab_counters", os.path.join(self.driver, "counters.py"))
        self.load_module = _load_by_path("fer_ab_load", os.path.join(self.driver, "suite",
                                                                     "load.py"))
        self.gpu = _load_by_path("fer_ab_gpu", os.path.join(self.driver, "gpu.py"))

    def hello(self, msg: dict) -> dict:
        return {"fer": os.path.dirname(os.path.abspath(fer.__file__)), "torch": torch.__version__,
                "python": sys.version.split()[0]}

    def skips(self, msg: dict) -> dict:
        """Why this machine cannot run each of ``points`` ([name, experiment, params]), or
        None: asked once, so that no worker is started for a point that would be skipped."""
        scale = resolve_scale(msg["scale"], cuda=torch.cuda.is_available())
        return {"skips": {name: harness.skip_reason(EXPERIMENTS[experiment], params, scale)
                          if experiment in EXPERIMENTS else f"this side has no {experiment} "
                          "experiment" for name, experiment, params in msg["points"]}}

    def load(self, msg: dict) -> dict:
        if msg.get("threads"):
            torch.set_num_threads(int(msg["threads"]))
        self.close_trainer()
        experiment = EXPERIMENTS[msg["experiment"]]
        scale = resolve_scale(msg["scale"], cuda=torch.cuda.is_available())
        params = msg["params"]
        reason = harness.skip_reason(experiment, params, scale)
        if reason:
            return {"skip": reason}
        config = harness.point_config(experiment, params, scale)
        if experiment.task == "pose":
            data = make_synthetic_poses(scale.pose_images,
                                        input_size=parse_pose_size(scale.pose_size), seed=0)
        else:
            data = make_synthetic_faces(scale.synthetic_size, seed=0)
        self.trainer = build_trainer(config, data=data)
        self.sampler = self.load_module.LoadSampler()
        warmup = self.trainer.train_epoch()
        cuda = self.trainer.device.type == "cuda"
        return {"config": config.to_dict(), "warmup": warmup.to_dict(),
                "device": str(self.trainer.device),
                "gpus": self.gpu.gpu_facts().get("gpu_uuids") if cuda else None}

    def epoch(self, msg: dict) -> dict:
        # on a GPU, NVML's clocks and throttle reasons during the epoch (a thread sampling
        # every 0.2 s); nothing on a CPU
        gpu = self.gpu.UtilizationSampler(self.trainer.device)
        self.sampler.mark()
        with gpu:
            start = time.perf_counter()
            record = self.trainer.train_epoch()
            call = time.perf_counter() - start  # the whole call: work after the timed loop too
        share = self.sampler.mark()
        mode = getattr(self.trainer, "step_mode", None)  # the step that ran (fallbacks)
        out = dict(record.to_dict(), call_s=call)
        sampled = gpu.summary()
        if sampled:
            out["gpu_sampling"] = sampled
        return {"record": out, "others_share": share,
                "ran": mode["ran"] if isinstance(mode, dict) else None}

    def count(self, msg: dict) -> dict:
        return {"counters": self.counters.count_steps(self.trainer)}

    def breakdown(self, msg: dict) -> dict:
        return {"step_breakdown": step_breakdown(self.trainer)}

    def close_trainer(self) -> None:
        if self.trainer is not None:
            loader = getattr(self.trainer, "train_loader", None)
            close = getattr(loader, "close", None)
            if callable(close):
                close()
            self.trainer = None


def main() -> int:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the side prints goes to stderr, never into the protocol
    sys.stdout = sys.stderr
    side = None
    for line in sys.stdin:
        msg = json.loads(line)
        op = msg.get("op")
        if op == "quit":
            break
        try:
            side = side or Side()
            answer = getattr(side, op)(msg)
        except Exception as exc:  # the driver reports it with the side's traceback
            answer = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        protocol.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
