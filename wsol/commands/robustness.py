"""``wsol robustness``: FGSM and occlusion robustness of one or more checkpoints."""

from __future__ import annotations

import argparse
import math

from wsol.commands._common import (
    UniqueValues,
    add_data_arguments,
    add_label_subset_argument,
    add_model_arguments,
    add_runtime_arguments,
    model_options,
    parse_fraction,
    positive_int,
)
from wsol.jobs.robustness import DEFAULT_EPS, DEFAULT_STEPS

HELP = "top-1 accuracy under FGSM attack or centre/boundary occlusion (CutMix paper Table 11, Fig. 5a)"
DESCRIPTION = (
    HELP
    + """

FGSM: a single white-box step on the true label; --eps is in [0,1] pixel units (8/255 allowed),
applied before ImageNet normalization, adversarial images clamped to [0,1].
Occlusion: a centred square of side 0 ... image side is zeroed (center) or everything outside it is
zeroed (boundary); accuracy against side is plotted for all checkpoints in one figure.

Examples:
  wsol robustness --checkpoint base.pt --checkpoint cutmix.pt --attack fgsm --eps 8/255 \\
      --dataset synthetic --data-root data/synth --out runs/robust
  wsol robustness --checkpoint base.pt --checkpoint cutmix.pt --occlusion center \\
      --dataset synthetic --data-root data/synth --out runs/occl
"""
)


def eps_value(text: str) -> float:
    """argparse type of ``--eps``: a number or a fraction like ``8/255``, finite and in [0, 1]
    (pixel units; the range :func:`wsol.robustness.fgsm_images` accepts)."""
    value = parse_fraction(text)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be in [0, 1] pixel units (e.g. 8/255), got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", action="append", required=True, help="checkpoint file (repeat for several)")
    add_model_arguments(parser)
    parser.add_argument(
        "--names", nargs="+", action=UniqueValues, default=None, help="display names, one per checkpoint"
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--attack", choices=["fgsm"], help="adversarial attack")
    what.add_argument("--occlusion", choices=["center", "boundary"], help="occlusion sweep")
    parser.add_argument(
        "--eps",
        type=eps_value,
        default=DEFAULT_EPS,
        help="--attack fgsm only: step in [0,1] pixel units (default 8/255)",
    )
    parser.add_argument(
        "--steps",
        type=positive_int,
        default=DEFAULT_STEPS,
        help="--occlusion only: number of side steps from 0 to the image side (default: %(default)s)",
    )
    add_data_arguments(parser)
    add_label_subset_argument(parser)
    add_runtime_arguments(parser)
    parser.add_argument("--out", required=True, help="output folder (robustness.json, and the occlusion figure)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing results")


def run(args: argparse.Namespace) -> int:
    from wsol.jobs.robustness import RobustnessConfig, run_robustness

    cfg = RobustnessConfig(
        checkpoints=list(args.checkpoint),
        names=args.names,
        arch=args.arch,
        arch_options=model_options(args),
        attack=args.attack,
        eps=args.eps,
        occlusion=args.occlusion,
        steps=args.steps,
        dataset=args.dataset,
        data_root=args.data_root,
        metadata_dir=args.metadata_dir,
        split=args.split,
        preset=args.preset,
        label_subset=args.label_subset,
        batch_size=args.batch_size,
        device=args.device,
        workers=args.workers,
        out=args.out,
        overwrite=args.overwrite,
    )
    result = run_robustness(cfg)
    for row in result["models"]:
        if "fgsm_top1" in row:
            print(
                f"{row['name']:<20} clean top-1 {row['clean_top1']:6.2f}  "
                f"FGSM(eps={row['eps']:.4f}) top-1 {row['fgsm_top1']:6.2f}"
            )
        else:
            cells = "  ".join(f"{s}:{a:.1f}" for s, a in zip(row["sides"], row["top1"]))
            print(f"{row['name']:<20} {row['mode']} occlusion top-1 by side  {cells}")
    print(result["note"])
    return 0
