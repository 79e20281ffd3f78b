"""`fer profile`: the study's train-profile.py — torch.profiler over real training steps."""

from __future__ import annotations

import argparse
import logging

from fer.atomic import check_output_path
from fer.cli.args import (
    HelpFormatter,
    add_config_flags,
    config_from_args,
    non_negative_int,
    positive_int,
)

log = logging.getLogger("fer.profile")


def cmd_profile(args: argparse.Namespace) -> int:
    from fer.engine import build_trainer  # lazy: torch: every fer command imports this module
    from fer.profiling import format_summary, profile_training

    config = config_from_args(args)
    if args.out:  # checked before any work: the profile is never lost at the end
        check_output_path(args.out, "--out", folder=True)
    trainer = build_trainer(config)
    log.info("profiling %s on %s: %d wait + %d warm-up + %d active steps, batch %d, %s",
             trainer.model_name, trainer.device, args.wait, args.warmup, args.steps,
             trainer.global_batch, config.precision)
    summary = profile_training(trainer, steps=args.steps, wait=args.wait, warmup=args.warmup,
                               out_dir=args.out, with_stack=args.with_stack, top=args.top,
                               tensorboard=args.tensorboard)
    print(format_summary(summary))
    if args.out:
        print(f"\nwrote {args.out}/profile.json (the summary above, as JSON)")
        if "chrome" in summary.traces:
            print(f"wrote {summary.traces['chrome']}: open https://ui.perfetto.dev and drop the "
                  "file in (or chrome://tracing); the ranges data_wait, forward, backward and "
                  "optimizer_step show fer's split of each ProfilerStep")
        if "tensorboard" in summary.traces:
            print(f"wrote {summary.traces['tensorboard']}/: pip install tensorboard "
                  f"torch-tb-profiler, then tensorboard --logdir {summary.traces['tensorboard']}")
    return 0


def register(sub, full: bool = True) -> None:
    p = sub.add_parser(
        "profile", help="profile training steps with torch.profiler (the study's train-profile.py)",
        description="Run real training steps under torch.profiler and print where the time "
                    "goes: the top ops and the share of each op category (convolution, batch "
                    "norm, activation, elementwise, pooling/linear, optimizer, data copy). "
                    "Takes every `fer train` flag.",
        formatter_class=HelpFormatter)
    g = p.add_argument_group("profiler")
    g.add_argument("--steps", type=positive_int, default=10, help="active (recorded) steps")
    g.add_argument("--wait", type=non_negative_int, default=1, help="steps skipped before recording")
    g.add_argument("--warmup", type=non_negative_int, default=2, help="steps traced but discarded")
    g.add_argument("--out", default="profile", metavar="DIR",
                   help="folder for profile.json and the trace")
    g.add_argument("--tensorboard", action="store_true",
                   help="write the trace in TensorBoard's layout (tensorboard/) instead of "
                        "trace.json")
    g.add_argument("--with-stack", action="store_true", help="record Python stacks (slower)")
    g.add_argument("--top", type=positive_int, default=15, help="ops in the table")
    if full:
        add_config_flags(p, "profile")
    p.set_defaults(func=cmd_profile)
