"""CAM speed: ResNet-50 (wsolevaluation layout, 14x14 CAM) at 224x224.

Prints, in one run on the same machine:

1. forward only (``model(x)`` under ``no_grad``, the baseline) vs forward + vanilla CAM +
   bicubic upsampling to 224 + per-image min-max (``cam.cams_and_logits``), interleaved
   iterations, medians; the ratio's target is <= 1.10;
2. images/s of every grad-cam method at a small batch (ScoreCAM needs 2048 full forwards per
   image: its figure is an estimate from the measured forward speed unless ``--heavy``);
3. with CUDA: bf16 autocast + channels_last throughput of forward + CAM + upsampling +
   normalisation at ``--gpu-batch-size`` (target >= 10,000 images/s on one H100), next to the
   forward-only baseline, for the 14x14 (wsolevaluation) and 7x7 (torchvision / CutMix) layouts;
   without CUDA it says it was skipped (``--gpu-device cpu`` runs the section on the CPU, as
   ``gpu_check.sh --dry-run`` does).

Every figure is the median and range of the runs (``--iters``, ``--method-runs``, ``--gpu-iters``;
at least 3) with the load average before and after.

Usage: ``python benchmarks/bench_cam.py [--batch-size 8] [--iters 5] [--device cpu] [--heavy]``
Random weights and inputs: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import cam  # noqa: E402
from benchmarks._timing import MIN_RUNS, Timer, Timing, banner, ratio  # noqa: E402
from wsol.models import create_model  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def forward_vs_cam(model, x, targets, iters: int, device: torch.device, **cam_kw) -> tuple[Timing, Timing]:
    """Seconds per batch of (forward only, forward + CAM + upsample + normalize), ``iters`` runs
    of each, interleaved ABBA so that drifting machine load hits both alike."""

    amp = cam_kw.get("amp_dtype")

    def base():
        with torch.no_grad(), torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext():
            model(x)

    def ours():
        cam.cams_and_logits(model, x, targets, **cam_kw)

    base(), ours()  # warm-up
    tb, to = Timer(), Timer()
    for i in range(iters):
        first, second = (base, ours) if i % 2 == 0 else (ours, base)
        t1, t2 = _timed(first, device), _timed(second, device)
        tb.add(t1 if first is base else t2)
        to.add(t2 if first is base else t1)
    return tb.timing("forward"), to.timing("forward + CAM")


def cam_only(model, x, targets, iters: int, device: torch.device) -> Timing:
    """Seconds of class maps + bicubic upsampling + min-max on precomputed features."""
    from cam.postprocess import postprocess

    with torch.no_grad():
        feats = model.forward_features(x)
        work = lambda: postprocess(model.class_maps(feats, targets)[:, None], tuple(x.shape[-2:]))  # noqa: E731
        work()
        t = Timer()
        for _ in range(iters):
            t.add(_timed(work, device))
        return t.timing("CAM only")


def cpu_section(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = create_model("resnet50", 1000).to(device).eval()
    x = torch.randn(args.batch_size, 3, 224, 224, device=device)
    targets = torch.randint(0, 1000, (args.batch_size,), device=device)
    print(
        f"## ResNet-50 (layer4 stride 1, 14x14 CAM), 224x224, batch {args.batch_size}, "
        f"{args.iters} iterations, device {device}"
    )
    if device.type == "cpu":
        print(
            f"CPU: {_cpu_name()}; torch threads {torch.get_num_threads()}; "
            f"load average {os.getloadavg()[0]:.2f} (shared machines skew absolute numbers, "
            "not the interleaved ratio)"
        )
    tb, to = forward_vs_cam(model, x, targets, args.iters, device)
    r = ratio(to, tb)
    tc = cam_only(model, x, targets, args.iters, device)
    b = args.batch_size
    print(f"forward only              : {tb.fmt('ms/batch', 1e3, 1)}; {tb.rate(b).median:.1f} img/s")
    print(f"forward + CAM + up + norm : {to.fmt('ms/batch', 1e3, 1)}; {to.rate(b).median:.1f} img/s")
    print(f"ratio (target <= 1.10)    : {r.fmt('x', digits=3)}  {'OK' if r.median <= 1.10 else 'ABOVE TARGET'}")
    print(
        f"CAM + up + norm alone     : {tc.fmt('ms/batch', 1e3, 1)} (= {tc.median / tb.median:.3f} of the "
        "forward: the noise-free part of the ratio)"
    )

    if args.skip_methods:
        return
    print(f"\n## grad-cam methods (ResNet-50, batch {args.method_batch}, device {device})")
    xs, ts = x[: args.method_batch], targets[: args.method_batch]
    for name in cam.CAM_METHODS.names():
        if name == "cam":
            continue
        method = cam.CAM_METHODS[name]
        if name == "scorecam" and not args.heavy:
            channels = 2048
            est = tb.median / args.batch_size * channels  # seconds per image: one forward per channel
            print(
                f"{name:20s}: ~{1 / est:8.4f} img/s (estimate: {channels} masked full forwards "
                "per image at the measured forward speed; --heavy times it)"
            )
            continue
        kw = {"batch_size": 64} if method.heavy else {}
        cam.compute_cams(model, xs[:1], ts[:1], method=name, **kw)  # warm-up (imports, allocs)
        t = Timer()
        for _ in range(args.method_runs):
            t.add(_timed(lambda name=name, kw=kw: cam.compute_cams(model, xs, ts, method=name, **kw), device))
        t = t.timing(name)
        print(f"{name:20s}: {t.rate(xs.shape[0]).fmt('img/s', digits=2)}")


def gpu_section(args: argparse.Namespace) -> None:
    device = torch.device(args.gpu_device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("\n## GPU: skipped (torch.cuda.is_available() is False on this machine)")
        return
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{device} (dry run)"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    b = args.gpu_batch_size
    for layout, cam_side, opts in (
        ("wsolevaluation, layer4 stride 1", 14, {}),
        ("torchvision / CutMix, layer4 stride 2", 7, {"layer4_stride": 2}),
    ):
        torch.manual_seed(0)
        model = create_model("resnet50", 1000, **opts).to(device).eval()
        model = model.to(memory_format=torch.channels_last)
        side = args.gpu_size
        x = torch.randn(b, 3, side, side, device=device).contiguous(memory_format=torch.channels_last)
        targets = torch.randint(0, 1000, (b,), device=device)
        tb, to = forward_vs_cam(model, x, targets, args.gpu_iters, device, amp_dtype=torch.bfloat16, channels_last=True)
        rb, ro = tb.rate(b), to.rate(b)
        print(
            f"\n## GPU {name}: ResNet-50 ({layout}, {cam_side}x{cam_side} CAM at 224), {side}x{side} "
            f"input, bf16 autocast + channels_last, batch {b}"
        )
        print(f"GPU-CHECK forward only {cam_side}x{cam_side}: {rb.fmt('img/s', digits=1)}")
        print(
            f"GPU-CHECK forward+CAM {cam_side}x{cam_side}: {ro.fmt('img/s', digits=1)}; ratio "
            f"{ratio(to, tb).median:.3f} (target >= 10,000 img/s on one H100: "
            f"{'OK' if ro.median >= 10_000 else 'below'})"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=8, help="batch for forward vs CAM (default 8)")
    p.add_argument("--method-batch", type=int, default=2, help="batch for grad-cam methods (default 2)")
    p.add_argument("--iters", type=int, default=5, help="timed iterations per variant (default 5)")
    p.add_argument("--device", default="cpu", help="device of sections 1-2 (default cpu)")
    p.add_argument("--heavy", action="store_true", help="really time ScoreCAM (slow on CPU)")
    p.add_argument("--method-runs", type=int, default=MIN_RUNS, help="timed runs per grad-cam method")
    p.add_argument("--gpu-batch-size", type=int, default=256)
    p.add_argument("--gpu-iters", type=int, default=20)
    p.add_argument(
        "--gpu-size", type=int, default=224, help="input side of the GPU section (default 224; smaller for a dry run)"
    )
    p.add_argument(
        "--gpu-device",
        default="cuda",
        help="device of the GPU section (default cuda; cpu for a dry run of the section)",
    )
    p.add_argument("--skip-cpu", action="store_true", help="only the GPU section")
    p.add_argument("--skip-methods", action="store_true", help="skip the grad-cam methods")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(banner("bench_cam") + f"; torch {torch.__version__}")
    if not args.skip_cpu:
        cpu_section(args)
    gpu_section(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
