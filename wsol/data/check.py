"""``wsol data check``: validate a dataset tree and list every problem (never stopping at the first)."""

from __future__ import annotations

from pathlib import Path

from eval.metadata import Problem
from wsol.data.formats import scan_dataset
from wsol.data.imagenet import IMAGE_EXTENSIONS, IMAGENET_SPLITS
from wsol.data.images import open_rgb, read_gray
from wsol.data.records import Record, Scan
from wsol.errors import UserError

__all__ = ["check_dataset", "check_images", "check_labels", "default_splits", "unannotated_images"]


def _source(record: Record, source: str | None = None) -> tuple[str, int | None]:
    """``(file, line)`` of ``source`` (default: the annotation that refers to ``record``)."""
    source = record.source if source is None else source
    file, sep, line = source.rpartition(":")
    if sep and line.isdigit():
        return file, int(line)
    return source or str(record.path), None


def _box_source(record: Record) -> tuple[str, int | None]:
    """``(file, line)`` of the annotation giving ``record``'s boxes (CUB: its ``bounding_boxes.txt``
    line), else of the annotation that refers to it."""
    return _source(record, record.box_where)


def check_images(scan: Scan) -> list[Problem]:
    """Open every image (fully decoded) and mask of ``scan``; report unreadable files, sizes that
    differ from the annotations, boxes outside the real image (such an image is rejected: reading it
    from a dataset raises), and (ImageNet val) image files no annotation refers to."""
    problems: list[Problem] = []
    for r in scan.records:
        file, line = _source(r)
        try:
            w, h = open_rgb(r.path).size
        except UserError as exc:
            problems.append(Problem(file, line, str(exc)))
            continue
        if r.size is not None and tuple(r.size) != (w, h):
            problems.append(
                Problem(file, line, f"image {r.path} is {w}x{h} but the annotations record {r.size[0]}x{r.size[1]}")
            )
        for b in r.boxes.tolist():
            if b[2] > w - 1 or b[3] > h - 1:
                problems.append(
                    Problem(
                        *_box_source(r),
                        f"box {tuple(b)} of {r.image_id} lies outside the {w}x{h} "
                        "image; rejected (reading this image raises), not clipped",
                    )
                )
        for m in (*r.mask_paths, *([r.ignore_path] if r.ignore_path is not None else [])):
            try:
                read_gray(m)
            except UserError as exc:
                problems.append(Problem(file, line, str(exc)))
    if scan.format == "imagenet" and scan.split == "val":
        problems.extend(_unannotated(scan))
    return problems


def _unannotated(scan: Scan) -> list[Problem]:
    return [
        Problem(str(p), None, "image has no box annotation (not in the XML/CSV annotations)")
        for p in unannotated_images(scan)
    ]


def unannotated_images(scan: Scan) -> list[Path]:
    """The images under an ImageNet scan's ``val/`` that no box annotation names (they are not in
    the split: a partial LOC_val_solution.csv evaluates a subset); empty for other scans."""
    if scan.format != "imagenet" or scan.split != "val":
        return []
    known = {r.path.resolve() for r in scan.records}
    return [
        p
        for p in sorted((scan.root / "val").rglob("*"))
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and p.resolve() not in known
    ]


def check_labels(scan: Scan, num_classes: int) -> list[Problem]:
    """One problem per record whose 0-based label is not below ``num_classes`` (e.g. the classes of
    the model to evaluate: wsolevaluation metadata does not declare a class count), at the
    ``file:line`` that gives the label."""
    problems = []
    for r in scan.records:
        if r.label >= num_classes:
            file, line = _source(r, r.label_source or r.source)
            problems.append(
                Problem(
                    file,
                    line,
                    f"label {r.label} of {r.image_id!r} is out of range for "
                    f"{num_classes} classes (0-based labels 0..{num_classes - 1})",
                )
            )
    return problems


def default_splits(fmt: str, root: str | Path) -> tuple[str, ...]:
    """The splits ``wsol data check`` reads without ``--split``: ``test``, except for ImageNet,
    which has none: the ones of ``train`` and ``val`` that ``root`` holds (``val`` when neither,
    so that the report says what is missing)."""
    if fmt != "imagenet":
        return ("test",)
    root = Path(root)
    images = root if any((root / s).is_dir() for s in IMAGENET_SPLITS) else root / "ILSVRC" / "Data" / "CLS-LOC"
    return tuple(s for s in IMAGENET_SPLITS if (images / s).is_dir()) or ("val",)


def _merge(reports: list[dict]) -> dict:
    """One report of several splits: counts summed (classes: the largest), problems concatenated,
    ``split`` the names joined by ``+``."""
    out = dict(reports[0])
    out["split"] = "+".join(r["split"] for r in reports)
    for key in ("images", "boxes", "masks"):
        out[key] = sum(r[key] for r in reports)
    out["classes"] = max(r["classes"] for r in reports)
    out["problems"] = [p for r in reports for p in r["problems"]]
    return out


def _unreadable(fmt: str, split: str, problem: Problem) -> dict:
    """The report of a tree that cannot be read at all: no images and that one problem."""
    return {
        "format": fmt,
        "split": split,
        "images": 0,
        "classes": 0,
        "boxes": 0,
        "masks": 0,
        "problems": [problem.as_dict()],
    }


def check_dataset(
    fmt: str,
    root: str | Path,
    split: str | None = None,
    *,
    metadata_dir: str | Path | None = None,
    annotations_only: bool = False,
    num_classes: int | None = None,
) -> dict:
    """The ``wsol data check`` report: ``{"format", "split", "images", "classes", "boxes", "masks",
    "problems": [{"file", "line", "message"}]}`` (``line`` 1-based or ``None``).

    ``annotations_only`` checks the annotation files without opening any image or mask.
    ``num_classes``: also list every label ``>= num_classes`` (:func:`check_labels`).
    A tree that cannot be read at all (missing root or metadata, unknown split) gives a report with
    no images and that one problem. ``split=None``: the splits of :func:`default_splits` (several
    give one merged report, ``"split": "train+val"``).
    """
    if split is None:
        reports = [
            check_dataset(
                fmt,
                root,
                s,
                metadata_dir=metadata_dir,
                annotations_only=annotations_only,
                num_classes=num_classes,
            )
            for s in default_splits(fmt, root)
        ]
        return reports[0] if len(reports) == 1 else _merge(reports)
    if Path(root).exists() and not Path(root).is_dir():
        return _unreadable(fmt, split, Problem(str(root), None, f"dataset root {root} is a file, not a folder"))
    try:
        scan = scan_dataset(fmt, root, split, metadata_dir=metadata_dir)
    except UserError as exc:
        where = str(metadata_dir if fmt == "wsolevaluation" and metadata_dir is not None else root)
        return _unreadable(fmt, split, Problem(where, None, str(exc)))
    problems = list(scan.problems)
    if num_classes is not None:
        problems.extend(check_labels(scan, num_classes))
    if not annotations_only:
        problems.extend(check_images(scan))
    return {
        "format": fmt,
        "split": scan.split,  # as resolved: a wsolevaluation split folder given directly names it
        "images": len(scan.records),
        "classes": scan.num_classes,
        "boxes": int(sum(len(r.boxes) for r in scan.records)),
        "masks": int(sum(len(r.mask_paths) for r in scan.records)),
        "problems": [p.as_dict() for p in problems],
    }
