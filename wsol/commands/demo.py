"""``wsol demo``: the embedded end-to-end job (what ``make demo`` runs)."""

from __future__ import annotations

import argparse

from wsol.commands._common import positive_int

HELP = "synthetic benchmark -> train baseline/Cutout/Mixup/CutMix -> evaluate -> report.md"
DESCRIPTION = (
    HELP
    + """

Generates the embedded synthetic benchmark, trains the four models with the synthetic_cpu recipe
(two at a time, one thread each), evaluates them, compares them (intervals, paired p-values), draws
the figures and writes OUT/report.md. Finished stages are reused on a re-run with the same
settings; one with other settings is refused (--fresh starts over). OUT must be new, empty or a
folder an earlier demo wrote (--fresh deletes only such a folder).
--seeds N trains every method with training seeds SEED .. SEED+N-1 (same benchmark) and adds
OUT/seeds.md: per metric and method the mean and 95 % t-interval across seeds, each seed's paired
test against the baseline, and whether the CutMix effect appears.
"""
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from wsol.jobs.demo import AUGS, DemoConfig

    d = DemoConfig()
    parser.add_argument("--out", default=d.out, help="output folder (default: %(default)s)")
    parser.add_argument(
        "--augs",
        nargs="+",
        default=list(AUGS),
        help="augmentations to train and compare, at least two; the first is the baseline (default: %(default)s)",
    )
    parser.add_argument("--classes", type=int, default=d.classes, help="synthetic classes (default: %(default)s)")
    parser.add_argument("--train-per-class", type=int, default=d.train_per_class, help="(default: %(default)s)")
    parser.add_argument("--test-per-class", type=int, default=d.test_per_class, help="(default: %(default)s)")
    parser.add_argument("--size", type=int, default=d.size, help="image side in pixels (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=d.seed, help="(default: %(default)s)")
    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=d.seeds,
        metavar="N",
        help="training seeds per method: SEED .. SEED+N-1 (default: %(default)s)",
    )
    parser.add_argument(
        "--parallel", type=positive_int, default=d.parallel, help="trainings at once (default: %(default)s)"
    )
    parser.add_argument(
        "--set",
        dest="train_set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra recipe override for every training, e.g. --set epochs=2",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="delete OUT (a folder an earlier demo wrote) and start over"
    )


def run(args: argparse.Namespace) -> int:
    from wsol.jobs.demo import DemoConfig, run_demo

    run_demo(
        DemoConfig(
            out=args.out,
            augs=args.augs,
            classes=args.classes,
            train_per_class=args.train_per_class,
            test_per_class=args.test_per_class,
            size=args.size,
            seed=args.seed,
            seeds=args.seeds,
            parallel=args.parallel,
            train_set=args.train_set,
            fresh=args.fresh,
        )
    )
    return 0
