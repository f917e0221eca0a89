"""Training speed: ``--steps`` (200) steps of ``wsol train`` as a user runs it, bf16 on CUDA.

Data: 224-pixel JPEGs in the wsolevaluation layout (the generator of
``bench_evaluate_overhead.py``; ``--workdir`` reuses a folder, e.g. the one ``gpu_check.sh``
fills); the ``train`` split holds ``steps x batch`` images, so one epoch is ``--steps`` steps.
Recipe (written to the work folder): ``--arch`` (ResNet-50, wsolevaluation layout, no pretrained
weights: nothing is downloaded), CutMix, SGD, one epoch, ``amp`` (bf16 autocast; the trainer uses
it on CUDA only), ``channels_last``, ``--loader-workers`` DataLoader processes, no validation.

Each run is a fresh ``wsol train`` process; printed: the whole process's wall time and the
trainer's own images/s of the epoch (from ``log.jsonl``: data loading included, start-up not),
as the median and range of ``--runs`` (>= 3) runs with the load. ``--device`` comes from the
options.

    python benchmarks/bench_train.py --device cuda                 # 200 steps of batch 64
    python benchmarks/bench_train.py --device cpu --arch small_cnn --steps 3 --batch-size 4
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._timing import MIN_RUNS, Timer, banner  # noqa: E402
from benchmarks.bench_evaluate_overhead import write_jpeg_split, write_metadata, wsol_command  # noqa: E402

RECIPE = """# written by benchmarks/bench_train.py
model: {arch}
model_options: {options}
dataset: wsolevaluation
data_root: {data_root}
metadata_dir: {metadata_dir}
train_split: train
image_size: 224
workers: {workers}
aug: cutmix
aug_options:
  cutmix: {{beta: 1.0, prob: 1.0}}
epochs: 1
batch_size: {batch}
lr: 0.01
momentum: 0.9
nesterov: true
weight_decay: 1.0e-4
val_every: 0
device: {device}
amp: true
channels_last: true
progress: false
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--device", default="cuda", help="torch device (default: %(default)s)")
    ap.add_argument("--loader-workers", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--runs", type=int, default=MIN_RUNS)
    ap.add_argument("--workdir", default=None, help="data / runs folder (default: temporary)")
    args = ap.parse_args(argv)
    print(banner("bench_train"))
    tmp = tempfile.TemporaryDirectory() if args.workdir is None else None
    root = Path(tmp.name if tmp else args.workdir)
    root.mkdir(parents=True, exist_ok=True)
    try:
        n = args.steps * args.batch_size
        t0 = time.perf_counter()
        data, _, rows = write_jpeg_split(root / "data", n, args.classes, size_range=(224, 224))
        meta = write_metadata(root / "data" / "metadata" / "train", rows[:n])
        options = "{pretrained: false, layer4_stride: 1}" if args.arch == "resnet50" else "{}"
        recipe = root / f"train_{args.arch}.yaml"
        recipe.write_text(
            RECIPE.format(
                arch=args.arch,
                options=options,
                data_root=data,
                metadata_dir=meta.parent,
                workers=args.loader_workers,
                batch=args.batch_size,
                device=args.device,
            )
        )
        print(
            f"{n} train JPEGs 224x224 ({args.classes} classes) ready in {time.perf_counter() - t0:.1f} s; "
            f"{args.arch}, batch {args.batch_size}, {args.steps} steps, CutMix, bf16 autocast on CUDA, "
            f"channels_last, {args.loader_workers} loader workers, device {args.device}",
            flush=True,
        )
        wall, rate = Timer(), Timer()
        for k in range(args.runs):
            out = root / f"train_run{k}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = wsol_command() + ["train", "--recipe", str(recipe), "--out", str(out), "--no-progress"]
            t0 = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            wall.add(time.perf_counter() - t0)
            if p.returncode != 0:
                raise SystemExit(f"wsol train failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
            row = json.loads((out / "log.jsonl").read_text().strip().splitlines()[-1])
            rate.add(row["images_per_s"])
            shutil.rmtree(out, ignore_errors=True)
        w, r = wall.timing("process"), rate.timing("img/s")
        steps = r.scaled(1.0 / args.batch_size)  # images/s -> steps/s
        print(f"wsol train, {args.steps} steps (process wall): {w.fmt('s', digits=2)}")
        print(f"training images/s (trainer's epoch)        : {r.fmt('img/s', digits=1)}")
        print(f"training steps/s                           : {steps.fmt('steps/s', digits=2)}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
