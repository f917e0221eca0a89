"""The number of CPU cores this process may use (the one place it is computed)."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores in this process's affinity mask (what ``taskset``/cgroups allow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)
