"""Training: ``train(config, out_dir, resume=False) -> Path``, :class:`TrainConfig`, recipes.

::

    from wsol.train import load_recipe, train
    cfg = load_recipe("synthetic_cpu", ["data_root=runs/synth"], aug="cutmix")
    last = train(cfg, "runs/train/cutmix")

``import wsol.train`` stays light: the trainer (torch) is imported on first use of ``train``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wsol.train.config import TrainConfig, config_from_dict, config_to_dict
from wsol.train.recipes import apply_overrides, load_recipe, recipe_description, recipe_names


def train(config: TrainConfig, out_dir: str | Path, resume: bool = False) -> Path:
    """Train as ``config`` says into ``out_dir``; return the path of ``last.pt``
    (see :func:`wsol.train.trainer.train`)."""
    from wsol.train.trainer import train as _train

    return _train(config, out_dir, resume=resume)


def __getattr__(name: str) -> Any:
    if name == "TrainModule":
        from wsol.train.trainer import TrainModule

        return TrainModule
    raise AttributeError(f"module 'wsol.train' has no attribute {name!r}")


__all__ = [
    "TrainConfig",
    "train",
    "load_recipe",
    "recipe_names",
    "recipe_description",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
]
