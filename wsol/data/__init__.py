"""Datasets: CUB-200-2011, ImageNet, the wsolevaluation layout and the synthetic benchmark.

Public API (see ``docs/architecture.md``, Data contract)::

    build_dataset(name, root, split, *, metadata_dir=None, preset="wsolevaluation", train=False,
                  size=None, transform=None) -> WSOLDataset
    collate(batch) -> dict
    DATASETS  (Registry of DatasetFormat: cub, imagenet, wsolevaluation, synthetic)
    PRESETS   (Registry of Preset: wsolevaluation, cutmix)
    Record, Scan, scan_dataset, train_transform, check_dataset, generate_synthetic

Attributes are imported on first use, so ``import wsol.data`` stays light (torch is imported only
by the dataset/transform modules).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "build_dataset": "wsol.data.dataset",
    "collate": "wsol.data.dataset",
    "WSOLDataset": "wsol.data.dataset",
    "DATASETS": "wsol.data.formats",
    "scan_dataset": "wsol.data.formats",
    "PRESETS": "wsol.data.transforms",
    "Preset": "wsol.data.transforms",
    "train_transform": "wsol.data.transforms",
    "IMAGENET_MEAN": "wsol.data.transforms",
    "IMAGENET_STD": "wsol.data.transforms",
    "Record": "wsol.data.records",
    "Scan": "wsol.data.records",
    "DatasetFormat": "wsol.data.records",
    "check_dataset": "wsol.data.check",
    "generate_synthetic": "wsol.data.synthetic",
    "SynthConfig": "wsol.data.synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'wsol.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
