"""``wsol evaluate`` next to a forward-only pass over the same DataLoader: the cost of evaluating.

Data: ``--n`` (64) JPEGs of mixed sizes (width and height 160-500 px, smooth random content, one
box each) in the wsolevaluation layout (``<root>/<class>/<name>.jpg`` + a metadata split of
``--classes`` classes), read with the ``wsolevaluation`` preset (resized to 224x224). Model: a
seeded, untrained ResNet-50 in the wsolevaluation layout (layer4 stride 1, 14x14 CAM) saved as a
toolkit checkpoint.

* **forward only** (the floor): a fresh process builds the same dataset (``build_dataset``), the
  same DataLoader (batch ``--batch-size``, the loader workers ``wsol evaluate`` uses on this
  device, its collate that keeps the per-image box tensors in the loader worker), loads the
  same checkpoint and runs ``model(images)`` under ``no_grad`` for every batch: what any
  evaluation has to pay.
* **wsol evaluate**: ``wsol evaluate --checkpoint C --arch resnet50 --dataset wsolevaluation
  --data-root D --metadata-dir M --device DEV --output R`` as a user types it (default workers):
  CAMs, upsampling, normalization, the exact sweeps, the old protocol, PxAP where masks exist,
  bootstrap intervals, per-image / per-class files, the resume log.

Both are timed as whole processes (start-up, imports and the checkpoint load included), alternately,
``--runs`` (>= 3) times; the figure is the per-pair ratio evaluate / forward-only (median and range)
with the load. ``--device`` comes from the options (never ``.cuda()``).

    python benchmarks/bench_evaluate_overhead.py                   # CPU, 64 images
    python benchmarks/bench_evaluate_overhead.py --device cuda --n 2000 --batch-size 256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._timing import MIN_RUNS, Timer, banner, ratio  # noqa: E402


def _jpeg(job: tuple) -> tuple[str, int, int, tuple[int, int, int, int], int]:
    """Write image ``i`` (its own seeded generator, so any number of processes gives the same
    files): ``(image_id, w, h, box, label)``."""
    import numpy as np
    from PIL import Image

    data, i, classes, seed, (lo, hi), quality = job
    rng = np.random.default_rng([seed, i])
    label = i % classes
    w, h = (int(v) for v in rng.integers(lo, hi + 1, 2))
    grid = rng.random((6, 6, 3))
    img = Image.fromarray((grid * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    arr = np.asarray(img).astype(np.int16) + rng.integers(-12, 13, (h, w, 3))
    iid = f"{label:04d}/img_{i:06d}.jpg"
    path = Path(data) / iid
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=quality)
    bw, bh = int(rng.integers(max(1, w // 5), w + 1)), int(rng.integers(max(1, h // 5), h + 1))
    x0, y0 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
    return iid, w, h, (x0, y0, x0 + bw - 1, y0 + bh - 1), label


def write_metadata(meta: Path, rows: list[tuple]) -> Path:
    """A wsolevaluation split folder of ``rows`` from :func:`_jpeg`."""
    meta.mkdir(parents=True, exist_ok=True)
    files = {
        "image_ids.txt": [r[0] for r in rows],
        "class_labels.txt": [f"{r[0]},{r[4]}" for r in rows],
        "image_sizes.txt": [f"{r[0]},{r[1]},{r[2]}" for r in rows],
        "localization.txt": [f"{r[0]},{r[3][0]},{r[3][1]},{r[3][2]},{r[3][3]}" for r in rows],
    }
    for name, lines in files.items():
        (meta / name).write_text("\n".join(lines) + "\n")
    return meta


def write_jpeg_split(
    root: Path,
    n: int,
    classes: int,
    seed: int = 0,
    size_range=(160, 500),
    quality: int = 90,
    processes: int | None = None,
) -> tuple[Path, Path, list[tuple]]:
    """``n`` JPEGs (side lengths drawn from ``size_range``) + the wsolevaluation split ``test`` of
    all of them: ``(data_root, metadata_dir, rows)``. Reuses an existing identical split."""
    import multiprocessing

    data = root / "images"
    meta = root / "metadata" / "test"
    stamp = root / f".split_{n}_{classes}_{seed}_{size_range[0]}_{size_range[1]}_{quality}.json"
    if stamp.exists() and (meta / "image_ids.txt").exists():
        return data, meta, [tuple(r[:3]) + (tuple(r[3]), r[4]) for r in json.loads(stamp.read_text())]
    jobs = [(str(data), i, classes, seed, tuple(size_range), quality) for i in range(n)]
    procs = processes or min(len(jobs), os.cpu_count() or 1, 32)
    if procs > 1 and n >= 64:
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with ctx.Pool(procs) as pool:
            rows = pool.map(_jpeg, jobs, chunksize=max(1, n // (8 * procs)))
    else:
        rows = [_jpeg(j) for j in jobs]
    write_metadata(meta, rows)
    stamp.write_text(json.dumps(rows))
    return data, meta, rows


def write_checkpoint(path: Path, classes: int, arch: str = "resnet50", seed: int = 0) -> Path:
    import torch

    from wsol.checkpoints import save_checkpoint
    from wsol.models import create_model

    torch.manual_seed(seed)
    return save_checkpoint(path, create_model(arch, classes))


def _collate(items: list[dict]) -> dict:
    """The evaluation's collate: per-image ``boxes`` tensors stay in the loader worker."""
    from wsol.data import collate

    return collate([{k: v for k, v in it.items() if k != "boxes"} for it in items])


