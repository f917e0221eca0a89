"""``wsol train``: train a WSOL classifier from a recipe, with Cutout / Mixup / CutMix / variants."""

from __future__ import annotations

import argparse

HELP = "train a model from a recipe (baseline, Cutout, Mixup, CutMix and its variants)"
DESCRIPTION = (
    HELP
    + """

A recipe (YAML shipped in wsol/train/recipes/, or your own file) holds every training value;
--set KEY=VALUE overrides any of them (YAML values; dotted keys reach into mappings, e.g.
--set aug_options.cutmix.beta=0.5). Writes OUT/config.yaml, OUT/last.pt every epoch (atomic),
OUT/best.pt (best validation MaxBoxAccV2, when validation is on) and OUT/log.jsonl.

Recipes:
{recipes}

Examples:
  wsol data synth --out runs/synth
  wsol train --recipe synthetic_cpu --aug cutmix --set data_root=runs/synth --out runs/cutmix
  wsol train --recipe cub_resnet50_cutmix_paper --aug cutmix --set data_root=data/CUB_200_2011 \\
      --out runs/cub_r50_cutmix
  torchrun --nproc_per_node 4 -m wsol train --recipe imagenet_resnet50_cutmix_paper ...
      (DistributedDataParallel; batch_size is the global batch)
  wsol train ... --resume     (continue OUT/last.pt; same final weights as an uninterrupted run)
"""
)


def _recipe_lines() -> str:
    try:
        from wsol.train.recipes import recipe_description, recipe_names

        return "\n".join(f"  {n:<32} {recipe_description(n)}" for n in recipe_names())
    except Exception as exc:  # help must still print
        return f"  (unavailable: {exc})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from wsol.augment import AUGMENTATIONS

    parser.description = DESCRIPTION.format(recipes=_recipe_lines())
    parser.add_argument("--recipe", required=True, metavar="NAME|FILE", help="recipe name (see above) or YAML file")
    parser.add_argument(
        "--aug",
        default=None,
        choices=AUGMENTATIONS.names(),
        metavar="NAME",
        help="augmentation (default: the recipe's): " + ", ".join(AUGMENTATIONS.names()),
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value (repeatable)",
    )
    parser.add_argument("--out", required=True, help="output folder (checkpoints, config, log)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUT/last.pt if it exists (else start fresh)"
    )
    parser.add_argument("--seed", type=int, default=None, help="same as --set seed=N")
    parser.add_argument("--device", default=None, help="same as --set device=D (cpu, cuda, cuda:1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from wsol.errors import UserError
    from wsol.train import load_recipe, train

    if not args.out.strip():
        raise UserError("--out is empty; give the output folder (e.g. --out runs/NAME)")
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.device is not None:
        overrides.append(f"device={args.device}")
    if args.no_progress:
        overrides.append("progress=false")
    cfg = load_recipe(args.recipe, overrides, aug=args.aug)
    last = train(cfg, args.out, resume=args.resume)
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(f"wrote {last}")
    return 0
