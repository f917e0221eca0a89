"""What every dataset format produces: :class:`Record` per image and a :class:`Scan` per split.

Scanning reads annotation files only (no image is opened, no torch): ``wsol data check
--annotations-only`` and :func:`wsol.data.build_dataset` share it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval.metadata import Problem, format_problems
from wsol.errors import UserError

__all__ = ["Record", "Scan", "DatasetFormat", "Problem", "no_boxes"]


def no_boxes() -> np.ndarray:
    """An empty inclusive box array, int64 ``[0, 4]``."""
    return np.zeros((0, 4), dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Record:
    """One annotated image.

    ``boxes``: int64 ``[K, 4]`` inclusive ``(x0, y0, x1, y1)`` in original pixels (``K`` may be 0).
    ``mask_paths``: instance/segmentation mask files (empty if none); ``ignore_path``: the ignore
    mask (OpenImages) or ``None``. ``size``: original ``(width, height)`` when the annotations
    record it, else ``None`` (known once the image is opened). ``source``: the annotation
    ``file:line`` that refers to this image (named in error messages); ``label_source``: the
    ``file:line`` giving its label (empty when the label comes from a folder name);
    ``box_source``: the ``file:line`` of its boxes when another file than ``source`` holds them
    (CUB's ``bounding_boxes.txt``; empty: ``source``).
    """

    image_id: str
    path: Path
    label: int
    boxes: np.ndarray = field(default_factory=no_boxes)
    mask_paths: tuple[Path, ...] = ()
    ignore_path: Path | None = None
    size: tuple[int, int] | None = None
    source: str = ""
    label_source: str = ""
    box_source: str = ""

    @property
    def box_where(self) -> str:
        """The ``file:line`` that gives this record's boxes (``box_source``, else ``source``)."""
        return self.box_source or self.source


@dataclass
class Scan:
    """The annotation-level view of one split: records, classes and every problem found."""

    format: str
    split: str
    root: Path
    records: list[Record]
    class_names: list[str]
    problems: list[Problem] = field(default_factory=list)
    default_size: int = 224
    annotation_files: list[Path] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def raise_on_problems(self) -> None:
        """Raise :class:`UserError` listing the first problems and their count, if any."""
        if self.problems:
            raise UserError(format_problems(self.problems, f"{self.format} dataset {self.root} (split {self.split!r})"))


@dataclass(frozen=True)
class DatasetFormat:
    """A registered dataset format: ``scan(root, split, metadata_dir=None) -> Scan``; ``splits`` are
    the split names it knows (for help texts)."""

    name: str
    scan: Callable[..., Scan]
    splits: tuple[str, ...]
    description: str = ""
