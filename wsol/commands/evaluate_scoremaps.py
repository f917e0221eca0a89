"""``wsol evaluate-scoremaps``: saved score maps + wsolevaluation metadata -> metrics JSON.

Light start-up: this module imports only argparse/os; the evaluation (numpy, OpenCV, numba, never
torch) is imported inside :func:`run`.
"""

from __future__ import annotations

import argparse

from eval.cores import usable_cores
from wsol.commands._common import add_metric_arguments, metric_settings, worker_count

# the old protocol binarizes what it is given: here the saved maps (min-max normalized), where
# `wsol evaluate` binarizes the max-normalized CAM; the two can disagree on an image
OLD_PROTOCOL_NOTE = (
    "note: GT-known / top-1 / top-5 loc (old protocol) binarize the saved min-max normalized maps here; "
    "`wsol evaluate` binarizes the max-normalized CAM, so these three can differ from its numbers "
    "(MaxBoxAcc, MaxBoxAccV2 and PxAP are the same)"
)
HELP = "MaxBoxAcc, MaxBoxAccV2, PxAP (and top-1/top-5 loc) of saved score maps, exact and fast"
DESCRIPTION = (
    HELP
    + """

Reads SCOREMAP_DIR/<image_id>.npy (the image id as in image_ids.txt, e.g.
001.Black_footed_Albatross/x.jpg.npy; 2-D float maps in [0, 1], normally 224x224) for every image
of a wsolevaluation metadata split, and computes the wsolevaluation metrics with the same numbers
as its reference code (thresholds np.arange(0, 1, interval), uint8 quantization, contours of
RETR_TREE; --largest-contour for V1), each with a 95% bootstrap interval at the selected threshold.
Box splits also get the old fixed-threshold GT-known localization (sigma 0.15, on the saved maps);
--predictions adds top-1 / top-5 localization and classification. Mask splits (OpenImages) need
--mask-root and give PxAP. Percentages are 0-100.

Writes OUTPUT (JSON: num_images, cam_curve_interval, MaxBoxAcc, MaxBoxAccV2, best_threshold,
PxAP, ci95, protocol, ...) and, for box splits, OUTPUT less a .json suffix + .per_image.csv (for wsol compare).

Examples:
  wsol evaluate-scoremaps --metadata-dir metadata/CUB/test --scoremap-dir runs/cub/scoremaps \\
      --output cub_test.json
  wsol evaluate-scoremaps --metadata-dir metadata/ILSVRC/val --scoremap-dir maps \\
      --cam-curve-interval 0.001 --largest-contour --output v1.json
  wsol evaluate-scoremaps --metadata-dir metadata/OpenImages/test --scoremap-dir maps \\
      --mask-root dataset/OpenImages --output pxap.json
"""
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metadata-dir",
        required=True,
        help="wsolevaluation metadata split folder (image_ids.txt, class_labels.txt, "
        "image_sizes.txt, localization.txt)",
    )
    parser.add_argument("--scoremap-dir", required=True, help="folder with <image_id>.npy score maps")
    add_metric_arguments(parser)
    parser.add_argument(
        "--mask-root",
        default=None,
        help="PxAP for mask splits: folder the mask paths of localization.txt are relative to",
    )
    parser.add_argument(
        "--predictions",
        default=None,
        help="CSV image_id,pred1[,pred2,...] (best first, 0-based): adds top-1/top-5 localization and classification",
    )
    parser.add_argument(
        "--workers",
        type=worker_count,
        default=None,
        help=f"worker processes; 0 or 1 = in this process (default: number of cores, here {usable_cores()})",
    )
    parser.add_argument("--output", default=None, help="result JSON path (default: print the JSON)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from eval.io import check_output_file, ensure_output_dir
    from eval.results import format_summary, refuse_result_overwrite, to_jsonable, write_result
    from eval.scoremaps import evaluate_scoremaps

    if args.output is not None:
        check_output_file(args.output, "--output")  # "", out/, an existing folder: refused now
        # the JSON and its per-image CSV (eval.results.companion_paths) are both counted
        refuse_result_overwrite(args.output, args.overwrite, kinds=("per_image",))
        ensure_output_dir(args.output)  # an unwritable output fails before the sweep, not after
    state: dict = {}  # the progress bar, made once the number of images is known

    def progress(done: int, total: int) -> None:
        if "bar" not in state:
            from tqdm import tqdm

            state["bar"] = tqdm(total=total, unit="img", desc="evaluate-scoremaps")
        state["bar"].update(1)

    show = not args.no_progress and sys.stderr.isatty()
    result, per_image = evaluate_scoremaps(
        args.metadata_dir,
        args.scoremap_dir,
        metric_settings(args),
        mask_root=args.mask_root,
        predictions=args.predictions,
        workers=args.workers if args.workers is not None else usable_cores(),
        progress=progress if show else None,
    )
    if "bar" in state:
        state["bar"].close()
    has_boxes = "MaxBoxAcc" in result
    if args.output is not None:
        write_result(args.output, result, per_image=per_image if has_boxes else None, overwrite=args.overwrite)
        print(format_summary(result, style="plain"))
        if has_boxes:
            print(OLD_PROTOCOL_NOTE, file=sys.stderr)
        print(f"wrote {args.output}")
    else:
        print(json.dumps(to_jsonable(result), indent=2))
    _skip_exit_collection()
    return 0


def _skip_exit_collection() -> None:
    """In the ``wsol`` process itself (not when ``run`` is called in-process), freeze the objects
    alive now so that the interpreter's final garbage collection skips them: after numba's kernel
    load, that collection made the exit take 0.2-0.3 s, a tenth of a 2,000-map evaluation."""
    import gc
    import sys
    from pathlib import Path

    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    if argv0.name == "wsol" or (argv0.name == "__main__.py" and argv0.parent.name == "wsol"):
        gc.freeze()
