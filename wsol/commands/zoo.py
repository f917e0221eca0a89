"""``wsol zoo``: published models one command away (list, download, the ImageNet study)."""

from __future__ import annotations

import argparse
import json

from wsol import defaults
from wsol.commands._common import positive_int, worker_count

HELP = "published models: list them, download them (--checkpoint zoo:NAME), run the ImageNet study"
DESCRIPTION = (
    HELP
    + """

  wsol zoo list [--json]
      Every entry: name, architecture and options, classes, training augmentation, source, the
      published numbers, URL, the file the URL downloads, the checkpoint inside it, sha256 (null
      where none is published: recorded on first download, verified on every later use).
  wsol zoo download NAME... [--mirror M]
      Fetch into the cache ($WSOL_CACHE, default ~/.cache/wsol; torchvision entries: the torch hub
      cache under $TORCH_HOME), check (length, checksums, archive member, the weights strictly
      against the architecture), print the checkpoint path. `--checkpoint zoo:NAME` does the same
      wherever a checkpoint is accepted (evaluate, compare, figure grid, robustness).
  wsol zoo study imagenet-resnet50 --data-root ILSVRC2012 --out runs/study [--plan] [--images N]
      The eight ImageNet ResNet-50s (six CutMix-PyTorch, two torchvision) evaluated on ImageNet val
      with the CutMix paper's protocol and the wsolevaluation metrics, then the comparison (tables
      with intervals and paired tests against the baseline, published numbers beside measured,
      CAM grid, BoxAcc curves). Resumable: finished models are not redone. --plan prints what
      would be downloaded (sizes) and run, doing nothing.

Offline clusters: --mirror (or $WSOL_MIRROR) = a folder or http(s) URL holding <mirror>/<filename>
(`wsol zoo list` shows each filename); the same checks apply. A source that cannot be reached
gives one line naming the URL and the cache path where a hand-downloaded file can be put (exit 2).

Examples:
  wsol zoo list
  wsol zoo download resnet50-cutmix resnet50-tv-v2
  WSOL_MIRROR=/shared/wsol-mirror wsol evaluate --checkpoint zoo:resnet50-cutmix --dataset imagenet \\
      --data-root ILSVRC2012 --split val --preset cutmix --output runs/r50_cutmix.json
  wsol zoo study imagenet-resnet50 --data-root ILSVRC2012 --out runs/study --plan
  wsol zoo study imagenet-resnet50 --data-root ILSVRC2012 --out runs/study --device cuda
"""
)


def _debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from wsol.zoo.catalog import STUDIES, ZOO

    sub = parser.add_subparsers(dest="action", metavar="{list,download,study}", required=True)
    ls = sub.add_parser("list", help="every published model of the zoo", description="List the zoo's entries.")
    ls.add_argument("--json", action="store_true", help="one JSON array with every field")
    _debug_flag(ls)

    dl = sub.add_parser(
        "download",
        help="download and check entries; print their checkpoint paths",
        description="Download (or find in the cache) and check zoo entries.",
    )
    dl.add_argument(
        "names", nargs="+", metavar="NAME", choices=ZOO.names(), help="entry names: " + ", ".join(ZOO.names())
    )
    dl.add_argument(
        "--mirror", default=None, help="folder or http(s) URL serving <mirror>/<filename> (default: $WSOL_MIRROR)"
    )
    dl.add_argument("--no-progress", action="store_true", help="no progress bar")
    _debug_flag(dl)

    st = sub.add_parser(
        "study",
        help="evaluate a study's models and write the comparison",
        description="Evaluate every model of a study from its published weights, then compare.",
    )
    st.add_argument("study", choices=STUDIES.names(), help="study: %(choices)s")
    st.add_argument(
        "--data-root",
        required=True,
        help="ImageNet tree (imagenet format: val/ + LOC_val_solution.csv or bbox XML), or with "
        "--metadata-dir the wsolevaluation data root",
    )
    st.add_argument(
        "--metadata-dir",
        default=None,
        help="wsolevaluation metadata (metadata/ILSVRC or metadata/ILSVRC/test): read the data in "
        "the wsolevaluation format instead",
    )
    st.add_argument("--split", default=None, help="split (default: val for imagenet, test for wsolevaluation)")
    st.add_argument("--out", required=True, help="output folder (OUT/<name>/result.json, comparison, figures)")
    st.add_argument("--plan", action="store_true", help="print what would be downloaded and run; do nothing")
    st.add_argument(
        "--images",
        type=positive_int,
        default=None,
        metavar="N",
        help="a quick look: N images spread evenly over the split (not the published protocol)",
    )
    st.add_argument("--grid-images", type=positive_int, default=6, help="rows of the CAM grid (default: %(default)s)")
    st.add_argument(
        "--mirror", default=None, help="folder or http(s) URL serving <mirror>/<filename> (default: $WSOL_MIRROR)"
    )
    st.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    st.add_argument(
        "--batch-size", type=positive_int, default=defaults.BATCH_SIZE, help="images per batch (default: %(default)s)"
    )
    st.add_argument(
        "--workers", type=worker_count, default=None, help="CPU worker processes (default: number of cores)"
    )
    st.add_argument(
        "--overwrite",
        action="store_true",
        help="evaluate every model again, replacing OUT/<name>/result.json (default: finished results "
        "are checked against the configuration and kept; interrupted ones resume)",
    )
    st.add_argument("--no-progress", action="store_true", help="no progress bars")
    _debug_flag(st)


def _list(as_json: bool) -> int:
    from wsol.zoo.catalog import ZOO
    from wsol.zoo.download import HashStore

    store = HashStore()
    entries = [ZOO.get(n) for n in ZOO.names()]
    if as_json:
        rows = []
        for e in entries:
            row = e.to_dict()
            rec = store.get(f"{e.url}#{e.member}" if e.member else e.url)  # of the checkpoint file itself
            row["recorded_sha256"] = rec["sha256"] if rec else None
            rows.append(row)
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<26} {'arch':<18} {'training':<16} {'top-1 err':>9} {'top-1 loc':>9}  source")
    for e in entries:
        loc = f"{e.published.top1_loc:.2f}" if e.published.top1_loc is not None else "—"
        err = f"{e.published.top1_err:.2f}" if e.published.top1_err is not None else "—"
        aug = e.augmentation.split(" (")[0]
        print(f"{e.name:<26} {e.arch:<18} {aug:<16} {err:>9} {loc:>9}  {e.repository}")
    print("\nuse as --checkpoint zoo:NAME; `wsol zoo list --json` gives URLs, file names and checksums")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(args.json)
    if args.action == "download":
        from wsol.zoo.resolve import ensure_entry

        for name in args.names:
            path = ensure_entry(name, mirror=args.mirror, progress=not args.no_progress)
            print(f"{name}: {path}")
        return 0

    from wsol.jobs.zoo import StudyConfig, format_plan, plan_study, run_study

    cfg = StudyConfig(
        study=args.study,
        data_root=args.data_root,
        out=args.out,
        metadata_dir=args.metadata_dir,
        split=args.split,
        images=args.images,
        mirror=args.mirror,
        batch_size=args.batch_size,
        device=args.device,
        workers=args.workers,
        grid_images=args.grid_images,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    if args.plan:
        plan = plan_study(cfg)
        print(format_plan(plan), end="")
        return 0 if not plan.problems else 1
    done = run_study(cfg)
    for path in done["outputs"]:
        print(f"wrote {path}")
    return 0
