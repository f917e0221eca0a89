"""``wsol evaluate`` vs the straightforward pipeline, side by side on the synthetic test split.

Straightforward pipeline (what a WSOL codebase typically does, wsolevaluation's ``inference.py``
included): a classification pass over the data; then a second pass that computes each image's CAM
from the feature map and the classifier weights in numpy, resizes it with ``cv2.resize``
(``INTER_CUBIC``, float64) per image, min-max normalizes it, and runs the per-threshold OpenCV box
loop (``benchmarks/baseline_boxes.py``). Single process.

Forward only: one classification pass over the same loader, timed in the same alternation;
``straightforward / forward only`` is the ceiling of any one-pass evaluator with this model and
one torch thread.

Ours: :func:`wsol.jobs.evaluate.run_evaluate` (what ``wsol evaluate`` runs: one pass; CAMs
upsampled and normalized on the device; sweeps in ``--workers`` processes while the model computes
the next batch), which also computes the old protocol, PxAP, intervals and the per-image /
per-class files and the resume log.

Both are timed after the data and model are set up (Python start-up, imports and loading the
compiled sweep kernel from numba's on-disk cache excluded; the process pool start is included),
alternately, ``--runs`` (>= 3) times: each figure is the median and range with the load, the
speed-up the median and range of the per-pair ratios. The MaxBoxAcc values of both are printed
(they can differ in the last pixel-level decisions: float32 torch bicubic vs float64 OpenCV
bicubic before the uint8 quantization).

    python benchmarks/bench_evaluate.py                        # 10 classes x 50 test images
    python benchmarks/bench_evaluate.py --test-per-class 20 --interval 0.001
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import MIN_RUNS, Timer, banner, ratio  # noqa: E402
from benchmarks.baseline_boxes import BaselineBoxAccuracy  # noqa: E402
from eval.settings import MetricSettings  # noqa: E402
from wsol.checkpoints import load_checkpoint, save_checkpoint  # noqa: E402
from wsol.data import SynthConfig, build_dataset, collate, generate_synthetic  # noqa: E402
from wsol.jobs.evaluate import EvaluateConfig, run_evaluate  # noqa: E402
from wsol.models import create_model  # noqa: E402


def straightforward(model, dataset, batch_size: int, interval: float) -> tuple[dict, float]:
    """Classification pass, then a CAM pass with per-image OpenCV resize and the box loop."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    t0 = time.perf_counter()
    correct = 0
    with torch.no_grad():
        for b in loader:  # pass 1: classification
            correct += int((model(b["image"]).argmax(1) == torch.as_tensor(b["label"])).sum())
        acc = BaselineBoxAccuracy(interval)
        weight = model.classifier_weight() if hasattr(model, "classifier_weight") else None
        for b in loader:  # pass 2: CAMs, one image at a time on the CPU
            feats = model.forward_features(b["image"]).numpy().astype(np.float64)
            for j, label in enumerate(b["label"]):
                if weight is None:
                    cam = (
                        model.class_maps(torch.from_numpy(feats[j : j + 1]), torch.tensor([label]))[0]
                        .numpy()
                        .astype(np.float64)
                    )
                else:
                    cam = np.tensordot(weight[label], feats[j], axes=1)
                h, w = b["image"].shape[-2:]
                cam = cv2.resize(cam, (w, h), interpolation=cv2.INTER_CUBIC)
                cam -= cam.min()
                cam /= cam.max() if cam.max() > 0 else 1.0
                acc.accumulate(cam, b["boxes_eval"][j])
    seconds = time.perf_counter() - t0
    return {"top1_cls": 100.0 * correct / len(dataset), "MaxBoxAcc": acc.compute()}, seconds


