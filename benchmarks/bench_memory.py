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

Then it prints the 10x/1x ratios. Flat memory means an RSS-peak ratio near 1 and a growth that
does not scale with 10x the maps.

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


def _child(args: argparse.Namespace) -> None:
    """One measured run (in a fresh process): warm up on ``--warmup-root``, then evaluate ``--root``."""
    import tracemalloc

    from wsol.cli import main

    def evaluate(root: str, output: str) -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # the summary table
            rc = main(["evaluate", "--no-progress", "--device", "cpu", "--workers", "0", "--batch-size",
                       str(args.batch_size), "--checkpoint", args.checkpoint, "--dataset", "synthetic",
                       "--data-root", root, "--output", output, "--overwrite"])
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
    print(json.dumps({"images": result["num_images"], "rss_ready_kib": ready, "rss_peak_kib": peak,
                      "traced_peak_bytes": traced, "seconds": round(seconds, 1),
                      "MaxBoxAccV2": result["MaxBoxAccV2"]}))


def _synth(out: Path, classes: int, test_per_class: int, size: int) -> None:
    subprocess.run([sys.executable, "-m", "wsol", "data", "synth", "--out", str(out), "--classes", str(classes),
                    "--train-per-class", "1", "--val-per-class", "1", "--test-per-class", str(test_per_class),
                    "--size", str(size), "--seed", "0", "--quiet"],
                   check=True, stdout=subprocess.DEVNULL, env=_env(), cwd=REPO)


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
        print(f"data: {args.classes} classes, {args.size}x{args.size} px; written in "
              f"{time.perf_counter() - t0:.0f} s; small_cnn seeded, CPU, --workers 0, "
              f"--batch-size {args.batch_size}; one fresh process per run")
        rows = {}
        for name in splits:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--root", str(tmp / name),
                   "--warmup-root", str(tmp / "warmup"), "--checkpoint", str(ckpt),
                   "--output", str(tmp / f"{name}.json"), "--batch-size", str(args.batch_size)]
            if args.trace:
                cmd.append("--trace")
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=_env(), cwd=REPO)
            rows[name] = json.loads(out.stdout.strip().splitlines()[-1])

        side = args.size
        print(f"\n{'split':<6} {'images':>7} {'rss_ready':>13} {'rss_peak':>13} {'growth':>13} "
              f"{'traced_peak':>13} {'all maps f64':>13} {'eval s':>7}")
        for name, r in rows.items():
            growth = r["rss_peak_kib"] - r["rss_ready_kib"]
            traced = _mib(r["traced_peak_bytes"] / 1024) if r["traced_peak_bytes"] is not None else "       -    "
            all_maps = r["images"] * side * side * 8 / 1024
            print(f"{name:<6} {r['images']:>7} {_mib(r['rss_ready_kib']):>13} {_mib(r['rss_peak_kib']):>13} "
                  f"{_mib(growth):>13} {traced:>13} {_mib(all_maps):>13} {r['seconds']:>7}")
        a, b = rows["1x"], rows[f"{args.scale}x"]
        print(f"\n{args.scale}x / 1x: images {b['images'] / a['images']:.1f}, RSS peak "
              f"{b['rss_peak_kib'] / a['rss_peak_kib']:.3f}, growth over ready "
              f"{_mib(b['rss_peak_kib'] - b['rss_ready_kib']).strip()} vs "
              f"{_mib(a['rss_peak_kib'] - a['rss_ready_kib']).strip()}", end="")
        if a["traced_peak_bytes"] and b["traced_peak_bytes"]:
            per_image = (b["traced_peak_bytes"] - a["traced_peak_bytes"]) / (b["images"] - a["images"])
            print(f", traced peak {b['traced_peak_bytes'] / a['traced_peak_bytes']:.2f}x "
                  f"(+{per_image:.0f} bytes per extra image)")
        else:
            print()
        print(f"holding every {side}x{side} float64 map of the {args.scale}x split would take "
              f"{b['images'] * side * side * 8 / 2**20:.0f} MiB (at 224x224: "
              f"{b['images'] * 224 * 224 * 8 / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
