"""Peak memory of ``wsol evaluate`` on the synthetic test split and on one with 10x the images.

Evaluation memory should stay flat over the dataset: score maps are reduced to per-image hits
(bit-packed in the resume log, a few hundred bits each in memory) batch by batch and never all
held. This script shows it. It writes two synthetic trees with ``wsol data synth`` (the same
classes and seed; ``--test-per-class N`` and ``10 N``) and a seeded ``small_cnn`` checkpoint into a
temporary folder. Then it runs ``wsol evaluate --workers 0 --device cpu`` on each tree in a fresh
Python process (no worker processes: everything is in that one process) and prints, per run:

* ``rss_ready``: RSS high-water mark (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) after the
  imports and a warm-up evaluation of a separate tree of a little more than one batch (torch,
  OpenCV and numba loaded, kernels compiled, full-batch buffers allocated), i.e. the fixed cost;
* ``rss_peak``: RSS high-water mark at the end of the evaluation, and ``growth = peak - ready``;
* with ``--trace``: ``traced_peak``, tracemalloc's peak of the Python/numpy allocations made
  during the evaluation (tensors from torch's allocator are not traced; RSS covers them). Tracing
  slows the run down (about 1.5x here), so it is off by default;
* what holding every float64 score map would take (``images x S x S x 8`` bytes; the baseline
  that a streaming pass avoids).

Each split is measured ``--runs`` (3) times, alternately; every figure is the median and range
over the runs with the load. Then it prints the 10x/1x ratios. Flat memory means an RSS-peak
ratio near 1 and a growth that does not scale with 10x the maps.

    python benchmarks/bench_memory.py                          # 10 classes x 50 and x 500 test images
    python benchmarks/bench_memory.py --trace                  # + tracemalloc (slower)
    python benchmarks/bench_memory.py --test-per-class 20      # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._timing import MIN_RUNS, Timing, banner, load  # noqa: E402


def _child(args: argparse.Namespace) -> None:
    """One measured run (in a fresh process): warm up on ``--warmup-root``, then evaluate ``--root``."""
    import tracemalloc

    from wsol.cli import main

    def evaluate(root: str, output: str) -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # the summary table
            rc = main(
                [
                    "evaluate",
                    "--no-progress",
                    "--device",
                    "cpu",
                    "--workers",
                    "0",
                    "--batch-size",
                    str(args.batch_size),
                    "--checkpoint",
                    args.checkpoint,
                    "--dataset",
                    "synthetic",
                    "--data-root",
                    root,
                    "--output",
                    output,
                    "--overwrite",
                ]
            )
        if rc != 0:
            raise SystemExit(f"wsol evaluate failed with status {rc}")

    evaluate(args.warmup_root, str(Path(args.output).with_name("warmup.json")))
    ready = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if args.trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    evaluate(args.root, args.output)
    seconds = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1] if args.trace else None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = json.loads(Path(args.output).read_text())
    print(
        json.dumps(
            {
                "images": result["num_images"],
                "rss_ready_kib": ready,
                "rss_peak_kib": peak,
                "traced_peak_bytes": traced,
                "seconds": round(seconds, 1),
                "MaxBoxAccV2": result["MaxBoxAccV2"],
            }
        )
    )


def _synth(out: Path, classes: int, test_per_class: int, size: int) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "wsol",
            "data",
            "synth",
            "--out",
            str(out),
            "--classes",
            str(classes),
            "--train-per-class",
            "1",
            "--val-per-class",
            "1",
            "--test-per-class",
            str(test_per_class),
            "--size",
            str(size),
            "--seed",
            "0",
            "--quiet",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        env=_env(),
        cwd=REPO,
    )


def _env() -> dict:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO) + (os.pathsep + path if path else "")}


def _mib(kib: float) -> str:
    return f"{kib / 1024:8.1f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--test-per-class", type=int, default=50, help="the 1x split (default: the synthetic default, 50)")
    ap.add_argument("--scale", type=int, default=10, help="the large split has SCALE x the images (default 10)")
    ap.add_argument("--size", type=int, default=64, help="image side (default: the synthetic default, 64)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--trace", action="store_true", help="also trace Python/numpy allocations (slower)")
    ap.add_argument("--dir", default=None, help="where the temporary folder goes (default: the system's)")
    ap.add_argument("--runs", type=int, default=MIN_RUNS, help="fresh-process runs per split (default: %(default)s)")
    # internal: one measured run
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--warmup-root", help=argparse.SUPPRESS)
    ap.add_argument("--checkpoint", help=argparse.SUPPRESS)
    ap.add_argument("--output", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return

    print(banner("bench_memory"))
    import torch

    from wsol.checkpoints import save_checkpoint
    from wsol.models import create_model

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench_memory_") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        splits = {"1x": args.test_per_class, f"{args.scale}x": args.test_per_class * args.scale}
        _synth(tmp / "warmup", args.classes, args.batch_size // args.classes + 1, args.size)
        for name, per_class in splits.items():
            _synth(tmp / name, args.classes, per_class, args.size)
        torch.manual_seed(0)
        ckpt = save_checkpoint(tmp / "small.pt", create_model("small_cnn", args.classes))
        print(
            f"data: {args.classes} classes, {args.size}x{args.size} px; written in "
            f"{time.perf_counter() - t0:.0f} s; small_cnn seeded, CPU, --workers 0, "
            f"--batch-size {args.batch_size}; one fresh process per run"
        )
        runs: dict[str, list[dict]] = {name: [] for name in splits}
        load0 = load()
        for _ in range(args.runs):  # alternate the splits, one fresh process per run
            for name in splits:
                cmd = [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--child",
                    "--root",
                    str(tmp / name),
                    "--warmup-root",
                    str(tmp / "warmup"),
                    "--checkpoint",
                    str(ckpt),
                    "--output",
                    str(tmp / f"{name}.json"),
                    "--batch-size",
                    str(args.batch_size),
                ]
                if args.trace:
                    cmd.append("--trace")
                out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=_env(), cwd=REPO)
                runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
        load1 = load()

        def col(name: str, key) -> Timing:
            vals = [key(r) for r in runs[name]]
            return Timing(vals, load0, load1, name)

        side = args.size
        print(f"\nmedian [min, max] over {args.runs} runs per split, load {load0:.2f} -> {load1:.2f}")
        for name in splits:
            r0 = runs[name][0]
            all_maps = r0["images"] * side * side * 8 / 2**20
            print(f"{name} ({r0['images']} images; holding all its {side}x{side} float64 maps: {all_maps:.1f} MiB)")
            print(f"  rss_ready  : {col(name, lambda r: r['rss_ready_kib'] / 1024).fmt('MiB', digits=1)}")
            print(f"  rss_peak   : {col(name, lambda r: r['rss_peak_kib'] / 1024).fmt('MiB', digits=1)}")
            growth = col(name, lambda r: (r["rss_peak_kib"] - r["rss_ready_kib"]) / 1024)
            print(f"  growth     : {growth.fmt('MiB', digits=1)}")
            if args.trace:
                print(f"  traced_peak: {col(name, lambda r: r['traced_peak_bytes'] / 2**20).fmt('MiB', digits=1)}")
            print(f"  eval       : {col(name, lambda r: r['seconds']).fmt('s', digits=1)}")
        big = f"{args.scale}x"
        a, b = runs["1x"], runs[big]
        peak = Timing([y["rss_peak_kib"] / x["rss_peak_kib"] for x, y in zip(a, b)], load0, load1)
        print(
            f"\n{args.scale}x / 1x: images {b[0]['images'] / a[0]['images']:.1f}; RSS peak ratio "
            f"{peak.fmt('', digits=3)}"
        )
        if args.trace:
            per = Timing(
                [(y["traced_peak_bytes"] - x["traced_peak_bytes"]) / (y["images"] - x["images"]) for x, y in zip(a, b)],
                load0,
                load1,
            )
            print(f"traced peak per extra image: {per.fmt('bytes', digits=0)}")
        print(
            f"holding every {side}x{side} float64 map of the {args.scale}x split would take "
            f"{b[0]['images'] * side * side * 8 / 2**20:.0f} MiB (at 224x224: "
            f"{b[0]['images'] * 224 * 224 * 8 / 2**20:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