def forward_only(
    checkpoint: str, data_root: str, metadata_dir: str, device: str, batch_size: int, workers: int | None, arch: str
) -> dict:
    """The floor: the same dataset, DataLoader and model as ``wsol evaluate``, forward only."""
    import torch
    from torch.utils.data import DataLoader

    from wsol import runtime
    from wsol.checkpoints import load_checkpoint
    from wsol.data import build_dataset

    dev = runtime.resolve_device(device)
    model = load_checkpoint(checkpoint, arch=arch, map_location=dev).to(dev).eval()
    dataset = build_dataset("wsolevaluation", data_root, "test", metadata_dir=metadata_dir)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=runtime.loader_workers(runtime.sweep_workers(workers), dev),
        collate_fn=_collate,
        pin_memory=dev.type == "cuda",
    )
    n = 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            logits = model(batch["image"].to(dev, non_blocking=True))
            n += int(logits.shape[0])
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
    return {"images": n, "loop_seconds": time.perf_counter() - t0}


def _run(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return wall, p.stdout


def wsol_command() -> list[str]:
    exe = Path(sys.executable).with_name("wsol")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "wsol"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=64, help="images (default: %(default)s)")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument(
        "--size-range",
        type=int,
        nargs=2,
        default=[160, 500],
        metavar=("MIN", "MAX"),
        help="side lengths of the JPEGs (default: 160 500; 224 224 for 224-pixel images)",
    )
    ap.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None, help="--workers of both (default: the CLI default)")
    ap.add_argument("--runs", type=int, default=MIN_RUNS)
    ap.add_argument("--workdir", default=None, help="keep data, checkpoint and results here")
    ap.add_argument(
        "--extra",
        nargs=argparse.REMAINDER,
        default=[],
        help="further options for wsol evaluate (e.g. --extra --cam-curve-interval 0.001)",
    )
    ap.add_argument("--forward-only", nargs=3, metavar=("CKPT", "DATA_ROOT", "METADATA_DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.forward_only:  # the forward-only process itself
        print(json.dumps(forward_only(*args.forward_only, args.device, args.batch_size, args.workers, args.arch)))
        return 0

    print(banner("bench_evaluate_overhead"))
    tmp = tempfile.TemporaryDirectory() if args.workdir is None else None
    root = Path(tmp.name if tmp else args.workdir)
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        data, meta, _ = write_jpeg_split(root / "data", args.n, args.classes, size_range=tuple(args.size_range))
        ckpt = root / f"{args.arch}_{args.classes}.pt"
        if not ckpt.exists():
            write_checkpoint(ckpt, args.classes, args.arch)
        lo, hi = args.size_range
        print(
            f"{args.n} JPEGs ({lo}-{hi} px, resized to 224 by the wsolevaluation preset), {args.classes} "
            f"classes, {args.arch} (wsolevaluation layout), device {args.device}, batch {args.batch_size}; "
            f"set up in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        common = ["--batch-size", str(args.batch_size), "--device", args.device]
        if args.workers is not None:
            common += ["--workers", str(args.workers)]
        fwd_cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--forward-only",
            str(ckpt),
            str(data),
            str(meta),
            "--arch",
            args.arch,
        ] + common
        out = root / "result.json"
        ev_cmd = (
            wsol_command()
            + [
                "evaluate",
                "--checkpoint",
                str(ckpt),
                "--arch",
                args.arch,
                "--dataset",
                "wsolevaluation",
                "--data-root",
                str(data),
                "--metadata-dir",
                str(meta),
                "--output",
                str(out),
                "--overwrite",
                "--no-progress",
            ]
            + common
            + list(args.extra)
        )
        tf, te = Timer(), Timer()
        loops = []
        for _ in range(args.runs):
            wall, stdout = _run(fwd_cmd)
            tf.add(wall)
            loops.append(json.loads(stdout.strip().splitlines()[-1])["loop_seconds"])
            wall, _ = _run(ev_cmd)
            te.add(wall)
        f, e = tf.timing("forward only"), te.timing("wsol evaluate")
        r = ratio(e, f)
        res = json.loads(out.read_text())
        print(f"forward only (process)     : {f.fmt('s', digits=2)}")
        print(f"  of which the loop        : {Timer(loops, f.load_before).timing().fmt('s', digits=2)}")
        print(f"wsol evaluate (process)    : {e.fmt('s', digits=2)}")
        print(f"overhead evaluate / forward: {r.fmt('x', digits=3)}  (target <= 1.15)")
        print(
            f"  ({args.n / e.median:.2f} img/s evaluated; MaxBoxAcc {res.get('MaxBoxAcc')}, "
            f"top1_cls {res.get('top1_cls')})"
        )
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
