"""``wsol figure``: CAM comparison grids, BoxAcc-versus-threshold curves, per-class accuracy."""

from __future__ import annotations

import argparse
import math

from wsol.commands._common import (
    UniqueValues,
    add_label_subset_argument,
    add_model_arguments,
    model_options,
    positive_int,
    worker_count,
)

HELP = "figures (PNG + PDF): CAM comparison grid, BoxAcc-vs-threshold curves, per-class accuracy"
DESCRIPTION = (
    HELP
    + """

  grid       rows = images, columns = checkpoints (x CAM methods); each cell: the image with the
             CAM overlaid, the GT box (green, solid), the predicted box (red, dashed; largest
             contour at the model's best threshold for IoU 0.5 from --results, else --threshold,
             else 0.15), the IoU and the predicted class (✓/✗).
  curves     BoxAcc against the CAM threshold of several result files, one panel per IoU threshold.
  per-class  per-class accuracy of several result files (all classes sorted, plus the classes
             where the models differ most).

Every figure is written as NAME.png (300 dpi) and NAME.pdf (--out NAME.png, NAME.pdf or NAME), sized
for a paper column (3.3 in) or page (7 in); the colour map (inferno) and line styles survive greyscale
printing.

Examples:
  wsol figure grid --checkpoint runs/base/last.pt --checkpoint runs/cutmix/last.pt --names baseline CutMix \\
      --dataset synthetic --data-root runs/demo/data --images 6 --select disagree \\
      --results runs/base/result.json runs/cutmix/result.json --out cams.png
  wsol figure grid --checkpoint m.pt --cam-method cam --cam-method gradcam --dataset cub --data-root CUB \\
      --ids 001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg --out methods.png
  wsol figure curves base.json cutmix.json --names baseline CutMix --iou 50 --out curves.png
  wsol figure per-class base.json cutmix.json --metric top1_loc --out per_class.png
"""
)


MIN_WIDTH_IN, MAX_WIDTH_IN = 1.0, 100.0  # --width range (a paper column is 3.3 in, a page 7 in)


