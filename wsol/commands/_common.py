"""Argument groups shared by the commands that read a dataset and run a model.

Choices come from the registries (datasets, presets, CAM methods), never from a second list.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from wsol import defaults

if TYPE_CHECKING:  # pragma: no cover
    from eval.settings import MetricSettings
    from wsol.jobs.evaluate import EvaluateConfig


def add_data_arguments(
    parser: argparse.ArgumentParser, *, split_default: str = defaults.SPLIT, required: bool = True
) -> None:
    from wsol.data import DATASETS, PRESETS

    g = parser.add_argument_group("data")
    g.add_argument("--dataset", required=required, choices=DATASETS.names(), help="dataset format: %(choices)s")
    g.add_argument("--data-root", required=required, help="folder holding the images (dataset root)")
    g.add_argument(
        "--metadata-dir", default=None, help="wsolevaluation metadata split folder (for --dataset wsolevaluation)"
    )
    g.add_argument("--split", default=split_default, help="split to read (default: %(default)s)")
    g.add_argument(
        "--preset",
        "--protocol",
        dest="preset",
        default=defaults.PRESET,
        choices=list(PRESETS),
        help="data preset: 'wsolevaluation' resizes to SxS with no crop; 'cutmix' resizes to "
        "S*256/224 and centre-crops S (default: %(default)s; --protocol is an alias)",
    )


def _interval(text: str) -> float:
    from eval.settings import MIN_CAM_CURVE_INTERVAL

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0.0 < v < 1.0):  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {v}")
    if v < MIN_CAM_CURVE_INTERVAL:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_CAM_CURVE_INTERVAL:g} (score maps are quantized to 256 levels; "
            f"the reference protocol's finest step is 0.001), got {text}"
        )
    return v


def _sigma(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= v < 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"a fraction of the CAM's max in [0, 1), got {text}")
    return v


def _percent(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {text!r}") from None
    if not (0.0 <= v <= 100.0):
        raise argparse.ArgumentTypeError(f"IoU thresholds are percentages in [0, 100], got {v}")
    if 0.0 < v < 1.0:  # a fraction typed for a percentage: IoU 0.5 is 50
        raise argparse.ArgumentTypeError(
            f"IoU thresholds are percentages (50 means IoU 0.5); got {text}: did you mean {v * 100:g}?"
        )
    return int(v) if v.is_integer() else v


class UniqueValues(argparse.Action):
    """``nargs`` action that refuses a value given twice (after the option's ``type``: ``50`` and
    ``50.0`` are the same IoU threshold), where a repeat would collapse silently into one entry
    of the result."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen: list = []
        for v in values:
            if v in seen:
                raise argparse.ArgumentError(self, f"{v} is given twice; give each value once")
            seen.append(v)
        setattr(namespace, self.dest, seen)


def add_metric_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The metric options shared by ``wsol evaluate`` and ``wsol evaluate-scoremaps``; read them
    back with :func:`metric_settings`. Defaults come from :class:`eval.settings.MetricSettings`."""
    from eval import settings as S

    g = parser.add_argument_group("metrics")
    g.add_argument(
        "--cam-curve-interval",
        type=_interval,
        default=S.DEFAULT_CAM_CURVE_INTERVAL,
        help="threshold step: thresholds np.arange(0, 1, step) of the MaxBoxAcc / PxAP sweep "
        "(default: %(default)s; wsolevaluation's main.py uses 0.001)",
    )
    g.add_argument(
        "--iou-thresholds",
        type=_percent,
        nargs="+",
        action=UniqueValues,
        default=list(S.DEFAULT_IOU_THRESHOLDS),
        help="IoU thresholds in percent (default: %(default)s)",
    )
    g.add_argument(
        "--largest-contour",
        action="store_true",
        help="MaxBoxAcc V1: box of the largest contour only (default: boxes of all contours, V2)",
    )
    g.add_argument(
        "--sigma",
        type=_sigma,
        default=S.DEFAULT_SIGMA,
        help="old protocol: CAM threshold as a fraction of the map's max (default: %(default)s, CutMix)",
    )
    return g


def metric_settings(args: argparse.Namespace) -> MetricSettings:
    """The :class:`eval.settings.MetricSettings` of the options added by :func:`add_metric_arguments`."""
    from eval.settings import MetricSettings

    return MetricSettings(
        cam_curve_interval=args.cam_curve_interval,
        iou_thresholds=tuple(args.iou_thresholds),
        multi_contour=not args.largest_contour,
        sigma=args.sigma,
    )


def add_cam_method_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str = "CAM method"
) -> None:
    """``--cam-method``, its choices from :data:`cam.CAM_METHODS`."""
    from cam import CAM_METHODS

    parser.add_argument(
        "--cam-method",
        default=defaults.CAM_METHOD,
        choices=list(CAM_METHODS),
        help=f"{help} (default: %(default)s)",
    )


def add_label_subset_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--label-subset``: accept a dataset whose labels are a subset of a checkpoint's outputs
    (:func:`wsol.model_info.class_count_problem` refuses a class-count mismatch otherwise)."""
    parser.add_argument(
        "--label-subset",
        action="store_true",
        help="accept a dataset with fewer classes than a checkpoint's outputs whose labels "
        "index the same classes (e.g. an ImageNet model on an ImageNet subset); "
        "without it a class-count mismatch is refused",
    )


