"""Argument groups shared by the commands that read a dataset and run a model.

Choices come from the registries (datasets, presets, CAM methods), never from a second list.
"""

from __future__ import annotations

import argparse
import os


def add_data_arguments(parser: argparse.ArgumentParser, *, split_default: str = "test",
                       required: bool = True) -> None:
    from wsol.data import DATASETS, PRESETS

    g = parser.add_argument_group("data")
    g.add_argument("--dataset", required=required, choices=DATASETS.names(),
                   help="dataset format: %(choices)s")
    g.add_argument("--data-root", required=required, help="folder holding the images (dataset root)")
    g.add_argument("--metadata-dir", default=None,
                   help="wsolevaluation metadata split folder (for --dataset wsolevaluation)")
    g.add_argument("--split", default=split_default, help="split to read (default: %(default)s)")
    g.add_argument("--protocol", default="wsolevaluation", choices=list(PRESETS),
                   help="evaluation preset: 'wsolevaluation' resizes to SxS with no crop; 'cutmix' "
                        "resizes to S*256/224 and centre-crops S (default: %(default)s)")


def add_runtime_arguments(parser: argparse.ArgumentParser, *, batch_size: int = 32) -> None:
    g = parser.add_argument_group("runtime")
    g.add_argument("--batch-size", type=int, default=batch_size, help="images per batch (default: %(default)s)")
    g.add_argument("--device", default=None,
                   help="torch device, e.g. cuda, cuda:1, cpu (default: cuda when available, else cpu)")
    g.add_argument("--workers", type=int, default=None,
                   help="CPU worker processes for data loading / box sweeps (default: number of cores)")


def resolve_device(name: str | None):
    import torch

    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_workers(workers: int | None) -> int:
    return os.cpu_count() or 1 if workers is None else max(0, workers)


def parse_fraction(text: str) -> float:
    """``"8/255"`` -> 0.03137..., ``"0.1"`` -> 0.1 (for --eps)."""
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den)
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number or a fraction like 8/255, got {text!r}") from None
