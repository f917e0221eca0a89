"""Robustness evaluations of the CutMix paper (Table 11, Figure 5a): FGSM and occlusion.

Conventions (printed with every result):

* Images arrive ImageNet-normalized (as the datasets give them). **FGSM** works in pixel space:
  ``x = image * std + mean`` in [0, 1]; ``x_adv = clamp(x + eps * sign(grad_x CE(f(x), y)), 0, 1)``,
  a single white-box step on the true label with the model in eval mode; then re-normalized.
  ``eps`` is in [0, 1] pixel units (8/255 is the usual setting).
* **Occlusion** zeroes a square of side ``s`` centred in the image (``center``) or everything
  outside that square (``boundary``), in the normalized input (zero = the dataset mean colour,
  as Cutout does), for ``s`` from 0 to the image side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from wsol.data.transforms import IMAGENET_MEAN, IMAGENET_STD

FGSM_NOTE = (
    "FGSM: one white-box step on the true label, eps in [0,1] pixel space, applied before "
    "ImageNet normalization, adversarial image clamped to [0,1]"
)
OCCLUSION_NOTE = (
    "occlusion: square of side s centred in the normalized input; 'center' zeroes the "
    "square, 'boundary' zeroes everything outside it (zero = dataset mean colour)"
)


def _stats(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(IMAGENET_MEAN, device=device, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device, dtype=dtype).view(1, 3, 1, 1)
    return mean, std


def fgsm_images(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    """FGSM adversarial versions of normalized ``images`` ``[B,3,H,W]`` (returned normalized, detached).

    The model's parameters get no gradient; ``model.training`` is left as it was.
    """
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"eps must be in [0, 1] pixel units, got {eps}")
    mean, std = _stats(images.device, images.dtype)
    pixels = (images.detach() * std + mean).requires_grad_(True)
    with torch.enable_grad():
        loss = nn.functional.cross_entropy(model((pixels - mean) / std), labels)
        (grad,) = torch.autograd.grad(loss, pixels)
    adv = (pixels.detach() + eps * grad.sign()).clamp_(0.0, 1.0)
    return (adv - mean) / std


def occlude(images: torch.Tensor, side: int, mode: str) -> torch.Tensor:
    """Occluded copy of normalized ``images`` ``[B,3,H,W]``: a centred ``side`` x ``side`` square
    (clipped to the image) is zeroed (``mode="center"``) or kept alone (``mode="boundary"``)."""
    if mode not in ("center", "boundary"):
        raise ValueError(f"occlusion mode must be 'center' or 'boundary', got {mode!r}")
    h, w = images.shape[-2:]
    s_h, s_w = min(side, h), min(side, w)
    y0, x0 = (h - s_h) // 2, (w - s_w) // 2
    inside = torch.zeros((h, w), dtype=torch.bool, device=images.device)
    inside[y0 : y0 + s_h, x0 : x0 + s_w] = True
    zero = inside if mode == "center" else ~inside
    return images.masked_fill(zero, 0.0)


@dataclass
class _Counter:
    correct: int = 0
    total: int = 0

    def add(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.correct += int((logits.argmax(1) == labels).sum())
        self.total += int(labels.numel())

    @property
    def pct(self) -> float:
        return 100.0 * self.correct / self.total if self.total else float("nan")


def _batches(loader: Iterable, device: torch.device, desc: str, progress: bool):
    from wsol.data.loading import iterate

    for batch in tqdm(iterate(loader), desc=desc, total=len(loader), disable=not progress, leave=False):
        yield batch["image"].to(device), torch.as_tensor(batch["label"], device=device)


def fgsm_accuracy(
    model: nn.Module, loader: Iterable, eps: float, *, device: torch.device, progress: bool = True
) -> dict:
    """Top-1 accuracy (percent) on clean and FGSM-attacked images of ``loader``."""
    clean, adv = _Counter(), _Counter()
    model.eval()
    for images, labels in _batches(loader, device, f"fgsm eps={eps:.4g}", progress):
        with torch.no_grad():
            clean.add(model(images), labels)
        attacked = fgsm_images(model, images, labels, eps)
        with torch.no_grad():
            adv.add(model(attacked), labels)
    return {"num_images": clean.total, "eps": eps, "clean_top1": clean.pct, "fgsm_top1": adv.pct, "note": FGSM_NOTE}


def occlusion_accuracy(
    model: nn.Module, loader: Iterable, sides: Sequence[int], mode: str, *, device: torch.device, progress: bool = True
) -> dict:
    """Top-1 accuracy (percent) for every occlusion side in ``sides`` (one pass over the data)."""
    counters = [_Counter() for _ in sides]
    model.eval()
    with torch.no_grad():
        for images, labels in _batches(loader, device, f"occlusion {mode}", progress):
            for counter, side in zip(counters, sides):
                counter.add(model(occlude(images, side, mode)), labels)
    return {
        "num_images": counters[0].total if counters else 0,
        "mode": mode,
        "sides": list(sides),
        "top1": [c.pct for c in counters],
        "note": OCCLUSION_NOTE,
    }


def default_sides(image_side: int, steps: int = 8) -> list[int]:
    """``steps + 1`` evenly spaced hole sides from 0 to ``image_side`` inclusive."""
    return sorted({round(image_side * i / steps) for i in range(steps + 1)})


def make_loader(dataset, batch_size: int, num_workers: int = 0) -> DataLoader:
    """Batches in dataset order; iterate it with :func:`wsol.data.loading.iterate` so that a
    worker's user error is raised as itself."""
    from wsol.data import collate
    from wsol.data.loading import CarryErrors, carry_collate, worker_init

    return DataLoader(
        CarryErrors(dataset),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=carry_collate(collate),
        worker_init_fn=worker_init,
    )
