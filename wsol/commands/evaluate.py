"""``wsol evaluate``: one pass over a dataset gives every localization and classification metric."""

from __future__ import annotations

import argparse

from wsol.commands._common import add_data_arguments, add_runtime_arguments

HELP = "evaluate a checkpoint: top-1/top-5/GT-known loc, MaxBoxAcc, MaxBoxAccV2, PxAP, with 95% intervals"
DESCRIPTION = HELP + """

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cam import CAM_METHODS

    parser.add_argument("--checkpoint", required=True, help="checkpoint file (any supported layout)")
    parser.add_argument("--arch", default=None,
                        help="architecture when the checkpoint does not record it (inferred from its keys otherwise)")
    parser.add_argument("--layer4-stride", type=int, default=None, choices=[1, 2],
                        help="ResNet-50 only: 1 = wsolevaluation (14x14 CAM), 2 = torchvision/CutMix-PyTorch (7x7)")
    parser.add_argument("--large-feature-map", action="store_true", default=None,
                        help="wsolevaluation models trained with large_feature_map (28x28 CAM)")
    add_data_arguments(parser)
    m = parser.add_argument_group("metrics")
    m.add_argument("--cam-method", default="cam", choices=list(CAM_METHODS),
                   help="CAM method (default: %(default)s)")
    m.add_argument("--cam-curve-interval", type=float, default=0.01,
                   help="threshold step of the MaxBoxAcc / PxAP sweep (default: %(default)s)")
    m.add_argument("--iou-thresholds", type=int, nargs="+", default=[30, 50, 70],
                   help="IoU thresholds in percent (default: 30 50 70)")
    m.add_argument("--largest-contour", action="store_true",
                   help="MaxBoxAcc V1: box of the largest contour only (default: all contours, V2)")
    m.add_argument("--sigma", type=float, default=0.15,
                   help="old protocol: CAM threshold as a fraction of the max (default: %(default)s, CutMix)")
    add_runtime_arguments(parser)
    o = parser.add_argument_group("output")
    o.add_argument("--output", required=True, help="result JSON path")
    o.add_argument("--save-scoremaps", default=None, metavar="DIR",
                   help="also write DIR/<image_id>.npy (wsolevaluation layout) for evaluate-scoremaps")
    o.add_argument("--scoremap-dtype", default="float16", choices=["float16", "float32", "float64"],
                   help="dtype of saved score maps (default float16: 4x smaller than wsolevaluation's "
                        "float64; metrics are computed on the saved values so both agree)")
    o.add_argument("--overwrite", action="store_true", help="replace an existing result")
    o.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its per-image log (same numbers as uninterrupted)")
    o.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable images instead of stopping; the result counts and lists them")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from wsol.evaluate import EvaluateConfig, format_summary, run_evaluate

    options = {k: v for k, v in (("layer4_stride", args.layer4_stride),
                                 ("large_feature_map", args.large_feature_map)) if v is not None}
    cfg = EvaluateConfig(
        checkpoint=args.checkpoint, arch=args.arch, arch_options=options, dataset=args.dataset,
        data_root=args.data_root, metadata_dir=args.metadata_dir, split=args.split,
        protocol=args.protocol, cam_method=args.cam_method, cam_curve_interval=args.cam_curve_interval,
        iou_thresholds=tuple(args.iou_thresholds), multi_contour=not args.largest_contour,
        sigma=args.sigma, batch_size=args.batch_size, device=args.device, workers=args.workers,
        output=args.output, save_scoremaps=args.save_scoremaps, scoremap_dtype=args.scoremap_dtype,
        overwrite=args.overwrite, resume=args.resume, skip_bad=args.skip_bad,
        progress=not args.no_progress)
    result = run_evaluate(cfg)
    if result is not None:  # None on non-zero ranks under torchrun
        print(format_summary(result))
    return 0
