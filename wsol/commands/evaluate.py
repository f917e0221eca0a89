"""``wsol evaluate``: one pass over a dataset gives every localization and classification metric."""

from __future__ import annotations

import argparse

from wsol.commands._common import (
    add_cam_method_argument,
    add_data_arguments,
    add_label_subset_argument,
    add_metric_arguments,
    add_model_arguments,
    add_runtime_arguments,
    evaluate_config,
)

HELP = "evaluate a checkpoint: top-1/top-5/GT-known loc, MaxBoxAcc, MaxBoxAccV2, PxAP, with 95% intervals"
DESCRIPTION = (
    HELP
    + """

One pass over the data: classification top-1/top-5; the old protocol of the CAM and CutMix papers
(top-1 / top-5 / GT-known localization at a fixed sigma, box of the largest connected region);
the wsolevaluation metrics (MaxBoxAcc at each IoU, MaxBoxAccV2, PxAP where masks exist) on CAMs of
the ground-truth class. Writes OUTPUT (JSON), OUTPUT's stem + .per_image.csv and .per_class.csv,
and .config.json (resolved configuration and software versions) beside it.

Examples:
  wsol evaluate --checkpoint runs/demo/train/cutmix/last.pt --dataset synthetic \\
      --data-root runs/demo/data --output runs/cutmix_eval/result.json
  wsol evaluate --checkpoint resnet50_cam_cub.pth.tar --arch resnet50 --dataset wsolevaluation \\
      --data-root dataset/CUB --metadata-dir metadata/CUB/test --device cuda --output cub.json
  torchrun --nproc_per_node 4 -m wsol evaluate ...   (same numbers as one process)
"""
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint file (any supported layout)")
    add_model_arguments(parser)
    add_data_arguments(parser)
    m = add_metric_arguments(parser)
    add_cam_method_argument(m)
    add_label_subset_argument(parser)
    add_runtime_arguments(parser)
    o = parser.add_argument_group("output")
    o.add_argument("--output", required=True, help="result JSON path")
    o.add_argument(
        "--save-scoremaps",
        default=None,
        metavar="DIR",
        help="also write DIR/<image_id>.npy (wsolevaluation layout) for evaluate-scoremaps",
    )
    o.add_argument(
        "--scoremap-dtype",
        default=None,
        choices=["float16", "float32"],
        help="dtype of saved score maps (default: float32, the dtype they are computed in, so "
        "saving never changes the metrics; float16 halves the files and then the metrics "
        "use the rounded maps, which the result file says)",
    )
    o.add_argument("--overwrite", action="store_true", help="replace an existing result")
    o.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its per-image log (same numbers as uninterrupted); "
        "refused if any option, or the checkpoint file, differs from the logged run's; on a "
        "finished result it checks the options and changes nothing",
    )
    o.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip unreadable images instead of stopping; the result counts and lists them",
    )
    o.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from eval.results import format_summary
    from wsol.jobs.evaluate import run_evaluate

    cfg = evaluate_config(
        args,
        checkpoint=args.checkpoint,
        output=args.output,
        save_scoremaps=args.save_scoremaps,
        scoremap_dtype=args.scoremap_dtype,
        label_subset=args.label_subset,
        overwrite=args.overwrite,
        resume=args.resume,
        skip_bad=args.skip_bad,
    )
    result = run_evaluate(cfg)
    if result is not None:  # None on non-zero ranks under torchrun
        print(format_summary(result))
    return 0
