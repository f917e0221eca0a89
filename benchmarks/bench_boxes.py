"""Box-sweep speed: the straightforward OpenCV evaluator vs eval.sweep, on the same CUB-like maps.

Maps: 224x224, bicubic-upsampled from 14x14 or 28x28 random grids, either Gaussian-smoothed
first ("smooth") or not ("noisy"), min-max normalized; one GT box each (20-90% of the side). For
each interval (0.001 = wsolevaluation's main.py, 0.01 = its CLI) and each protocol version (V2 all
contours, V1 largest contour) it times

* the baseline (benchmarks/baseline_boxes.py), single process, as users run it today;
* ours "exact": the per-threshold best IoU (``eval.sweep.sweep``), single process; checked
  identical (bit for bit) to the baseline's best IoUs;
* ours "hits": the per-threshold hits at IoU 30/50/70 (``eval.sweep.sweep_hits``, what
  ``BoxAccuracy`` / ``evaluate-scoremaps`` compute), single process, and with a process pool of
  ``--workers`` (default 2) processes (wall clock including the pool start and the map generation
  inside the workers, so that ratio is conservative); checked identical to ``baseline >= delta``.

Single-process timings are sums of per-map evaluation times (map generation excluded). This
machine is shared: absolute numbers are noisy, ratios less so.

    python benchmarks/bench_boxes.py            # 2,000 maps
    python benchmarks/bench_boxes.py --n 200    # quicker
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import MIN_RUNS, Timer, banner, ratio  # noqa: E402
from benchmarks.baseline_boxes import baseline_best_iou  # noqa: E402
from eval.sweep import HAVE_NUMBA, sweep, thresholds_from_interval, warm_up  # noqa: E402

SIZE = 224
KINDS = ("smooth14", "smooth28", "noisy14", "noisy28")


def make_inputs(n: int, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Low-resolution grids and GT boxes (cheap to keep and to send to workers)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        g = 14 if kind.endswith("14") else 28
        grid = rng.random((g, g))
        if kind.startswith("smooth"):
            grid = cv2.GaussianBlur(grid, (0, 0), sigmaX=1.5 if g == 14 else 2.5)
        w, h = rng.integers(int(0.2 * SIZE), int(0.9 * SIZE), 2)
        x0 = rng.integers(0, SIZE - w)
        y0 = rng.integers(0, SIZE - h)
        out.append((kind, grid, np.array([[x0, y0, x0 + w - 1, y0 + h - 1]], dtype=np.int64)))
    return out


def upsample(grid: np.ndarray) -> np.ndarray:
    """Bicubic upsampling to 224x224, then min-max normalization (wsolevaluation's order)."""
    m = cv2.resize(grid, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    m -= m.min()
    return m / m.max()


DELTAS = (30, 50, 70)


def _ours_job(job):
    grid, gt, interval, multi_contour = job
    r = sweep(
        upsample(grid), gt, thresholds_from_interval(interval), multi_contour=multi_contour, iou_thresholds=DELTAS
    )
    return r.hits, r.num_fallback_levels


def _baseline_time(inputs, interval, multi_contour):
    t = thresholds_from_interval(interval)
    res, total = [], 0.0
    for _, grid, gt in inputs:
        m = upsample(grid)
        t0 = time.perf_counter()
        res.append(baseline_best_iou(m, gt, t, multi_contour))
        total += time.perf_counter() - t0
    return total, res


def _ours_time(inputs, interval, multi_contour, deltas=None):
    t = thresholds_from_interval(interval)
    res, total, fallbacks = [], 0.0, 0
    for _, grid, gt in inputs:
        m = upsample(grid)
        t0 = time.perf_counter()
        r = sweep(m, gt, t, multi_contour=multi_contour, iou_thresholds=deltas)
        total += time.perf_counter() - t0
        res.append(r.best_iou if deltas is None else r.hits)
        fallbacks += r.num_fallback_levels
    return total, res, fallbacks


def _ours_pool_time(inputs, interval, multi_contour, workers):
    jobs = [(grid, gt, interval, multi_contour) for _, grid, gt in inputs]
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    t0 = time.perf_counter()
    with ctx.Pool(workers, initializer=warm_up) as pool:
        out = pool.map(_ours_job, jobs, chunksize=16)
    wall = time.perf_counter() - t0
    return wall, [o[0] for o in out], sum(o[1] for o in out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="number of maps (default: %(default)s)")
    ap.add_argument("--workers", type=int, default=2, help="processes for the pooled run (default: 2)")
    ap.add_argument("--intervals", type=float, nargs="+", default=[0.001, 0.01])
    ap.add_argument("--versions", nargs="+", default=["V2", "V1"], choices=["V2", "V1"])
    ap.add_argument("--runs", type=int, default=MIN_RUNS, help="runs of every timing (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    print(banner("bench_boxes"))
    if not HAVE_NUMBA:
        print("numba is not installed: 'ours' is the deduplicated OpenCV path")
    t0 = time.perf_counter()
    warm_up()
    print(f"kernel load/compile: {time.perf_counter() - t0:.2f} s (cached on disk after the first run)")
    inputs = make_inputs(args.n, args.seed)
    t0 = time.perf_counter()
    for _, grid, _ in inputs[:200]:
        upsample(grid)
    gen_ms = (time.perf_counter() - t0) / min(200, len(inputs)) * 1e3
    print(
        f"{args.n} maps {SIZE}x{SIZE} ({', '.join(KINDS)}), 1 GT box each; map generation "
        f"{gen_ms:.2f} ms/map (excluded from single-process timings); {args.runs} runs of each "
        "timing, alternating; ms = per map, median [min, max]; ratio = baseline / ours per run\n"
    )
    all_ok = True
    deltas = np.asarray(DELTAS) / 100
    n = len(inputs)
    for interval in args.intervals:
        for version in args.versions:
            mc = version == "V2"
            timers = {k: Timer() for k in ("baseline", "exact", "hits", "pool")}
            same, fallbacks = True, 0
            for _ in range(args.runs):
                tb, rb = _baseline_time(inputs, interval, mc)
                te, re_, fb = _ours_time(inputs, interval, mc)
                th, rh, fb2 = _ours_time(inputs, interval, mc, DELTAS)
                tp, rp, fb3 = _ours_pool_time(inputs, interval, mc, args.workers)
                for k, v in zip(timers, (tb, te, th, tp)):
                    timers[k].add(v / n)
                same &= (
                    all(np.array_equal(a, b) for a, b in zip(rb, re_))
                    and all(np.array_equal(b[None] >= deltas[:, None], h) for b, h in zip(rb, rh))
                    and all(np.array_equal(a, b) for a, b in zip(rh, rp))
                )
                fallbacks += fb + fb2 + fb3
            t = {k: v.timing(k) for k, v in timers.items()}
            all_ok &= same
            print(
                f"interval {interval:g} {version}: identical to the baseline: {same}; V1 levels resolved "
                f"with OpenCV: {fallbacks}",
                flush=True,
            )
            print(f"  baseline (per-threshold OpenCV loop): {t['baseline'].fmt('ms', 1e3, 2)}")
            for k, what in (
                ("exact", "ours, exact best IoU, 1 process"),
                ("hits", "ours, hits (BoxAccuracy), 1 process"),
                ("pool", f"ours, hits, {args.workers} processes (wall)"),
            ):
                r = ratio(t["baseline"], t[k])
                print(
                    f"  {what:<36}: {t[k].fmt('ms', 1e3, 2)}; ratio {r.median:.1f}x [{r.lo:.1f}, {r.hi:.1f}]",
                    flush=True,
                )
    print(
        "\ntargets: single-process kernel >= 5x at 0.01; see bench_scoremaps.py for the CLI (>= 6x at "
        "0.01, >= 40x at 0.001, start-up included)"
    )
    if not all_ok:
        print("ERROR: results differ from the baseline")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
