"""benchmarks/gpu_check.sh --dry-run: the one-go GPU check runs to the end on a CPU with tiny sizes
(and without grad-cam) and prints every measurement's line."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINES = (
    "GPU-CHECK machine:",
    "GPU-CHECK sweep kernel ready:",
    "GPU-CHECK forward only 14x14:",
    "GPU-CHECK forward+CAM 14x14:",
    "GPU-CHECK forward only 7x7:",
    "GPU-CHECK forward+CAM 7x7:",
    "GPU-CHECK evaluate 24 JPEGs end to end:",
    "GPU-CHECK evaluate / forward-only:",
    "GPU-CHECK forward-only pass 24 JPEGs:",
    "GPU-CHECK train 3 steps:",
    "GPU-CHECK train steps/s:",
)


@pytest.mark.slow
def test_gpu_check_dry_run_prints_every_measurement(tmp_path):
    p = subprocess.run(
        [
            "bash",
            str(ROOT / "benchmarks" / "gpu_check.sh"),
            "--dry-run",
            "--out",
            str(tmp_path),
            "--python",
            sys.executable,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    out = p.stdout
    assert p.returncode == 0, out[-4000:] + p.stderr[-2000:]
    summary = out[out.index("=== summary") :]
    for head in LINES:
        line = next((ln for ln in summary.splitlines() if ln.startswith(head)), None)
        assert line is not None, f"missing {head!r} in:\n{summary}"
        if head not in ("GPU-CHECK machine:", "GPU-CHECK sweep kernel ready:"):
            assert re.search(r"median \[[-\d.]+, [-\d.]+\] over \d+ runs, load [\d.]+ -> [\d.]+", line), line
    assert "grad-cam no" in summary  # the dry run proves that nothing needs grad-cam
    for step in ("0.", "1.", "2.", "3."):
        assert any(ln.startswith(f"=== {step}") and ": exit 0 after" in ln for ln in out.splitlines()), step
    assert (tmp_path / "gpu_check.log").is_file()
