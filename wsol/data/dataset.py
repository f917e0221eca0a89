"""The one dataset class for every format, ``build_dataset`` and ``collate`` (data contract)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from eval.boxes import check_inclusive_boxes
from eval.errors import InputError
from wsol import defaults
from wsol.data.formats import scan_dataset
from wsol.data.images import open_rgb, read_gray
from wsol.data.records import Record, Scan
from wsol.data.transforms import PRESETS, Preset, cutmix_resize_size, follow_boxes, to_bounding_boxes, train_transform
from wsol.errors import UserError

__all__ = ["WSOLDataset", "build_dataset", "collate"]


class WSOLDataset(Dataset):
    """Items are dicts (see ``docs/architecture.md``, Data contract):

    ``image`` (``tv_tensors.Image`` float32 ``[3, S, S]``, ImageNet-normalized), ``label`` (int),
    ``boxes`` (``tv_tensors.BoundingBoxes`` XYXY continuous, transformed frame), ``boxes_eval``
    (int64 ``[K, 4]`` inclusive in the evaluated frame by the preset's rule; in training mode the
    transformed boxes converted with ``continuous_to_inclusive``, boxes cropped away dropped),
    ``mask`` (uint8 ``[S, S]`` 1/0/255, or ``None``; always ``None`` in training mode and with a
    custom ``transform``, whose geometry the mask cannot follow),
    ``image_id``, ``orig_size`` ``(w, h)``, ``index``.

    Attributes: ``records``, ``class_names``, ``num_classes``, ``preset`` (name),
    ``preset_spec`` (:class:`Preset`), ``size``, ``train``, ``scan``.
    """

    def __init__(
        self,
        scan: Scan,
        *,
        preset: str = defaults.PRESET,
        train: bool = False,
        size: int | None = None,
        transform: Any = None,
    ) -> None:
        self.scan = scan
        self.records: list[Record] = scan.records
        self.class_names: list[str] = scan.class_names
        self.num_classes: int = scan.num_classes
        self.preset_spec: Preset = PRESETS.get(preset)
        self.preset: str = preset
        self.size: int = int(size or scan.default_size)
        self.train = train
        self._custom_transform = transform is not None
        if transform is not None:
            self.transform = transform
        elif train:
            self.transform = train_transform(self.size, resize=cutmix_resize_size(self.size))
        else:
            self.transform = self.preset_spec.transform(self.size)

    def __len__(self) -> int:
        return len(self.records)

    def describe(self) -> dict:
        """Preset and data facts to record with results."""
        return {
            **self.preset_spec.describe(self.size),
            "format": self.scan.format,
            "split": self.scan.split,
            "root": str(self.scan.root),
            "images": len(self.records),
            "classes": self.num_classes,
        }

    def __getitem__(self, index: int) -> dict:
        r = self.records[index]
        img = open_rgb(r.path, r.source)
        w, h = img.size
        if r.size is not None and tuple(r.size) != (w, h):
            raise UserError(
                f"image {r.path} is {w}x{h} but the annotations ({r.source}) record {r.size[0]}x{r.size[1]}"
            )
        if len(r.boxes):
            try:
                check_inclusive_boxes(r.boxes, w, h, where=f"{r.box_where} ({r.image_id})")
            except InputError as exc:
                raise UserError(f"{exc}; the image is rejected (boxes are never clipped)") from None
        image, boxes = self.transform(img, to_bounding_boxes(r.boxes, w, h))
        if self.train or self._custom_transform:
            boxes_eval = follow_boxes(boxes)
        else:
            boxes_eval = self.preset_spec.eval_boxes(r.boxes, (w, h), self.size)
        mask = None
        if r.mask_paths and not (self.train or self._custom_transform):
            fg = [read_gray(p, r.source) for p in r.mask_paths]
            ign = read_gray(r.ignore_path, r.source) if r.ignore_path is not None else None
            mask = self.preset_spec.mask(fg, ign, self.size)
        return {
            "image": image,
            "label": int(r.label),
            "boxes": boxes,
            "boxes_eval": boxes_eval,
            "mask": mask,
            "image_id": r.image_id,
            "orig_size": (w, h),
            "index": index,
        }


def build_dataset(
    name: str,
    root: str | Path,
    split: str,
    *,
    metadata_dir: str | Path | None = None,
    preset: str = defaults.PRESET,
    train: bool = False,
    size: int | None = None,
    transform: Any = None,
) -> WSOLDataset:
    """A dataset of format ``name`` (``DATASETS``: cub, imagenet, wsolevaluation, synthetic).

    ``size``: the side ``S`` (default 224; a synthetic tree's generated size). ``preset``:
    ``PRESETS`` name for evaluation geometry and GT rule. ``train``: training transforms
    (``Resize((R, R))`` + ``RandomCrop(S)`` + flip, ``R = round(S * 256 / 224)``), no masks.
    ``transform``: replaces the pipeline (called as ``transform(pil_image, bounding_boxes)``;
    ``boxes_eval`` then follows the transformed boxes). Annotation problems raise
    :class:`UserError` listing them; image problems raise when the item is read.
    """
    scan = scan_dataset(name, root, split, metadata_dir=metadata_dir)
    scan.raise_on_problems()
    if not scan.records:
        raise UserError(f"{name} dataset {root} (split {split!r}) has no images")
    return WSOLDataset(scan, preset=preset, train=train, size=size, transform=transform)


def collate(batch: list[dict]) -> dict:
    """Stack ``image`` (float32 ``[B, 3, S, S]`` plain tensor) and ``label`` (int64 ``[B]``); every
    other key becomes a list in batch order."""
    if not batch:
        raise ValueError("collate() needs at least one item")
    out: dict[str, Any] = {
        "image": torch.stack([b["image"].as_subclass(torch.Tensor) for b in batch]),
        "label": torch.tensor([b["label"] for b in batch], dtype=torch.long),
    }
    for key in batch[0]:
        if key not in out:
            out[key] = [b[key] for b in batch]
    return out
