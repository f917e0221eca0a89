"""The registry of dataset formats (``--format`` / ``build_dataset`` names). Torch-free."""

from __future__ import annotations

from pathlib import Path

from wsol.data.cub import CUB_SPLITS, SYNTHETIC_SPLITS, scan_cub, scan_synthetic
from wsol.data.imagenet import IMAGENET_SPLITS, scan_imagenet
from wsol.data.records import DatasetFormat, Problem, Scan
from wsol.data.wsoleval import WSOLEVAL_SPLITS, scan_wsolevaluation
from wsol.registry import Registry

__all__ = ["DATASETS", "scan_dataset"]

DATASETS: Registry[DatasetFormat] = Registry("dataset format")

_FORMATS = [
    DatasetFormat("cub", scan_cub, CUB_SPLITS, "CUB-200-2011 as distributed (CUB_200_2011/ with images.txt, ...)"),
    DatasetFormat(
        "imagenet",
        scan_imagenet,
        IMAGENET_SPLITS,
        "ImageNet ILSVRC2012 (train/<wnid>/, val/ + ILSVRC2012_bbox_val_v3 XML or LOC_val_solution.csv)",
    ),
    DatasetFormat(
        "wsolevaluation",
        scan_wsolevaluation,
        WSOLEVAL_SPLITS,
        "wsolevaluation layout: images under --root, metadata under --metadata-dir",
    ),
    DatasetFormat(
        "synthetic",
        scan_synthetic,
        SYNTHETIC_SPLITS,
        "the embedded synthetic benchmark (`wsol data synth`; CUB layout + val split)",
    ),
]
for _fmt in _FORMATS:
    DATASETS.register(_fmt.name, help=_fmt.description)(_fmt)


def scan_dataset(name: str, root: str | Path, split: str, *, metadata_dir: str | Path | None = None) -> Scan:
    """Annotation-level scan of one split (no image opened); problems collected in ``.problems``.
    A split without any image is a problem (naming the annotation file) unless other problems
    already explain it."""
    scan = DATASETS.get(name).scan(root, split, metadata_dir=metadata_dir)
    if not scan.records and not scan.problems:
        files = scan.annotation_files
        where = next((f for f in files if "split" in f.name), files[0] if files else scan.root)
        scan.problems.append(Problem(str(where), None, f"split {split!r} has no image: there is nothing to evaluate"))
    return scan