def figure_width(text: str) -> float:
    """argparse type of ``--width``: a finite number of inches in [:data:`MIN_WIDTH_IN`, :data:`MAX_WIDTH_IN`]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of inches, got {text!r}") from None
    if not math.isfinite(value) or not MIN_WIDTH_IN <= value <= MAX_WIDTH_IN:
        raise argparse.ArgumentTypeError(f"must be from {MIN_WIDTH_IN:g} to {MAX_WIDTH_IN:g} inches, got {text}")
    return value


def _debug_flag(parser: argparse.ArgumentParser) -> None:
    # `wsol --debug figure grid ...` appends --debug after the subcommand's arguments.
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        required=True,
        help="output file: NAME.png, NAME.pdf or NAME; both NAME.png and NAME.pdf are written (replaced if they "
        "exist: a figure is redrawn from its inputs)",
    )
    parser.add_argument(
        "--width",
        type=figure_width,
        default=None,
        metavar="INCHES",
        help=f"figure width in inches, from {MIN_WIDTH_IN:g} to {MAX_WIDTH_IN:g} "
        "(default: 3.3 for a narrow figure, 7 otherwise)",
    )
    _debug_flag(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="figure", required=True, metavar="{grid,curves,per-class}")

    g = sub.add_parser(
        "grid",
        help="CAM comparison grid (needs checkpoints and data)",
        description="CAM comparison grid: rows are images, columns are models or CAM methods.",
    )
    g.add_argument(
        "--checkpoint",
        action="append",
        required=True,
        dest="checkpoints",
        help="checkpoint of one column; repeat for several models",
    )
    g.add_argument("--names", nargs="+", action=UniqueValues, default=None, help="column names, one per --checkpoint")
    add_model_arguments(g)
    g.add_argument(
        "--workers",
        type=worker_count,
        default=None,
        help="DataLoader processes reading the chosen images (default: one per core, at most 4)",
    )
    g.add_argument("--dataset", required=True, help="dataset format (cub, imagenet, wsolevaluation, synthetic)")
    g.add_argument("--data-root", required=True, help="folder holding the images")
    g.add_argument("--metadata-dir", default=None, help="wsolevaluation metadata split folder")
    g.add_argument("--split", default="test", help="split (default: %(default)s)")
    g.add_argument(
        "--preset",
        "--protocol",
        dest="preset",
        default="wsolevaluation",
        help="data preset (default: %(default)s; --protocol is an alias)",
    )
    pick = g.add_mutually_exclusive_group()
    pick.add_argument("--images", type=positive_int, default=4, help="number of images (rows; default: %(default)s)")
    pick.add_argument(
        "--ids", nargs="+", action=UniqueValues, default=None, help="image ids to show, as in image_ids.txt"
    )
    g.add_argument(
        "--select",
        choices=["seed", "disagree"],
        default="seed",
        help="seed: random images; disagree: where the models' per-image hits and IoUs differ "
        "most (needs --results) (default: %(default)s)",
    )
    g.add_argument(
        "--results",
        nargs="+",
        default=None,
        help="result JSON of each checkpoint, in order: best thresholds and per-image hits",
    )
    g.add_argument(
        "--cam-method",
        action="append",
        dest="cam_methods",
        default=None,
        help="CAM method of the columns (repeat for several; default: cam)",
    )
    g.add_argument(
        "--cam-class",
        choices=["gt", "predicted"],
        default="gt",
        help="class whose CAM is drawn (default: the ground truth, as MaxBoxAcc)",
    )
    g.add_argument(
        "--threshold", type=float, default=None, help="CAM threshold for columns without a result file (default: 0.15)"
    )
    add_label_subset_argument(g)
    g.add_argument("--seed", type=int, default=0, help="seed of the random image choice (default: 0)")
    g.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    g.add_argument(
        "--cmap",
        default="inferno",
        choices=["inferno", "viridis", "cividis", "magma", "plasma"],
        help="CAM colour map, perceptually uniform (default: %(default)s)",
    )
    _common(g)

    c = sub.add_parser(
        "curves",
        help="BoxAcc against the CAM threshold of several results",
        description="BoxAcc-versus-threshold curves (wsolevaluation Figure 1 style).",
    )
    c.add_argument("results", nargs="+", metavar="RESULT_JSON", help="result files with a BoxAcc_curve")
    c.add_argument("--names", nargs="+", action=UniqueValues, default=None, help="legend names, one per result")
    c.add_argument(
        "--iou",
        nargs="+",
        default=None,
        metavar="DELTA",
        help="IoU thresholds in percent, one panel each (default: all the results share)",
    )
    _common(c)

    p = sub.add_parser(
        "per-class",
        help="per-class accuracy of several results",
        description="Per-class accuracy: every class sorted, and the classes where the models differ most.",
    )
    p.add_argument("results", nargs="+", metavar="RESULT_JSON", help="result files with a per_class CSV")
    p.add_argument("--names", nargs="+", action=UniqueValues, default=None, help="legend names, one per result")
    p.add_argument(
        "--metric",
        default=None,
        help="per-class CSV column: top1_loc, gt_known_loc, MaxBoxAccV2_hits, top1_cls "
        "(default: the first every file has, in that order)",
    )
    p.add_argument("--max-classes", type=positive_int, default=15, help="classes shown as bars (default: %(default)s)")
    p.add_argument(
        "--order",
        choices=["spread", "worst", "best"],
        default="spread",
        help="which classes get bars when there are more than --max-classes (default: %(default)s)",
    )
    _common(p)


def run(args: argparse.Namespace) -> int:
    from wsol.jobs import figure as figure_job

    if args.figure == "grid":
        cfg = figure_job.GridConfig(
            checkpoints=args.checkpoints,
            names=args.names,
            arch=args.arch,
            arch_options=model_options(args),
            workers=args.workers,
            dataset=args.dataset,
            data_root=args.data_root,
            metadata_dir=args.metadata_dir,
            split=args.split,
            preset=args.preset,
            images=args.images,
            ids=args.ids,
            select=args.select,
            results=args.results,
            cam_methods=args.cam_methods or ["cam"],
            cam_class=args.cam_class,
            threshold=args.threshold,
            seed=args.seed,
            device=args.device,
            cmap=args.cmap,
            out=args.out,
            width_in=args.width,
            label_subset=args.label_subset,
        )
        written = figure_job.render_cam_grid(cfg)
    elif args.figure == "curves":
        written = figure_job.render_curves(
            args.results, args.out, names=args.names, deltas=args.iou, width_in=args.width
        )
    else:
        written = figure_job.render_per_class(
            args.results,
            args.out,
            names=args.names,
            metric=args.metric,
            max_classes=args.max_classes,
            select=args.order,
            width_in=args.width,
        )
    for path in written:
        print(f"wrote {path}")
    return 0
