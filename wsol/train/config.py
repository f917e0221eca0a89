"""The training configuration: one flat dataclass; recipes (YAML) and ``--set`` fill it.

Every field is read by the trainer (a test checks it); :func:`config_from_dict` rejects unknown
keys and wrong types with an error naming the key and its source.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

from wsol import defaults
from wsol.errors import UserError


@dataclass
class TrainConfig:
    """Everything one training run needs. ``lr_milestones`` are 0-based epoch indices; logs and
    checkpoints count completed epochs (``epoch: 3`` = three epochs done)."""

    # -- provenance ---------------------------------------------------------------------------
    recipe: str = ""  # name or file of the recipe this config came from (recorded)

    # -- model --------------------------------------------------------------------------------
    model: str = "small_cnn"  # wsol.models.create_model name
    model_options: dict = field(default_factory=dict)  # create_model keywords (pretrained, ...)
    init_checkpoint: str | None = None  # start from these weights (a file or zoo:NAME): tensors whose
    # name and shape match are copied; a classifier of another
    # class count stays newly initialized

    # -- data ---------------------------------------------------------------------------------
    dataset: str = "synthetic"  # wsol.data.DATASETS name
    data_root: str = ""  # dataset root folder (required)
    metadata_dir: str | None = None  # wsolevaluation metadata folder (dataset wsolevaluation)
    train_split: str = "train"
    image_size: int | None = None  # crop side S (None: the dataset's, 224 real / 64 synthetic);
    # train: resize to round(S*256/224) square, random crop S, flip
    cache_images: bool = False  # decode every train image once into a uint8 tensor in memory
    workers: int = 0  # DataLoader worker processes (not used with cache_images; the batches,
    # hence the weights, are the same at every value)

    # -- augmentation -------------------------------------------------------------------------
    aug: str = "none"  # wsol.augment.AUGMENTATIONS name
    aug_options: dict = field(default_factory=dict)  # per aug name: its keywords ({cutmix: {beta: 1.0}})

    # -- optimization (SGD) -------------------------------------------------------------------
    epochs: int = 1
    batch_size: int = 32  # global batch (split evenly over distributed processes)
    lr: float = 0.01  # learning rate of the base group
    lr_high_params: list[str] = field(default_factory=list)  # fnmatch globs of the high-lr group
    lr_high_mult: float = 1.0  # lr multiplier of that group
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    lr_milestones: list[int] = field(default_factory=list)  # 0-based epochs where lr *= lr_gamma
    lr_gamma: float = 0.1
    label_smoothing: float = 0.0

    # -- validation ---------------------------------------------------------------------------
    val_split: str | None = None  # held-out split with boxes (None: no validation)
    val_every: int = 0  # validate every N epochs and after the last (0: never)
    val_preset: str = defaults.PRESET
    val_batch_size: int = 64
    val_cam_method: str = defaults.CAM_METHOD

    # -- runtime ------------------------------------------------------------------------------
    seed: int = 0
    device: str | None = None  # None: cuda when available, else cpu
    threads: int = 0  # torch.set_num_threads (0: leave torch's default)
    amp: bool = True  # bf16 autocast (CUDA only)
    channels_last: bool = True  # channels_last memory format (CPU and CUDA; checkpoints
    # are saved contiguous)
    compile: bool = False  # torch.compile the training module
    sync_bn: bool = False  # SyncBatchNorm under DistributedDataParallel (CUDA only)
    progress: bool = True  # tqdm bar (also off when stderr is not a terminal)


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _type_of(name: str) -> Any:
    return typing.get_type_hints(TrainConfig)[name]


def _describe(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(name: str, value: Any, source: str = "") -> Any:
    """Check ``value`` against the type of field ``name``; return it (ints widen to floats).

    Raises :class:`UserError` naming ``source`` and the key for unknown keys or wrong types.
    """
    where = f"{source}: " if source else ""
    if name not in FIELDS:
        raise UserError(f"{where}unknown training key {name!r}; valid keys: {', '.join(FIELDS)}")
    tp = _type_of(name)
    out = _coerce(tp, value)
    if out is _BAD:
        raise UserError(f"{where}key {name!r} must be {_describe(tp)}; got {value!r}")
    return out


_BAD = object()


def _coerce(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            out = _coerce(arg, value)
            if out is not _BAD:
                return out
        return _BAD
    if tp is type(None):
        return None if value is None else _BAD
    if tp is bool:
        return value if isinstance(value, bool) else _BAD
    if tp is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _BAD
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-9" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                return _BAD
        return _BAD
    if tp is str:
        return value if isinstance(value, str) else _BAD
    if tp is dict or origin is dict:
        return dict(value) if isinstance(value, dict) else _BAD
    if origin is list:
        if not isinstance(value, (list, tuple)):
            return _BAD
        (inner,) = typing.get_args(tp)
        items = [_coerce(inner, v) for v in value]
        return _BAD if any(i is _BAD for i in items) else items
    raise TypeError(f"unsupported config type {tp}")


def config_from_dict(values: dict[str, Any], source: str = "") -> TrainConfig:
    """A :class:`TrainConfig` from a mapping of field values (checked by :func:`coerce`)."""
    if not isinstance(values, dict):
        raise UserError(f"{source or 'config'} must be a mapping of keys to values")
    return TrainConfig(**{k: coerce(k, v, source) for k, v in values.items()})


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain-data dict of ``cfg`` (YAML/JSON safe)."""
    return dataclasses.asdict(cfg)


