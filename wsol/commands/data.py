"""``wsol data``: generate the synthetic benchmark (``synth``), validate a dataset tree (``check``) or
download a public dataset (``fetch``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "generate the synthetic benchmark (synth), validate a dataset tree (check), download one (fetch)"
DESCRIPTION = (
    HELP
    + """

  wsol data synth --out DIR [--classes 10] [--train-per-class 100] [--val-per-class 20]
                  [--test-per-class 50] [--size 64] [--seed 0]
      Writes the embedded localization-hard benchmark in the CUB-200-2011 layout (plus a held-out
      `val` split in synthetic_split.txt). Same seed -> byte-identical files. Read it back with
      --dataset synthetic (or cub). The tree is written into a hidden sibling folder and renamed
      into place when complete (--overwrite replaces the old tree only then): an interrupted run
      leaves nothing behind. --size is 32..1024, --classes >= 2, --seed >= 0.

  wsol data check --format {cub,imagenet,wsolevaluation,synthetic} --root DIR
                  [--metadata-dir DIR] [--split SPLIT] [--annotations-only] [--num-classes K]
      Without --split: test (imagenet: the tree's train and/or val, in one report, "split":
      "train+val"). Prints one JSON object {"format", "split", "images", "classes", "boxes", "masks",
      "problems": [{"file", "line", "message"}]} listing every problem found. Exit status 0 when
      there is none, 1 otherwise.

  wsol data fetch {cub,wsolevaluation-metadata,imagenet} --root DIR [--mirror M] [--no-progress]
      cub: downloads CUB_200_2011.tgz (md5 checked) into the cache ($WSOL_CACHE, default
      ~/.cache/wsol), unpacks it into DIR (DIR/CUB_200_2011) and runs `data check` on it (exit 0/1).
      wsolevaluation-metadata: the metadata of clovaai/wsolevaluation at the pinned commit, every
      file sha256-checked, into DIR/<CUB|ILSVRC|OpenImages>/<split>/ (--dataset to choose).
      imagenet: prints the manual steps (licence-bound) and runs `data check` when DIR exists.
      --mirror (or $WSOL_MIRROR): a folder or http(s) URL serving <mirror>/<file name> (an offline
      cluster's copy); a source that cannot be reached names the URL and the cache path where a
      hand-downloaded file can be put (exit 2).

Examples:
  wsol data synth --out data/synth --seed 0
  wsol data check --format cub --root CUB_200_2011 --split test
  wsol data check --format wsolevaluation --root dataset/ILSVRC \\
      --metadata-dir metadata/ILSVRC --split test --annotations-only
"""
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="{synth,check,fetch}", required=True)

    from wsol.data.synthetic import MAX_SIZE, MIN_SIZE, SynthConfig  # numpy only: keeps `wsol data --help` torch-free

    d = SynthConfig()
    s = sub.add_parser(
        "synth",
        help="write the synthetic benchmark (CUB-200-2011 layout)",
        description="Write the embedded localization-hard synthetic benchmark.",
    )
    s.add_argument("--out", required=True, help="output folder (must be empty or a previous synthetic tree)")
    s.add_argument("--classes", type=int, default=d.classes, help="classes (default: %(default)s)")
    s.add_argument(
        "--train-per-class",
        type=int,
        default=d.train_per_class,
        help="training images per class (default: %(default)s)",
    )
    s.add_argument(
        "--val-per-class",
        type=int,
        default=d.val_per_class,
        help="held-out validation images per class (split 'val'; default: %(default)s)",
    )
    s.add_argument(
        "--test-per-class", type=int, default=d.test_per_class, help="test images per class (default: %(default)s)"
    )
    s.add_argument(
        "--size",
        type=int,
        default=d.size,
        help=f"image side in pixels, {MIN_SIZE}..{MAX_SIZE} (default: %(default)s)",
    )
    s.add_argument("--seed", type=int, default=d.seed, help="random seed (default: %(default)s)")
    s.add_argument("--overwrite", action="store_true", help="replace a synthetic tree already in --out")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    from wsol.data.formats import DATASETS

    c = sub.add_parser(
        "check",
        help="validate a dataset tree; print one JSON object",
        description="Validate a dataset tree and list every problem as JSON.",
    )
    # --dataset / --data-root: the spelling of evaluate, train and the other commands
    c.add_argument(
        "--format",
        "--dataset",
        dest="format",
        required=True,
        choices=DATASETS.names(),
        help="dataset format: %(choices)s",
    )
    c.add_argument(
        "--root",
        "--data-root",
        dest="root",
        required=True,
        help="dataset root (folder the image paths are relative to)",
    )
    c.add_argument(
        "--metadata-dir",
        default=None,
        help="wsolevaluation metadata folder (metadata/<DATASET> or metadata/<DATASET>/<split>)",
    )
    c.add_argument(
        "--split",
        default=None,
        help="split to check (default: test; imagenet: the ones of train and val the tree has, in one report)",
    )
    c.add_argument(
        "--annotations-only", action="store_true", help="check annotation files only; do not open images or masks"
    )
    c.add_argument(
        "--num-classes",
        type=int,
        default=None,
        metavar="K",
        help="also list every label >= K (e.g. the classes of the model to evaluate; "
        "wsolevaluation metadata does not declare its class count)",
    )

    from wsol.data.fetch import FETCHABLE, WSOLEVAL_DATASETS

    f = sub.add_parser(
        "fetch",
        help="download a public dataset (cub, wsolevaluation-metadata; imagenet: steps)",
        description="Download a public dataset into the cache, check it, and put it under --root.",
    )
    f.add_argument("name", choices=FETCHABLE, help="what to fetch: %(choices)s")
    f.add_argument(
        "--root",
        required=True,
        help="destination folder (cub: DIR/CUB_200_2011; metadata: "
        "DIR/<dataset>/<split>/; imagenet: the tree to check)",
    )
    f.add_argument("--mirror", default=None, help="folder or http(s) URL serving the files (default: $WSOL_MIRROR)")
    f.add_argument(
        "--dataset",
        dest="datasets",
        action="append",
        choices=WSOLEVAL_DATASETS,
        default=None,
        help="wsolevaluation-metadata: only this dataset (repeatable; default: all)",
    )
    f.add_argument(
        "--include-ilsvrc-train",
        action="store_true",
        help="wsolevaluation-metadata: also ILSVRC/train (large; checksums recorded on first download)",
    )
    f.add_argument(
        "--annotations-only",
        action="store_true",
        help="the check after fetching reads annotation files only (no image opened)",
    )
    f.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.action == "synth":
        from wsol.data.synthetic import SynthConfig, generate_synthetic

        cfg = SynthConfig(
            classes=args.classes,
            train_per_class=args.train_per_class,
            val_per_class=args.val_per_class,
            test_per_class=args.test_per_class,
            size=args.size,
            seed=args.seed,
        )
        summary = generate_synthetic(args.out, cfg, overwrite=args.overwrite, progress=not args.quiet)
        print(json.dumps(summary))
        return 0

    if args.action == "fetch":
        return _fetch(args)

    from wsol.data.check import check_dataset

    if args.num_classes is not None and args.num_classes < 1:
        from wsol.errors import UserError

        raise UserError(f"--num-classes must be >= 1, got {args.num_classes}")

    report = check_dataset(
        args.format,
        args.root,
        args.split,
        metadata_dir=args.metadata_dir,
        annotations_only=args.annotations_only,
        num_classes=args.num_classes,
    )
    print(json.dumps(report, indent=2))
    return 0 if not report["problems"] else 1


def _check_root(root: Path) -> None:
    """UserError unless ``root`` is, or can be created as, a writable folder (nothing is created:
    a failed fetch leaves no trace)."""
    import os

    from eval.io import nearest_existing
    from wsol.errors import UserError

    existing = nearest_existing(root)
    if existing is None:
        return
    if not existing.is_dir():
        raise UserError(f"--root {root}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"--root {root}: {existing} is not writable")


def _fetch(args: argparse.Namespace) -> int:
    from wsol.data import fetch
    from wsol.errors import UserError

    progress = not args.no_progress
    if args.name != "wsolevaluation-metadata":  # these two choose among the metadata's files
        given = [
            f for f, v in (("--dataset", args.datasets), ("--include-ilsvrc-train", args.include_ilsvrc_train)) if v
        ]
        if given:
            raise UserError(f"{', '.join(given)}: only for `data fetch wsolevaluation-metadata`, not {args.name}")
    if args.name != "imagenet":  # an unwritable --root fails now, not after the download
        _check_root(Path(args.root))
    if args.name == "cub":
        report = fetch.fetch_cub(
            args.root, mirror=args.mirror, progress=progress, annotations_only=args.annotations_only
        )
        print(json.dumps(report, indent=2))
        return 0 if not report["problems"] else 1
    if args.name == "wsolevaluation-metadata":
        written = fetch.fetch_wsolevaluation_metadata(
            args.root,
            datasets=tuple(args.datasets or ()) or None,
            include_ilsvrc_train=args.include_ilsvrc_train,
            mirror=args.mirror,
            progress=progress,
        )
        print(
            json.dumps(
                {
                    "fetched": "wsolevaluation-metadata",
                    "commit": fetch.WSOLEVAL_COMMIT,
                    "root": str(args.root),
                    "files": len(written),
                }
            )
        )
        return 0
    print(fetch.imagenet_instructions(args.root))
    if not Path(args.root).is_dir():
        print(f"{args.root} does not exist yet: follow the steps above, then rerun this command to check it")
        return 1
    from wsol.data.check import check_dataset

    report = check_dataset("imagenet", args.root, "val", annotations_only=args.annotations_only)
    print(json.dumps(report, indent=2))
    return 0 if not report["problems"] else 1
