"""Start-up: ``wsol evaluate-scoremaps`` on a 10-image split, wall clock of the whole process.

The split: ``--n`` (10) CUB-like 224x224 float32 maps in a wsolevaluation split (the writer of
``bench_scoremaps.py``). Each run is a fresh ``wsol evaluate-scoremaps ... --output R`` process
(default options); the figure is the median and range of ``--runs`` (5) runs with the load. For
scale it also times ``python -c pass`` and ``wsol --help`` (the interpreter and the CLI's own
start), and prints the slowest imports of one run (``python -X importtime``) and which sweep ran
(``sweep_method`` of the result: a split this small is swept with the exact OpenCV path before
numba would even have loaded, see ``eval.scoremaps.SMALL_SPLIT_LEVELS``).

    python benchmarks/bench_startup.py            # target: <= 1.0 s
    python benchmarks/bench_startup.py --n 200    # where numba's kernel is loaded (from its cache)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._timing import Timer, banner  # noqa: E402
from benchmarks.bench_scoremaps import write_split, wsol_command  # noqa: E402


def _wall(cmd: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    return wall, p


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--intervals", type=float, nargs="+", default=[0.01, 0.001])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    print(banner("bench_startup"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        meta, maps = write_split(root, args.n)
        out = root / "r.json"
        for label, cmd in (
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("wsol --help", wsol_command() + ["--help"]),
        ):
            t = Timer()
            for _ in range(args.runs):
                t.add(_wall(cmd)[0])
            print(f"{label:<40}: {t.timing().fmt('s', digits=3)}")
        for interval in args.intervals:
            cmd = wsol_command() + [
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
            _wall(cmd)  # the first run after a change fills numba's cache / the OS file cache
            t = Timer()
            for _ in range(args.runs):
                t.add(_wall(cmd)[0])
            method = json.loads(out.read_text()).get("sweep_method")
            print(
                f"{'evaluate-scoremaps, ' + str(args.n) + ' maps, interval ' + format(interval, 'g'):<40}: "
                f"{t.timing().fmt('s', digits=3)} (sweep: {method}; target <= 1.0 s)",
                flush=True,
            )
        # where the time goes: the slowest imports of one run
        _, p = _wall([sys.executable, "-X", "importtime", "-m", "wsol"] + cmd[len(wsol_command()) :])
        rows = []
        for line in p.stderr.splitlines():
            if line.startswith("import time:") and "|" in line:
                try:
                    _, cum, raw = line[len("import time:") :].split("|")
                    rows.append((int(cum), raw))
                except ValueError:
                    continue
        # top-level imports only (nested ones are indented further)
        top = [(cum, raw.strip()) for cum, raw in rows if not raw.startswith("  ")]
        top.sort(reverse=True)
        print(
            "slowest top-level imports of one run (cumulative ms): "
            + ", ".join(f"{name} {cum / 1000:.0f}" for cum, name in top[:8])
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
