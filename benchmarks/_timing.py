"""Shared timing helper of the benchmarks: repeated runs, median and range, machine load, date.

Every benchmark reports a figure as ``median [min, max] over N runs, load A -> B``: the median and
the range of at least three runs, and the 1-minute load average (``os.getloadavg``) just before the
first run and just after the last one. A figure without its range and load is not comparable
between machines or days: on a shared machine the load moves timings by 2x.

    from benchmarks._timing import Timer, measure, interleave, ratio, banner

    print(banner("bench_x"))                      # date, cores, load, Python
    t = measure(lambda: work(), runs=3)           # Timing
    print("work:", t.fmt("ms", 1e3))              # "12.3 ms median [11.9, 13.0] over 3 runs, load 0.42 -> 0.51"
    a, b = interleave({"base": f, "ours": g}, runs=3).values()   # ABAB..., each its Timing
    print(ratio(a, b).fmt())                      # per-pair ratios base / ours: median [min, max]

``Timer`` collects durations measured elsewhere (a subprocess's wall time, a sum of per-map times)
into the same :class:`Timing`.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MIN_RUNS = 3

__all__ = ["MIN_RUNS", "Timing", "Timer", "load", "measure", "interleave", "ratio", "banner", "cores"]


def load() -> float:
    """The 1-minute load average (0.0 where the OS does not report one)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - non-Unix
        return 0.0


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


@dataclass
class Timing:
    """Values of repeated runs (seconds, or any unit for :func:`ratio` results) and the load
    average before the first and after the last run."""

    values: list[float]
    load_before: float
    load_after: float
    label: str = ""

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def lo(self) -> float:
        return min(self.values)

    @property
    def hi(self) -> float:
        return max(self.values)

    def fmt(self, unit: str = "s", scale: float = 1.0, digits: int = 3) -> str:
        """``"<median> <unit> median [<min>, <max>] over N runs, load A -> B"``."""
        f = f"{{:.{digits}f}}"
        m, lo, hi = (f.format(v * scale) for v in (self.median, self.lo, self.hi))
        sep = "" if unit in ("x", "") else " "
        return (
            f"{m}{sep}{unit} median [{lo}, {hi}] over {self.n} runs, "
            f"load {self.load_before:.2f} -> {self.load_after:.2f}"
        )

    def rate(self, count: float) -> Timing:
        """``count / value`` of every run (e.g. images/s from seconds), same loads."""
        return Timing([count / v for v in self.values], self.load_before, self.load_after, self.label)

    def scaled(self, factor: float) -> Timing:
        """Every value times ``factor`` (e.g. seconds per map from seconds per split)."""
        return Timing([v * factor for v in self.values], self.load_before, self.load_after, self.label)

    def as_dict(self, scale: float = 1.0) -> dict:
        return {
            "median": self.median * scale,
            "min": self.lo * scale,
            "max": self.hi * scale,
            "runs": self.n,
            "load_before": self.load_before,
            "load_after": self.load_after,
        }


@dataclass
class Timer:
    """Collects durations measured by the caller: ``t = Timer(); t.add(seconds); t.timing()``."""

    values: list[float] = field(default_factory=list)
    load_before: float = field(default_factory=load)

    def add(self, value: float) -> None:
        self.values.append(float(value))

    def timing(self, label: str = "") -> Timing:
        return Timing(list(self.values), self.load_before, load(), label)


def _check_runs(runs: int) -> int:
    runs = int(runs)
    if runs < 1:
        raise ValueError("runs must be >= 1")
    if runs < MIN_RUNS:
        print(f"note: {runs} run(s) (< {MIN_RUNS}): a range of fewer than {MIN_RUNS} runs says little", file=sys.stderr)
    return runs


def measure(fn: Callable[[], object], runs: int = MIN_RUNS, label: str = "") -> Timing:
    """Wall time (``perf_counter``) of ``fn()``, ``runs`` times."""
    runs = _check_runs(runs)
    t = Timer()
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t.add(time.perf_counter() - t0)
    return t.timing(label)


def interleave(fns: dict[str, Callable[[], object]], runs: int = MIN_RUNS) -> dict[str, Timing]:
    """Run the functions in turn (A B C A B C ...), ``runs`` rounds, so that a change of the
    machine's load hits all of them alike; returns each one's :class:`Timing`."""
    runs = _check_runs(runs)
    before = load()
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[k].append(time.perf_counter() - t0)
    after = load()
    return {k: Timing(v, before, after, k) for k, v in out.items()}


def ratio(num: Timing, den: Timing) -> Timing:
    """Per-run ratios ``num[i] / den[i]`` (runs paired in order, as :func:`interleave` makes
    them): their median and range, with the load span of both."""
    if num.n != den.n:
        raise ValueError("ratio needs the same number of runs on both sides")
    vals = [a / b for a, b in zip(num.values, den.values)]
    return Timing(
        vals, min(num.load_before, den.load_before), max(num.load_after, den.load_after), f"{num.label} / {den.label}"
    )


def banner(name: str) -> str:
    """One line: benchmark name, date and time, cores, the three load averages, Python, OS."""
    try:
        l1, l5, l15 = os.getloadavg()
    except (AttributeError, OSError):  # pragma: no cover
        l1 = l5 = l15 = 0.0
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"{name}: {now}, {cores()} cores ({platform.processor() or platform.machine()}), "
        f"load {l1:.2f} {l5:.2f} {l15:.2f} (1/5/15 min), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
