"""``wsol data check``: validate a dataset tree and list every problem (never stopping at the first)."""

from __future__ import annotations

from pathlib import Path

from eval.metadata import Problem
from wsol.data.formats import scan_dataset
from wsol.data.imagenet import IMAGE_EXTENSIONS
from wsol.data.images import open_rgb, read_gray
from wsol.data.records import Record, Scan
from wsol.errors import UserError

__all__ = ["check_dataset", "check_images", "check_labels"]


def _source(record: Record, source: str | None = None) -> tuple[str, int | None]:
    """``(file, line)`` of ``source`` (default: the annotation that refers to ``record``)."""
    source = record.source if source is None else source
    file, sep, line = source.rpartition(":")
    if sep and line.isdigit():
        return file, int(line)
    return source or str(record.path), None


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
                        file,
                        line,
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
    known = {r.path.resolve() for r in scan.records}
    val = scan.root / "val"
    out = []
    for p in sorted(val.rglob("*")):
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file() and p.resolve() not in known:
            out.append(Problem(str(p), None, "image has no box annotation (not in the XML/CSV annotations)"))
    return out


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


def check_dataset(
    fmt: str,
    root: str | Path,
    split: str,
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
    no images and that one problem.
    """
    try:
        scan = scan_dataset(fmt, root, split, metadata_dir=metadata_dir)
    except UserError as exc:
        where = str(metadata_dir if fmt == "wsolevaluation" and metadata_dir is not None else root)
        return {
            "format": fmt,
            "split": split,
            "images": 0,
            "classes": 0,
            "boxes": 0,
            "masks": 0,
            "problems": [Problem(where, None, str(exc)).as_dict()],
        }
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
