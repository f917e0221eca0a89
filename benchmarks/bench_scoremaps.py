"""``wsol evaluate-scoremaps`` as a user runs it vs the straightforward per-threshold OpenCV loop.

The split: ``--n`` (2,000) CUB-like score maps written as ``<image_id>.npy`` (224x224, float32 as
saved CAMs usually are; the same generator as ``bench_boxes.py``: bicubic-upsampled 14x14 / 28x28
grids, smooth and noisy, min-max normalized) in a wsolevaluation metadata split
(``image_ids.txt``, ``class_labels.txt`` with 200 classes, ``image_sizes.txt`` with mixed
original sizes, ``localization.txt`` with one GT box per image in original pixels).

Both sides run as fresh processes, wall clock from start to exit (Python start-up, imports and
file reading included):

* **baseline**: ``python benchmarks/bench_scoremaps.py --baseline ...``: read the metadata, then
  for every image ``np.load`` the map, rescale its GT box (wsolevaluation's rule) and run the
  per-threshold OpenCV loop of ``benchmarks/baseline_boxes.py`` (wsolevaluation's BoxEvaluator:
  threshold, findContours, boundingRect at every threshold; single process);
* **ours**: ``wsol evaluate-scoremaps --metadata-dir M --scoremap-dir S --output R`` with the
  default options (workers = cores), which also computes the old fixed-threshold protocol and the
  bootstrap intervals and writes the JSON and per-image CSV.

The runs alternate (baseline, ours, baseline, ours, ...); every figure is the median and range of
``--runs`` (>= 3) runs with the load average, and the speed-up is the median and range of the
per-pair ratios. Both sides' MaxBoxAcc must be identical (checked; exit status 1 otherwise).

    python benchmarks/bench_scoremaps.py                         # 2,000 maps, 0.01 and 0.001, V2
    python benchmarks/bench_scoremaps.py --intervals 0.01 --versions V2 V1 --n 500
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._timing import MIN_RUNS, Timer, banner, ratio  # noqa: E402

DELTAS = (30, 50, 70)


def write_split(root: Path, n: int, seed: int = 0, dtype: str = "float32") -> tuple[Path, Path]:
    """A wsolevaluation split of ``n`` CUB-like maps: returns ``(metadata_dir, scoremap_dir)``."""
    import numpy as np

    from benchmarks.bench_boxes import SIZE, make_inputs, upsample

    meta = root / "metadata"
    maps = root / "scoremaps"
    meta.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    ids, labels, sizes, locs = [], [], [], []
    for i, (_, grid, gt) in enumerate(make_inputs(n, seed)):
        label = i % 200
        iid = f"{label + 1:03d}.Class_{label + 1:03d}/img_{i:05d}.jpg"
        w, h = (int(v) for v in rng.integers(300, 501, 2))
        x0, y0, x1, y1 = (int(v) for v in gt[0])
        # GT in original pixels (the split's frame); evaluation rescales it to the 224 map
        box = (x0 * w // SIZE, y0 * h // SIZE, min(w - 1, x1 * w // SIZE), min(h - 1, y1 * h // SIZE))
        path = maps / (iid + ".npy")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, upsample(grid).astype(dtype))
        ids.append(iid)
        labels.append(f"{iid},{label}")
        sizes.append(f"{iid},{w},{h}")
        locs.append(f"{iid},{box[0]},{box[1]},{box[2]},{box[3]}")
    for name, lines in (
        ("image_ids.txt", ids),
        ("class_labels.txt", labels),
        ("image_sizes.txt", sizes),
        ("localization.txt", locs),
    ):
        (meta / name).write_text("\n".join(lines) + "\n")
    return meta, maps


def run_baseline(metadata_dir: str, scoremap_dir: str, interval: float, multi_contour: bool) -> dict:
    """The straightforward evaluation: one process, the per-threshold OpenCV loop per map."""
    import numpy as np

    from benchmarks.baseline_boxes import BaselineBoxAccuracy
    from eval.boxes import rescale_boxes_wsolevaluation
    from eval.metadata import read_split

    meta = read_split(metadata_dir)
    acc = BaselineBoxAccuracy(interval, DELTAS, multi_contour)
    for iid in meta.image_ids:
        smap = np.load(Path(scoremap_dir) / (iid + ".npy")).astype(np.float64)
        h, w = smap.shape
        gt = rescale_boxes_wsolevaluation(meta.boxes[iid], meta.sizes[iid], (w, h))
        acc.accumulate(smap, gt)
    return {str(d): v for d, v in acc.compute().items()}


def wsol_command() -> list[str]:
    exe = Path(sys.executable).with_name("wsol")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("wsol")
    return [found] if found else [sys.executable, "-m", "wsol"]


def _timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    return wall, p.stdout


def bench_case(
    meta: Path, maps: Path, out: Path, interval: float, version: str, runs: int, workers: int | None
) -> dict:
    mc = version == "V2"
    base_cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--baseline",
        str(meta),
        str(maps),
        "--interval",
        str(interval),
    ] + ([] if mc else ["--largest-contour"])
    ours_cmd = wsol_command() + [
        "evaluate-scoremaps",
        "--metadata-dir",
        str(meta),
        "--scoremap-dir",
        str(maps),
        "--cam-curve-interval",
        str(interval),
        "--output",
        str(out),
        "--overwrite",
        "--no-progress",
    ]
    if not mc:
        ours_cmd.append("--largest-contour")
    if workers is not None:
        ours_cmd += ["--workers", str(workers)]
    tb, to = Timer(), Timer()
    ref = ours = None
    for _ in range(runs):
        wall, stdout = _timed(base_cmd)
        tb.add(wall)
        ref = json.loads(stdout.strip().splitlines()[-1])
        wall, _ = _timed(ours_cmd)
        to.add(wall)
        ours = json.loads(out.read_text())["MaxBoxAcc"]
    b, o = tb.timing("baseline"), to.timing("ours")
    same = all(ref[k] == ours[k] for k in ref) and set(ref) == set(ours)
    return {"baseline": b, "ours": o, "ratio": ratio(b, o), "same": same, "ref": ref, "ours_acc": ours}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="number of maps (default: %(default)s)")
    ap.add_argument("--intervals", type=float, nargs="+", default=[0.01, 0.001])
    ap.add_argument(
        "--versions",
        nargs="+",
        default=["V2"],
        choices=["V2", "V1"],
        help="V2: all contours (the CLI default); V1: --largest-contour",
    )
    ap.add_argument("--runs", type=int, default=MIN_RUNS, help="runs of each side (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=None, help="ours: --workers (default: the CLI default)")
    ap.add_argument("--workdir", default=None, help="keep the split here (default: a temporary folder)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline", nargs=2, metavar=("METADATA_DIR", "SCOREMAP_DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--interval", type=float, default=0.01, help=argparse.SUPPRESS)
    ap.add_argument("--largest-contour", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.baseline:  # the baseline process itself
        print(json.dumps(run_baseline(*args.baseline, args.interval, not args.largest_contour)))
        return 0

    print(banner("bench_scoremaps"))
    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory()
        root = Path(tmp.name)
    else:
        root = Path(args.workdir)
    try:
        t0 = time.perf_counter()
        meta, maps = write_split(root, args.n, args.seed)
        print(
            f"{args.n} maps 224x224 float32 written in {time.perf_counter() - t0:.1f} s; "
            f"ours: {' '.join(wsol_command() + ['evaluate-scoremaps'])} (workers: "
            f"{args.workers or 'default'}), both as fresh processes, start-up included\n"
        )
        all_ok = True
        for interval in args.intervals:
            for version in args.versions:
                r = bench_case(meta, maps, root / "result.json", interval, version, args.runs, args.workers)
                all_ok &= r["same"]
                print(f"interval {interval:g} {version}:")
                print(f"  baseline (per-threshold OpenCV loop): {r['baseline'].fmt('s', digits=2)}")
                print(f"  wsol evaluate-scoremaps             : {r['ours'].fmt('s', digits=2)}")
                print(f"  speed-up baseline / ours            : {r['ratio'].fmt('x', digits=1)}")
                print(f"  MaxBoxAcc identical: {r['same']} ({r['ours_acc']})", flush=True)
        print("\ntargets: >= 6x at 0.01 and >= 40x at 0.001 (V2, default workers, start-up included)")
    finally:
        if tmp is not None:
            tmp.cleanup()
    if not all_ok:
        print("ERROR: MaxBoxAcc differs from the baseline")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