def evaluate_config(args: argparse.Namespace, *, checkpoint: str, output: str, **fields: object) -> EvaluateConfig:
    """The :class:`~wsol.jobs.evaluate.EvaluateConfig` of ``checkpoint`` -> ``output`` from the
    shared groups a command added (:func:`add_model_arguments`, :func:`add_data_arguments`,
    :func:`add_metric_arguments`, :func:`add_cam_method_argument`, :func:`add_runtime_arguments`,
    ``--no-progress``); ``fields`` set the command's own options (``overwrite``, ``resume``, ...).
    Every command that evaluates a checkpoint builds its configuration here, so ``wsol evaluate``
    and ``wsol compare --checkpoint`` give the same numbers for the same options."""
    from wsol.jobs.evaluate import EvaluateConfig

    return EvaluateConfig(
        checkpoint=checkpoint,
        output=output,
        arch=args.arch,
        arch_options=model_options(args),
        dataset=args.dataset,
        data_root=args.data_root,
        metadata_dir=args.metadata_dir,
        split=args.split,
        preset=args.preset,
        cam_method=args.cam_method,
        metrics=metric_settings(args),
        batch_size=args.batch_size,
        device=args.device,
        workers=args.workers,
        progress=not args.no_progress,
        **fields,  # type: ignore[arg-type]
    )


def add_model_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--arch`` and the architecture options a checkpoint's weights cannot reveal; read them back
    with :func:`model_options`. Each run states which options it assumed and names these flags."""
    parser.add_argument(
        "--arch",
        default=None,
        help="architecture when the checkpoint does not record it (inferred from its keys otherwise)",
    )
    parser.add_argument(
        "--layer4-stride",
        type=int,
        default=None,
        choices=[1, 2],
        help="ResNets: 1 = wsolevaluation (14x14 CAM at 224), 2 = torchvision/CutMix-PyTorch "
        "(7x7); default: what the file records, else guessed from its layout (said in the output)",
    )
    parser.add_argument(
        "--large-feature-map",
        action="store_true",
        default=None,
        help="ResNet-50 / InceptionV3 trained with wsolevaluation's large_feature_map (28x28 CAM); "
        "the weights cannot reveal it",
    )


def model_options(args: argparse.Namespace) -> dict:
    """The architecture options given on the command line (only those given)."""
    return {
        k: v
        for k, v in (("layer4_stride", args.layer4_stride), ("large_feature_map", args.large_feature_map))
        if v is not None
    }


def add_runtime_arguments(parser: argparse.ArgumentParser, *, batch_size: int = defaults.BATCH_SIZE) -> None:
    g = parser.add_argument_group("runtime")
    g.add_argument(
        "--batch-size", type=positive_int, default=batch_size, help="images per batch (default: %(default)s)"
    )
    g.add_argument(
        "--device", default=None, help="torch device, e.g. cuda, cuda:1, cpu (default: cuda when available, else cpu)"
    )
    g.add_argument(
        "--workers",
        type=worker_count,
        default=None,
        help="CPU worker processes for data loading / box sweeps; 0 = all in this process (default: number of cores)",
    )


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type of a count that must be >= 1 (``--batch-size``, ``--images``, ...)."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def worker_count(text: str) -> int:
    """argparse type of ``--workers``: a number of processes, >= 0 (0 and 1: in this process),
    at most :func:`eval.cores.max_workers` (every command's ``--workers`` uses this type)."""
    from eval.cores import max_workers, usable_cores

    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (in this process) or more, got {value}")
    limit = max_workers()
    if value > limit:
        raise argparse.ArgumentTypeError(
            f"at most {limit} worker processes here ({usable_cores()} usable cores), got {value}"
        )
    return value


def parse_fraction(text: str) -> float:
    """``"8/255"`` -> 0.03137..., ``"0.1"`` -> 0.1 (for --eps)."""
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den)
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number or a fraction like 8/255, got {text!r}") from None
