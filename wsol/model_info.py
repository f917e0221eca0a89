"""What a run evaluates, stated before it starts: architecture, options, CAM size, assumptions.

Some options cannot be read from a checkpoint's weights (a wsolevaluation ResNet-50 trained with
``large_feature_map`` has the same tensors as one without; a plain state dict does not say its
``layer4_stride``). Every evaluate / figure / robustness run prints :func:`model_line` first and
records :func:`describe_model` in its result, naming each assumed option and the flag that
changes it.
"""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["describe_model", "model_line", "class_count_problem"]


class _Features(nn.Module):
    """``model.forward_features`` as a module's forward (for :func:`torch.func.functional_call`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)


def _meta_cam_size(model: nn.Module, image_size: tuple[int, int]) -> list[int]:
    """The feature map's ``[h, w]`` from a forward on the meta device: shapes only, no arithmetic
    (a ResNet-50 at 224 px: ~0.06 s instead of ~0.5 s on a CPU); the model is not touched."""
    state = {
        f"model.{name}": torch.empty_like(t, device="meta")
        for name, t in itertools.chain(model.named_parameters(), model.named_buffers())
    }
    with torch.no_grad():
        feats = functional_call(_Features(model), state, (torch.zeros(1, 3, *image_size, device="meta"),))
    return [int(feats.shape[-2]), int(feats.shape[-1])]


def cam_size(model: nn.Module, image_size: tuple[int, int]) -> list[int] | None:
    """``[h, w]`` of the model's CAM feature map for ``image_size`` = ``(H, W)`` inputs (None when
    the model has no ``forward_features``). In eval mode, no grad: a forward on the meta device
    (shapes only), or, for a model whose forward the meta device cannot run, one forward of a zero
    image on the model's device."""
    if not hasattr(model, "forward_features"):
        return None
    was_training = model.training
    model.eval()
    try:
        try:
            return _meta_cam_size(model, image_size)
        except Exception:  # an op without a meta kernel, a data-dependent shape, ...: really run it
            pass
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            feats = model.forward_features(torch.zeros(1, 3, *image_size, device=device))
    finally:
        model.train(was_training)
    return [int(feats.shape[-2]), int(feats.shape[-1])]


def describe_model(model: nn.Module, image_size: tuple[int, int]) -> dict[str, Any]:
    """``{"arch", "arch_options", "num_classes", "cam_size", "checkpoint_format", "assumed_options"}``
    of a model from :func:`wsol.checkpoints.load_checkpoint` (``assumed_options``: option -> value
    guessed rather than read from the file or given by the caller; empty when nothing was)."""
    from wsol.checkpoints import option_flag

    report = getattr(model, "load_report", None)
    assumed = dict(report.assumed) if report is not None else {}
    return {
        "arch": getattr(model, "arch", type(model).__name__),
        "arch_options": dict(getattr(model, "arch_options", {}) or {}),
        "num_classes": getattr(model, "num_classes", None),
        "cam_size": cam_size(model, image_size),
        "input_size": list(image_size),
        "checkpoint_format": report.format if report is not None else None,
        "assumed_options": assumed,
        "assumed_flags": {k: option_flag(k) for k in assumed},
    }


def model_line(name: str, info: dict[str, Any]) -> str:
    """One line: ``model <name>: resnet50 (layer4_stride=1, large_feature_map=False), 200 classes,
    CAM 14x14 at 224x224; assumed, not read from the file: large_feature_map=False (change with
    --large-feature-map)``."""
    opts = ", ".join(f"{k}={v!r}" for k, v in info["arch_options"].items())
    cam = info.get("cam_size")
    size = "x".join(map(str, info.get("input_size") or []))
    text = (
        f"model {name}: {info['arch']}"
        + (f" ({opts})" if opts else "")
        + (f", {info['num_classes']} classes" if info.get("num_classes") else "")
        + (f", CAM {cam[0]}x{cam[1]} at {size}" if cam else "")
    )
    if info["assumed_options"]:
        guessed = ", ".join(
            f"{k}={v!r} (change with {info['assumed_flags'][k]})" for k, v in info["assumed_options"].items()
        )
        text += f"; assumed, not read from the file: {guessed}"
    else:
        text += "; every option read from the file or given"
    return text


def class_count_problem(
    dataset: Any, model: nn.Module, *, checkpoint: str, where: str, label_subset: bool = False
) -> str | None:
    """Why ``dataset`` cannot go through ``model`` (None: it can), checked before any image is read.

    A label outside the model's outputs is always refused (naming the image and the metadata line
    it comes from); a different class count is refused unless ``label_subset`` (the dataset's
    labels index the same classes as the model's outputs, e.g. an ImageNet subset). ``where``
    names the data (``"the synthetic 'test' split at data/"``); a model without ``num_classes``
    passes."""
    num_classes = getattr(model, "num_classes", None)
    if num_classes is None:
        return None
    num_classes = int(num_classes)
    n = dataset.num_classes
    bad = next((r for r in dataset.records if r.label >= num_classes), None)
    if bad is not None:
        src = getattr(bad, "label_source", "") or bad.source
        return (
            f"{where} has {n} classes but the checkpoint {checkpoint} has {num_classes} outputs: "
            f"label {bad.label} of image {bad.image_id!r}{f' ({src})' if src else ''} is out of range "
            f"0..{num_classes - 1}"
        )
    if n != num_classes and not label_subset:
        return (
            f"the checkpoint {checkpoint} has {num_classes} classes (its classifier's outputs) but "
            f"{where} has {n}: use a checkpoint trained on this dataset, or pass --label-subset "
            "if the dataset's labels index the same classes as the model's outputs (e.g. an ImageNet "
            "model on an ImageNet subset)"
        )
    return None