def forward_only(model, dataset, batch_size: int) -> float:
    """One classification pass over the same loader: the convolutions both pipelines must pay.

    The straightforward pipeline runs them twice, ``wsol evaluate`` once, so
    ``straightforward / forward_only`` bounds the speed-up any one-pass evaluator reaches on this
    machine with the same model, threads and loader.
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in loader:
            model(b["image"])
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--test-per-class", type=int, default=50)
    p.add_argument("--interval", type=float, default=0.01, help="cam_curve_interval (default 0.01)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="sweep processes of ours")
    p.add_argument("--runs", type=int, default=MIN_RUNS, help="runs of each pipeline (default: %(default)s)")
    p.add_argument("--checkpoint", default=None, help="a small_cnn checkpoint (default: a seeded untrained one)")
    args = p.parse_args()
    print(banner("bench_evaluate"))
    torch.set_num_threads(1)
    import cam  # noqa: F401  imports are not part of either timing
    import eval.evaluator  # noqa: F401
    from eval.sweep import warm_up

    warm_up()  # loading the compiled sweep kernel from numba's cache is start-up, like an import

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        generate_synthetic(
            root,
            SynthConfig(
                classes=args.classes, train_per_class=0, val_per_class=0, test_per_class=args.test_per_class, seed=0
            ),
        )
        ckpt = args.checkpoint
        if ckpt is None:
            torch.manual_seed(0)
            ckpt = Path(tmp) / "model.pt"
            save_checkpoint(ckpt, create_model("small_cnn", args.classes))
        model = load_checkpoint(ckpt).eval()
        dataset = build_dataset("synthetic", root, "test")
        n = len(dataset)
        cfg = EvaluateConfig(
            checkpoint=str(ckpt),
            dataset="synthetic",
            data_root=str(root),
            output=str(Path(tmp) / "out" / "result.json"),
            device="cpu",
            batch_size=args.batch_size,
            workers=args.workers,
            metrics=MetricSettings(cam_curve_interval=args.interval),
            overwrite=True,
            progress=False,
        )
        tr, to, tf = Timer(), Timer(), Timer()
        for _ in range(args.runs):  # alternate, so that a change of load hits all alike
            ref, seconds = straightforward(model, dataset, args.batch_size, args.interval)
            tr.add(seconds)
            t0 = time.perf_counter()
            ours = run_evaluate(cfg)
            to.add(time.perf_counter() - t0)
            tf.add(forward_only(model, dataset, args.batch_size))
        t_ref, t_ours, t_fwd = tr.timing("straightforward"), to.timing("ours"), tf.timing("forward only")

    print(
        f"synthetic test split: {n} images, {args.classes} classes, interval {args.interval}, "
        f"torch threads 1, {os.cpu_count()} cores"
    )
    print(
        f"straightforward (2 passes, per-image cv2): {t_ref.fmt('s', digits=2)}; "
        f"{n / t_ref.median:.1f} img/s; MaxBoxAcc 30/50/70 "
        + " / ".join(f"{ref['MaxBoxAcc'][d]:.2f}" for d in (30, 50, 70))
    )
    print(
        f"wsol evaluate (1 pass, {args.workers} sweep workers): {t_ours.fmt('s', digits=2)}; "
        f"{n / t_ours.median:.1f} img/s; MaxBoxAcc 30/50/70 "
        + " / ".join(f"{ours['MaxBoxAcc'][d]:.2f}" for d in ("30", "50", "70"))
    )
    print(
        f"speed-up straightforward / ours: {ratio(t_ref, t_ours).fmt('x', digits=2)} (target >= 4x); "
        "ours also computed the old protocol, PxAP, bootstrap intervals and the per-image/per-class files"
    )
    print(
        f"forward only (1 pass, same loader, no CAM/sweep): {t_fwd.fmt('s', digits=2)}; "
        f"ceiling straightforward / forward only: {ratio(t_ref, t_fwd).fmt('x', digits=2)}; "
        f"ours / forward only: {ratio(t_ours, t_fwd).fmt('x', digits=2)}"
    )
    print(f"classification top-1: straightforward {ref['top1_cls']:.2f}, ours {ours['top1_cls']:.2f}")


if __name__ == "__main__":
    main()