#: upper bounds of values that otherwise crash torch or the machine (or train to NaN)
MAX_IMAGE_SIZE = 2048
MAX_LR = 10.0
MAX_LR_HIGH_MULT = 1000.0
MAX_WEIGHT_DECAY = 1.0
THREADS_PER_CORE = 4


def _non_finite(value: Any, where: str) -> str | None:
    """The dotted key of the first non-finite float in ``value`` (nested dicts and lists), or None."""
    import math

    if isinstance(value, float):
        return None if math.isfinite(value) else where
    if isinstance(value, dict):
        for k, v in value.items():
            bad = _non_finite(v, f"{where}.{k}")
            if bad:
                return bad
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            bad = _non_finite(v, f"{where}[{i}]")
            if bad:
                return bad
    return None


def validate(cfg: TrainConfig) -> TrainConfig:
    """Range checks across fields; raises :class:`UserError` naming the key."""
    from eval.cores import max_workers, usable_cores

    for name in FIELDS:  # one generic check: .inf / .nan anywhere train to NaN or crash torch
        bad = _non_finite(getattr(cfg, name), name)
        if bad:
            raise UserError(f"training config: {bad} must be a finite number; got {_lookup(cfg, bad)!r}")
    max_threads = THREADS_PER_CORE * usable_cores()
    checks = [
        (cfg.epochs >= 1, "epochs must be >= 1"),
        (cfg.batch_size >= 1, "batch_size must be >= 1"),
        (cfg.lr > 0, "lr must be > 0"),
        (cfg.lr <= MAX_LR, f"lr must be <= {MAX_LR:g}; got {cfg.lr:g}"),
        (cfg.lr_high_mult > 0, "lr_high_mult must be > 0"),
        (cfg.lr_high_mult <= MAX_LR_HIGH_MULT, f"lr_high_mult must be <= {MAX_LR_HIGH_MULT:g}"),
        (0 <= cfg.momentum < 1, "momentum must be in [0, 1)"),
        (not cfg.nesterov or cfg.momentum > 0, "nesterov needs momentum > 0"),
        (cfg.weight_decay >= 0, "weight_decay must be >= 0"),
        (cfg.weight_decay <= MAX_WEIGHT_DECAY, f"weight_decay must be <= {MAX_WEIGHT_DECAY:g}"),
        (0 < cfg.lr_gamma <= 1, "lr_gamma must be in (0, 1]"),
        (all(m >= 1 for m in cfg.lr_milestones), "lr_milestones must be epochs >= 1"),
        (0 <= cfg.label_smoothing < 1, "label_smoothing must be in [0, 1)"),
        (cfg.image_size is None or cfg.image_size >= 8, "image_size must be >= 8"),
        (
            cfg.image_size is None or cfg.image_size <= MAX_IMAGE_SIZE,
            f"image_size must be <= {MAX_IMAGE_SIZE}; got {cfg.image_size}",
        ),
        (cfg.workers >= 0, "workers must be >= 0"),
        (cfg.workers <= max_workers(), f"workers must be <= {max_workers()}; got {cfg.workers}"),
        (cfg.val_every >= 0, "val_every must be >= 0"),
        (cfg.val_batch_size >= 1, "val_batch_size must be >= 1"),
        (cfg.threads >= 0, "threads must be >= 0"),
        (
            cfg.threads <= max_threads,
            f"threads must be <= {max_threads} ({THREADS_PER_CORE} x the {usable_cores()} usable cores); "
            f"got {cfg.threads}",
        ),
        (bool(cfg.data_root), "data_root is required (e.g. --set data_root=DIR)"),
        (cfg.val_every == 0 or cfg.val_split is not None, "val_every > 0 needs a val_split"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(f"training config: {message}")
    from cam import CAM_METHODS

    if cfg.val_cam_method not in CAM_METHODS:  # else it fails at the first validation, epochs in
        raise UserError(
            f"training config: val_cam_method {cfg.val_cam_method!r} is not a CAM method; choose from: "
            + ", ".join(CAM_METHODS)
        )
    return cfg


def _lookup(cfg: TrainConfig, dotted: str) -> Any:
    """The value at ``dotted`` (``aug_options.mixup.alpha``, ``x[0]``) of ``cfg``, or the key."""
    import re

    parts = [p for p in re.split(r"\.|\[(\d+)\]", dotted) if p]
    node: Any = cfg
    for i, part in enumerate(parts):
        node = getattr(node, part) if i == 0 else node[int(part) if isinstance(node, list) else part]
    return node
