"""The number of CPU cores this process may use, and the most worker processes a run may ask
for (the one place each is computed)."""

from __future__ import annotations

import os

WORKERS_PER_CORE = 8  # the most worker processes per usable core a run may ask for ...
MIN_WORKER_LIMIT = 64  # ... but never fewer than this many, however few cores there are


def usable_cores() -> int:
    """Cores in this process's affinity mask (what ``taskset``/cgroups allow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def max_workers() -> int:
    """The most worker processes ``--workers`` (and :class:`eval.sweep.SweepPool`) accept:
    ``max(64, 8 x usable cores)``. More only oversubscribes the machine (thousands of processes
    on a few cores stall it)."""
    return max(MIN_WORKER_LIMIT, WORKERS_PER_CORE * usable_cores())
