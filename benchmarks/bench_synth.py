"""Synthetic benchmark generation speed on one core (target: >= 500 images/s, files included).

Prints images/s for: rendering only; rendering + PNG encoding with PIL (the obvious baseline);
rendering + our minimal deterministic PNG encoder; and the full ``generate_synthetic`` (files,
masks and annotation lists written to a temporary folder). CPU time is reported beside wall time
because this machine may be shared. Each figure: median [min, max] over ``--runs`` runs, load.

    python benchmarks/bench_synth.py [--images 1000] [--size 64] [--dir .]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import MIN_RUNS, Timer, banner  # noqa: E402
from wsol.data.synthetic import SynthConfig, _png_bytes, generate_synthetic, render_sample, sample_rng  # noqa: E402


def _pil_png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _time(label: str, n: int, fn, runs: int) -> None:
    wall, cpu = Timer(), Timer()
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.add(time.perf_counter() - w0)
        cpu.add(time.process_time() - c0)
    print(
        f"{label}:\n  wall {wall.timing().rate(n).fmt('img/s', digits=0)}\n"
        f"  cpu  {cpu.timing().rate(n).fmt('img/s', digits=0)}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--dir", default=".", help="where the temporary output folder goes (default: here)")
    ap.add_argument("--runs", type=int, default=MIN_RUNS, help="runs of each timing (default: %(default)s)")
    args = ap.parse_args()
    cfg = SynthConfig(size=args.size)
    n = args.images
    jobs = [(k % cfg.classes, k // cfg.classes) for k in range(n)]
    render_sample(0, sample_rng(cfg, "train", 0, 0), cfg)  # warm-up

    def render(encode=None):
        def go():
            for c, k in jobs:
                s = render_sample(c, sample_rng(cfg, "train", c, k), cfg)
                if encode is not None:
                    encode(s.image)
                    encode(s.mask.astype(np.uint8) * 255)

        return go

    print(banner("bench_synth"))
    print(f"synthetic generator, {n} images of {args.size}x{args.size}, one core, {args.runs} runs each")
    _time("render only", n, render(), args.runs)
    _time("render + PIL PNG (baseline encoder)", n, render(_pil_png), args.runs)
    _time(
        "render + minimal PNG (ours: stored RGB, zlib-1 mask)",
        n,
        render(lambda a: _png_bytes(a, level=0 if a.ndim == 3 else 1)),
        args.runs,
    )
    per_class = max(1, n // cfg.classes)
    full = SynthConfig(size=args.size, train_per_class=per_class, val_per_class=0, test_per_class=0)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix=".bench_synth_") as tmp:
        count = iter(range(10**6))
        _time(
            "generate_synthetic (files written; target >= 500 img/s)",
            per_class * cfg.classes,
            lambda: generate_synthetic(os.path.join(tmp, f"out{next(count)}"), full),
            args.runs,
        )


if __name__ == "__main__":
    main()
