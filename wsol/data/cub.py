"""CUB-200-2011 as distributed (and the synthetic benchmark, which writes the same layout).

``root`` is the ``CUB_200_2011`` folder (or a folder containing it) with::

    images/<class>/<file>           images.txt              "<id> <class>/<file>"
    classes.txt "<k> <name>"        image_class_labels.txt  "<id> <k>"   (1-based k)
    train_test_split.txt "<id> <1 train | 0 test>"
    bounding_boxes.txt "<id> <x> <y> <w> <h>"   (floats)
    segmentations/<class>/<file stem>.png       (optional)

Box reading: ``(x0, y0, x1, y1) = (floor(x), floor(y), floor(x + w), floor(y + h))`` inclusive.
This is the reading wsolevaluation's CUB metadata uses (image 1: ``60 27 325 304`` gives
``60,27,385,331``), so boxes from the raw files equal the metadata's. A box with a negative value
or a zero width or height, or a corner past ``MAX_BOX_COORD`` (2**31 - 1) pixels, is rejected (a
problem naming its line), never repaired; so is a second
image number for a file already listed. Image ids are the paths under
``images/`` (the wsolevaluation CUB ids); in ``images.txt`` the path is the rest of the line, so
it may contain spaces (and any UTF-8 character). Labels are 0-based (``k - 1``). The text files may
start with a UTF-8 BOM and use Windows (CRLF) line ends.

Synthetic trees add ``synthetic_split.txt`` ``"<id> <train|val|test>"`` (their
``train_test_split.txt`` marks train and val as 1, test as 0) and ``synthetic.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from eval.metadata import MAX_CLASSES, Problem
from wsol.data.records import Record, Scan, no_boxes
from wsol.data.textfiles import read_table
from wsol.errors import UserError

__all__ = ["scan_cub", "scan_synthetic", "find_cub_root", "CUB_SPLITS", "SYNTHETIC_SPLITS"]

CUB_SPLITS = ("train", "test", "all")
SYNTHETIC_SPLITS = ("train", "val", "test", "all")
#: the largest box corner accepted (pixels): no image is larger; a bigger value is a typo (and
#: 1e300 would not even fit the int64 boxes)
MAX_BOX_COORD = 2**31 - 1


def find_cub_root(root: str | Path) -> Path:
    """``root`` itself if it holds ``images.txt``, else ``root/CUB_200_2011`` if that does."""
    root = Path(root)
    if (root / "images.txt").is_file():
        return root
    if (root / "CUB_200_2011" / "images.txt").is_file():
        return root / "CUB_200_2011"
    if root.exists() and not root.is_dir():
        raise UserError(f"dataset root {root} is a file, not a folder")
    if not root.is_dir():
        raise UserError(f"dataset root {root} does not exist")
    return root  # scanning reports the missing files


def _parse_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def scan_cub(
    root: str | Path,
    split: str = "test",
    *,
    metadata_dir: str | Path | None = None,
    split_file: str | None = None,
    split_names: dict[str, str] | None = None,
    fmt_name: str = "cub",
    default_size: int = 224,
) -> Scan:
    """Read a CUB-200-2011 tree's annotation files (no image is opened).

    ``split``: ``train`` / ``test`` / ``all`` (from ``train_test_split.txt``). ``split_file`` and
    ``split_names`` let another layout (synthetic) map per-image split words instead.
    ``metadata_dir`` is not used by this format (must be ``None``).
    """
    if metadata_dir is not None:
        raise UserError(f"--metadata-dir is not used by the {fmt_name} format")
    root = find_cub_root(root)
    problems: list[Problem] = []
    f_images, f_labels = root / "images.txt", root / "image_class_labels.txt"
    f_split, f_boxes, f_classes = root / "train_test_split.txt", root / "bounding_boxes.txt", root / "classes.txt"

    classes = read_table(f_classes, 2, "'<class_number> <class_name>'", problems, split_max=1)
    class_names: list[str] = []
    for lineno, (num, name) in classes:
        k = _parse_int(num)
        if k != len(class_names) + 1:
            problems.append(
                Problem(
                    str(f_classes),
                    lineno,
                    f"expected class number {len(class_names) + 1} (1-based, in order), got {num!r}",
                )
            )
        class_names.append(name)
    n_classes = len(class_names)

    images: dict[int, tuple[int, str]] = {}
    by_path: dict[str, tuple[int, int]] = {}  # image path -> (image number, line): ids must be unique
    rejected: set[int] = set()  # numbers whose images.txt line was rejected (already reported)
    # the path is the rest of the line, so file and folder names may contain spaces
    for lineno, (sid, rel) in read_table(f_images, 2, "'<image_id> <class>/<file>'", problems, split_max=1):
        iid = _parse_int(sid)
        if iid is None:
            problems.append(Problem(str(f_images), lineno, f"image number {sid!r} is not an integer; line skipped"))
        elif iid in images:
            problems.append(
                Problem(
                    str(f_images),
                    lineno,
                    f"duplicate image number {iid} (first on line {images[iid][0]}); line skipped",
                )
            )
        elif rel in by_path:
            first, first_line = by_path[rel]
            problems.append(
                Problem(
                    str(f_images),
                    lineno,
                    f"duplicate image {rel!r}: already image number {first} (line {first_line}); line skipped",
                )
            )
            rejected.add(iid)
        else:
            images[iid] = (lineno, rel)
            by_path[rel] = (iid, lineno)

    def per_image(path: Path, ncols: int, fmt: str) -> dict[int, tuple[int, list[str]]]:
        out: dict[int, tuple[int, list[str]]] = {}
        for lineno, parts in read_table(path, ncols, fmt, problems):
            iid = _parse_int(parts[0])
            if iid is None:
                problems.append(
                    Problem(str(path), lineno, f"image number {parts[0]!r} is not an integer; line skipped")
                )
            elif iid in rejected:
                continue
            elif iid not in images:
                problems.append(Problem(str(path), lineno, f"image number {iid} is not in images.txt; line skipped"))
            elif iid in out:
                problems.append(
                    Problem(
                        str(path), lineno, f"duplicate line for image {iid} (first on line {out[iid][0]}); line skipped"
                    )
                )
            else:
                out[iid] = (lineno, parts[1:])
        for iid, (lineno, rel) in images.items():
            if iid not in out and path.is_file():
                problems.append(
                    Problem(str(path), None, f"image {iid} ({rel}, images.txt line {lineno}) has no valid line here")
                )
        return out

    labels = per_image(f_labels, 2, "'<image_id> <class_number>'")
    boxes = per_image(f_boxes, 5, "'<image_id> <x> <y> <width> <height>'")
    split_path = root / split_file if split_file else f_split
    splits = per_image(split_path, 2, "'<image_id> <split>'")
    words = split_names or {"1": "train", "0": "test"}
    valid = set(words.values()) | {"all"}
    if split not in valid:
        raise UserError(f"unknown split {split!r} for the {fmt_name} format; choose from: {', '.join(sorted(valid))}")

    seg_root = root / "segmentations"
    has_seg = seg_root.is_dir()
    records: list[Record] = []
    for iid in sorted(images):
        lineno, rel = images[iid]
        source = f"{f_images}:{lineno}"
        if iid not in splits:
            continue
        s_line, (word,) = splits[iid]
        if word not in words:
            problems.append(
                Problem(
                    str(split_path),
                    s_line,
                    f"split value {word!r} of image {iid} is not one of {sorted(words)}; image skipped",
                )
            )
            continue
        if split != "all" and words[word] != split:
            continue
        if iid not in labels:
            continue
        l_line, (lab,) = labels[iid]
        k = _parse_int(lab)
        # without classes.txt (reported) the classes are numbered from the labels: bounded first
        if k is None or k < 1 or k > (n_classes or MAX_CLASSES):
            problems.append(
                Problem(
                    str(f_labels),
                    l_line,
                    f"class number {lab!r} of image {iid} is out of range 1..{n_classes or MAX_CLASSES}"
                    f"{'' if n_classes else f' (at most {MAX_CLASSES} classes)'}; image skipped",
                )
            )
            continue
        box, box_source = no_boxes(), ""
        if iid in boxes:
            b_line, vals = boxes[iid]
            box_source = f"{f_boxes}:{b_line}"
            box_or_err = _cub_box(vals)
            if isinstance(box_or_err, str):
                problems.append(Problem(str(f_boxes), b_line, f"{box_or_err} for image {iid}; box rejected"))
            else:
                box = box_or_err
        mask_paths = (seg_root / Path(rel).with_suffix(".png"),) if has_seg else ()
        records.append(
            Record(
                image_id=rel,
                path=root / "images" / rel,
                label=k - 1,
                boxes=box,
                mask_paths=mask_paths,
                source=source,
                label_source=f"{f_labels}:{l_line}",
                box_source=box_source,
            )
        )
    if not class_names and records:  # classes.txt missing (reported): number the classes
        class_names = [f"class_{k:03d}" for k in range(max(r.label for r in records) + 1)]
    files = [f_images, f_labels, split_path, f_boxes, f_classes]
    return Scan(
        format=fmt_name,
        split=split,
        root=root,
        records=records,
        class_names=class_names,
        problems=problems,
        default_size=default_size,
        annotation_files=files,
    )


def _cub_box(vals: list[str]) -> np.ndarray | str:
    try:
        x, y, w, h = (float(v) for v in vals)
    except ValueError:
        return f"expected numbers x y width height, got {' '.join(vals)!r}"
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return f"non-finite box values {' '.join(vals)!r}"
    if x < 0 or y < 0 or w < 0 or h < 0:
        return f"box x={x:g} y={y:g} w={w:g} h={h:g} has a negative coordinate or size"
    if w == 0 or h == 0:
        return f"zero-area box x={x:g} y={y:g} w={w:g} h={h:g} (width and height must be > 0)"
    if x + w > MAX_BOX_COORD or y + h > MAX_BOX_COORD:
        return f"box x={x:g} y={y:g} w={w:g} h={h:g} out of range (corners must be at most {MAX_BOX_COORD} pixels)"
    return np.array([[math.floor(x), math.floor(y), math.floor(x + w), math.floor(y + h)]], dtype=np.int64)


def read_synthetic_info(root: Path) -> dict:
    path = root / "synthetic.json"
    if not path.is_file():
        raise UserError(f"{path} is missing: not a tree written by `wsol data synth`")
    try:
        info = json.loads(path.read_text(encoding="utf-8-sig"))
        int(info["size"])
    except (ValueError, KeyError, TypeError) as exc:  # UnicodeDecodeError is a ValueError
        raise UserError(f"{path}: not a valid synthetic.json ({exc})") from None
    return info


def scan_synthetic(root: str | Path, split: str = "test", *, metadata_dir: str | Path | None = None) -> Scan:
    """A tree written by ``wsol data synth``: the CUB layout plus ``synthetic_split.txt``
    (splits ``train`` / ``val`` / ``test``) and ``synthetic.json`` (``size``: the default ``S``)."""
    root = find_cub_root(root)
    info = read_synthetic_info(root)
    return scan_cub(
        root,
        split,
        metadata_dir=metadata_dir,
        split_file="synthetic_split.txt",
        split_names={"train": "train", "val": "val", "test": "test"},
        fmt_name="synthetic",
        default_size=int(info["size"]),
    )
