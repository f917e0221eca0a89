"""ImageNet ILSVRC2012 as distributed.

Image folder (``root`` itself, or ``root/ILSVRC/Data/CLS-LOC`` as in the Kaggle copy)::

    train/<wnid>/<file>.JPEG
    val/ILSVRC2012_val_XXXXXXXX.JPEG        (flat)  or  val/<wnid>/ILSVRC2012_val_XXXXXXXX.JPEG

Validation boxes from either per-image XML files (``ILSVRC2012_bbox_val_v3``, looked up in
``root/ILSVRC2012_bbox_val_v3/val``, ``root/ILSVRC2012_bbox_val_v3``, ``root/val_xml``,
``root/ILSVRC/Annotations/CLS-LOC/val``) or ``root/LOC_val_solution.csv``
(``ImageId,PredictionString`` with ``"<wnid> x0 y0 x1 y1"`` repeated). XML is used when both exist.
Coordinates are taken as inclusive pixels as written (the wsolevaluation ILSVRC metadata equals
them). Several boxes per image. Labels: index of the WNID in sorted-WNID order (torchvision
``ImageFolder`` order) from the ``train/`` class folders, else from ``root/LOC_synset_mapping.txt``,
else from ``val/<wnid>/`` folders. Image ids are paths relative to the image folder.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from eval.metadata import Problem, read_lines
from wsol.data.records import Record, Scan, no_boxes
from wsol.errors import UserError

__all__ = ["scan_imagenet", "IMAGENET_SPLITS", "IMAGE_EXTENSIONS"]

IMAGENET_SPLITS = ("train", "val")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_XML_DIRS = ("ILSVRC2012_bbox_val_v3/val", "ILSVRC2012_bbox_val_v3", "val_xml", "ILSVRC/Annotations/CLS-LOC/val")


def _images_root(root: Path) -> Path:
    if (root / "train").is_dir() or (root / "val").is_dir():
        return root
    kaggle = root / "ILSVRC" / "Data" / "CLS-LOC"
    if kaggle.is_dir():
        return kaggle
    if not root.is_dir():
        raise UserError(f"dataset root {root} does not exist")
    raise UserError(f"no ImageNet image folders under {root}: expected {root}/train/<wnid>/ or {root}/val/")


def _subdirs(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []


def _classes(root: Path, images_root: Path, problems: list[Problem]) -> tuple[list[str], list[str]]:
    """``(wnids in sorted order, display names)``."""
    train = _subdirs(images_root / "train")
    mapping = root / "LOC_synset_mapping.txt"
    names: dict[str, str] = {}
    if mapping.is_file():
        for i, line in enumerate(read_lines(mapping, problems, required=False) or (), 1):
            parts = line.split(None, 1)
            if not parts:
                problems.append(Problem(str(mapping), i, "empty line (expected '<wnid> <name>'); line skipped"))
                continue
            names[parts[0]] = parts[1] if len(parts) > 1 else parts[0]
    if train:
        wnids = train
    elif names:
        wnids = sorted(names)
    else:
        wnids = _subdirs(images_root / "val")
    if not wnids:
        raise UserError(
            f"cannot tell the ImageNet class order under {root}: need {images_root}/train/<wnid>/ "
            f"folders, {mapping}, or {images_root}/val/<wnid>/ folders"
        )
    return wnids, [names.get(w, w) for w in wnids]


def scan_imagenet(root: str | Path, split: str = "val", *, metadata_dir: str | Path | None = None) -> Scan:
    """Records of the ``train`` or ``val`` split (no image opened). Train images have no boxes."""
    if metadata_dir is not None:
        raise UserError("--metadata-dir is not used by the imagenet format (use --format wsolevaluation)")
    if split not in IMAGENET_SPLITS:
        raise UserError(f"unknown split {split!r} for the imagenet format; choose from: {', '.join(IMAGENET_SPLITS)}")
    root = Path(root)
    images_root = _images_root(root)
    problems: list[Problem] = []
    wnids, names = _classes(root, images_root, problems)
    index = {w: k for k, w in enumerate(wnids)}
    if split == "train":
        records, files = _scan_train(images_root, wnids), [images_root / "train"]
    else:
        records, files = _scan_val(root, images_root, index, problems)
    return Scan(
        format="imagenet",
        split=split,
        root=images_root,
        records=records,
        class_names=names,
        problems=problems,
        default_size=224,
        annotation_files=files,
    )


def _scan_train(images_root: Path, wnids: list[str]) -> list[Record]:
    records = []
    for k, wnid in enumerate(wnids):
        folder = images_root / "train" / wnid
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
                rel = f"train/{wnid}/{p.name}"
                records.append(Record(image_id=rel, path=p, label=k, source=f"{folder}/ (class folder {k})"))
    return records


def _val_path(images_root: Path, stem: str, wnid: str | None, class_folders: bool) -> tuple[str, Path]:
    rel = f"val/{wnid}/{stem}.JPEG" if class_folders and wnid else f"val/{stem}.JPEG"
    return rel, images_root / rel


def _scan_val(
    root: Path, images_root: Path, index: dict[str, int], problems: list[Problem]
) -> tuple[list[Record], list[Path]]:
    class_folders = bool(_subdirs(images_root / "val"))
    xml_dir = next((root / d for d in _XML_DIRS if (root / d).is_dir() and any((root / d).glob("*.xml"))), None)
    csv_path = root / "LOC_val_solution.csv"
    if xml_dir is not None:
        entries = [_parse_xml(p, problems) for p in sorted(xml_dir.glob("*.xml"))]
        files = [xml_dir]
    elif csv_path.is_file():
        entries = _parse_csv(csv_path, problems)
        files = [csv_path]
    else:
        raise UserError(
            f"no ImageNet validation boxes under {root}: expected per-image XML files in "
            f"{root / _XML_DIRS[0]} (ILSVRC2012_bbox_val_v3) or {csv_path}"
        )
    records = []
    for entry in sorted((e for e in entries if e is not None), key=lambda e: e["stem"]):
        wnid, source = entry["wnid"], entry["source"]
        if wnid not in index:
            problems.append(
                Problem(
                    entry["file"],
                    entry["line"],
                    f"class {wnid!r} of {entry['stem']} is not one of the {len(index)} known classes; image skipped",
                )
            )
            continue
        rel, path = _val_path(images_root, entry["stem"], wnid, class_folders)
        records.append(
            Record(image_id=rel, path=path, label=index[wnid], boxes=entry["boxes"], size=entry["size"], source=source)
        )
    return records, files


def _check_boxes(
    boxes: list[list[int]],
    size: tuple[int, int] | None,
    file: str,
    line: int | None,
    stem: str,
    problems: list[Problem],
) -> np.ndarray:
    good = []
    for b in boxes:
        x0, y0, x1, y1 = b
        if x0 < 0 or y0 < 0 or x1 < x0 or y1 < y0:
            problems.append(
                Problem(
                    file,
                    line,
                    f"invalid inclusive box {tuple(b)} of {stem} (need 0 <= x0 <= x1, 0 <= y0 <= y1); box rejected",
                )
            )
        elif size is not None and (x1 > size[0] - 1 or y1 > size[1] - 1):
            problems.append(
                Problem(
                    file,
                    line,
                    f"box {tuple(b)} of {stem} lies outside the {size[0]}x{size[1]} image; box rejected (not clipped)",
                )
            )
        else:
            good.append(b)
    return np.asarray(good, dtype=np.int64).reshape(-1, 4) if good else no_boxes()


def _parse_xml(path: Path, problems: list[Problem]) -> dict | None:
    file = str(path)
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        problems.append(Problem(file, exc.position[0], f"malformed XML ({exc}); image skipped"))
        return None
    except OSError as exc:
        problems.append(Problem(file, None, f"cannot read ({exc}); image skipped"))
        return None
    top = tree.getroot()
    stem = (top.findtext("filename") or path.stem).strip()
    if stem.lower().endswith((".jpeg", ".jpg")):
        stem = stem.rsplit(".", 1)[0]
    size = None
    try:
        w, h = int(top.findtext("size/width")), int(top.findtext("size/height"))
        size = (w, h) if w > 0 and h > 0 else None
    except (TypeError, ValueError):
        pass
    if size is None:
        problems.append(Problem(file, None, "missing or invalid <size><width>/<height>; sizes not checked"))
    boxes, wnids = [], []
    for obj in top.iter("object"):
        wnids.append((obj.findtext("name") or "").strip())
        try:
            boxes.append([int(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")])
        except (TypeError, ValueError):
            problems.append(
                Problem(file, None, f"object {len(wnids)} has a missing or non-integer <bndbox>; box rejected")
            )
    if not wnids:
        problems.append(Problem(file, None, "no <object> element; image skipped"))
        return None
    if len(set(wnids)) > 1:
        problems.append(
            Problem(
                file,
                None,
                f"objects of several classes {sorted(set(wnids))}; the first ({wnids[0]}) is used as the image label",
            )
        )
    return {
        "stem": stem,
        "wnid": wnids[0],
        "boxes": _check_boxes(boxes, size, file, None, stem, problems),
        "size": size,
        "file": file,
        "line": None,
        "source": file,
    }


def _parse_csv(path: Path, problems: list[Problem]) -> list[dict]:
    file = str(path)
    lines = read_lines(path, problems, required=True) or []
    out: list[dict] = []
    if not lines or lines[0].strip().replace(" ", "") != "ImageId,PredictionString":
        problems.append(Problem(file, 1, "expected the header 'ImageId,PredictionString'"))
    seen: dict[str, int] = {}
    for lineno, row in enumerate(csv.reader(io.StringIO("\n".join(lines[1:]))), 2):
        if len(row) != 2 or not row[0]:
            problems.append(
                Problem(file, lineno, f"expected 'ImageId,PredictionString', got {len(row)} field(s); line skipped")
            )
            continue
        stem, pred = row[0].strip(), row[1].split()
        if stem in seen:
            problems.append(Problem(file, lineno, f"duplicate image {stem} (first on line {seen[stem]}); line skipped"))
            continue
        seen[stem] = lineno
        if not pred or len(pred) % 5:
            problems.append(
                Problem(
                    file,
                    lineno,
                    "expected groups of '<wnid> x0 y0 x1 y1' in PredictionString, "
                    f"got {len(pred)} value(s); line skipped",
                )
            )
            continue
        groups = [pred[i : i + 5] for i in range(0, len(pred), 5)]
        wnids = [g[0] for g in groups]
        try:
            boxes = [[int(v) for v in g[1:]] for g in groups]
        except ValueError:
            problems.append(Problem(file, lineno, "non-integer box coordinate in PredictionString; line skipped"))
            continue
        if len(set(wnids)) > 1:
            problems.append(
                Problem(
                    file,
                    lineno,
                    f"boxes of several classes {sorted(set(wnids))}; the first ({wnids[0]}) is used as the image label",
                )
            )
        out.append(
            {
                "stem": stem,
                "wnid": wnids[0],
                "boxes": _check_boxes(boxes, None, file, lineno, stem, problems),
                "size": None,
                "file": file,
                "line": lineno,
                "source": f"{file}:{lineno}",
            }
        )
    return out
