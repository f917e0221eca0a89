"""SGD with two parameter groups, step decay, soft-target cross entropy (pure helpers)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsol.errors import UserError


def split_parameters(
    model: nn.Module, high_patterns: Sequence[str]
) -> tuple[list[nn.Parameter], list[nn.Parameter], list[str]]:
    """``(base, high, high_names)``: trainable parameters whose name matches one of the fnmatch
    globs ``high_patterns`` (e.g. ``"fc.*"``, ``"layer4.*"``) go to ``high``, the rest to ``base``.

    Every pattern must match at least one parameter (a typo would silently change the recipe).
    """
    base, high, high_names = [], [], []
    used = {p: 0 for p in high_patterns}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        hits = [p for p in high_patterns if fnmatch.fnmatchcase(name, p)]
        for p in hits:
            used[p] += 1
        (high if hits else base).append(param)
        if hits:
            high_names.append(name)
    unused = [p for p, n in used.items() if n == 0]
    if unused:
        names = [n for n, _ in model.named_parameters()]
        raise UserError(
            f"lr_high_params pattern(s) {unused} match no parameter of the model; "
            f"parameter names look like: {', '.join(names[:4])} ... {', '.join(names[-3:])}"
        )
    return base, high, high_names


def build_sgd(
    model: nn.Module,
    *,
    lr: float,
    high_patterns: Sequence[str],
    high_mult: float,
    momentum: float,
    nesterov: bool,
    weight_decay: float,
) -> torch.optim.SGD:
    """SGD with group 0 = base parameters at ``lr`` and group 1 = the high-lr group at
    ``lr * high_mult`` (omitted when empty). Each group records its ``initial_lr``."""
    base, high, _ = split_parameters(model, high_patterns)
    groups = [{"params": base, "lr": lr, "initial_lr": lr, "name": "base"}]
    if high:
        groups.append({"params": high, "lr": lr * high_mult, "initial_lr": lr * high_mult, "name": "high"})
    groups = [g for g in groups if g["params"]]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)


def lr_factor(epoch: int, milestones: Sequence[int], gamma: float) -> float:
    """Step decay: ``gamma ** (number of milestones <= epoch)`` for the 0-based ``epoch``.

    CutMix paper "x0.1 every 150 of 600 epochs": milestones [150, 300, 450]. wsolevaluation's
    "decay at the start of 1-based epoch e if e % 15 == 0" (50 epochs): milestones [14, 29, 44].
    """
    return gamma ** sum(1 for m in milestones if m <= epoch)


def set_epoch_lr(optimizer: torch.optim.Optimizer, factor: float) -> list[float]:
    """Set every group's lr to ``initial_lr * factor``; return the lrs."""
    for g in optimizer.param_groups:
        g["lr"] = g["initial_lr"] * factor
    return [g["lr"] for g in optimizer.param_groups]


def soft_cross_entropy(logits: Tensor, soft: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """Mean over the batch of ``-sum_k q_k log softmax(logits)_k`` in float32.

    ``q = (1 - eps) * soft + eps / K`` (label smoothing as ``F.cross_entropy`` does it). With
    mixed targets ``lam * onehot(a) + (1 - lam) * onehot(b)`` this is the CutMix/Mixup loss
    ``lam * CE(a) + (1 - lam) * CE(b)``.
    """
    if logits.shape != soft.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(soft.shape)} differ")
    q = soft.to(torch.float32)
    if label_smoothing:
        q = q * (1.0 - label_smoothing) + label_smoothing / q.shape[1]
    return -(q * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()
