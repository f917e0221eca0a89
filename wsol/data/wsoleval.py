"""The wsolevaluation layout: images under a data root, annotations in a metadata split folder.

``root`` is the dataset root that image ids (and OpenImages mask paths) are relative to, e.g.
``dataset/CUB``, ``dataset/ILSVRC``, ``dataset/OpenImages``. ``metadata_dir`` is either the split
folder itself (``metadata/CUB/test``, holding ``image_ids.txt``) or its parent
(``metadata/CUB``), in which case ``split`` picks the sub-folder. File formats: protocol section 4,
parsed by :func:`eval.metadata.read_split`.
"""

from __future__ import annotations

from pathlib import Path

from eval.metadata import read_split
from wsol.data.records import Record, Scan, no_boxes
from wsol.errors import UserError

__all__ = ["scan_wsolevaluation", "resolve_split_dir", "WSOLEVAL_SPLITS"]

WSOLEVAL_SPLITS = ("train", "val", "test")


def resolve_split_dir(metadata_dir: str | Path | None, split: str) -> Path:
    """The folder holding ``image_ids.txt`` for ``split`` (see the module docstring)."""
    if metadata_dir is None:
        raise UserError("the wsolevaluation format needs --metadata-dir (e.g. metadata/CUB or metadata/CUB/test)")
    md = Path(metadata_dir)
    if (md / split / "image_ids.txt").is_file():
        return md / split
    if (md / "image_ids.txt").is_file():
        return md
    raise UserError(
        f"no wsolevaluation metadata for split {split!r}: neither {md / split / 'image_ids.txt'} "
        f"nor {md / 'image_ids.txt'} exists"
    )


def scan_wsolevaluation(root: str | Path, split: str = "test", *, metadata_dir: str | Path | None = None) -> Scan:
    """Records of one wsolevaluation split (no image opened); problems from the metadata parser."""
    split_dir = resolve_split_dir(metadata_dir, split)
    root = Path(root)
    meta = read_split(split_dir, strict=False)
    ids_file = split_dir / "image_ids.txt"
    records: list[Record] = []
    for iid in meta.image_ids:
        if iid not in meta.labels:
            continue  # reported by the parser
        masks = tuple(root / m for m in meta.masks.get(iid, ()))
        ign = meta.ignore.get(iid)
        records.append(
            Record(
                image_id=iid,
                path=root / iid,
                label=meta.labels[iid],
                boxes=meta.boxes.get(iid, no_boxes()),
                mask_paths=masks,
                ignore_path=root / ign if ign else None,
                size=meta.sizes.get(iid),
                source=f"{ids_file}:{meta.id_lines.get(iid, '?')}",
                label_source=f"{split_dir / 'class_labels.txt'}:{meta.label_lines.get(iid, '?')}",
            )
        )
    class_names = [str(k) for k in range(meta.num_classes)]
    files = [split_dir / n for n in ("image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt")]
    return Scan(
        format="wsolevaluation",
        split=split_dir.name,
        root=root,
        records=records,
        class_names=class_names,
        problems=list(meta.problems),
        default_size=224,
        annotation_files=files,
    )
