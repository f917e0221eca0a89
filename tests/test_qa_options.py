"""QA findings on option bounds, through the real CLI: ``--workers`` has an upper bound and the
pool never starts more processes than there are images; ``--cam-curve-interval`` has a lower
bound; list options refuse a value given twice where it would collapse silently.

Every refusal: exit status 2, one ``wsol <cmd>: error: ...`` line naming the limit, no traceback.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
from pathlib import Path

import pytest

from eval.cores import max_workers, usable_cores
from eval.errors import InputError
from eval.settings import MIN_CAM_CURVE_INTERVAL, MetricSettings
from wsol.cli import main

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_scoremaps import write_split  # noqa: E402


def _argparse_error(capsys, argv: list[str], *needles: str) -> str:
    """``main(argv)`` exits 2 with one error line (after argparse's usage) naming every needle."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert "Traceback" not in err
    errors = [ln for ln in err.splitlines() if ": error: " in ln]
    assert len(errors) == 1 and errors[0].startswith("wsol "), err
    assert err.strip().splitlines()[-1] == errors[0], err  # the error is the last line, one line
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    return errors[0]


# every command that takes --workers (grep add_argument.*workers under wsol/commands), with the
# other options it requires (the values are never read: --workers is refused first)
WORKER_COMMANDS = {
    "evaluate": ["evaluate", "--checkpoint", "c.pt", "--dataset", "synthetic", "--data-root", "d", "--output", "o"],
    "evaluate-scoremaps": ["evaluate-scoremaps", "--metadata-dir", "m", "--scoremap-dir", "s", "--output", "o"],
    "compare": ["compare", "a.json"],
    "robustness": ["robustness", "--checkpoint", "c.pt", "--attack", "fgsm", "--dataset", "synthetic"]
    + ["--data-root", "d", "--out", "o"],
    "figure grid": ["figure", "grid", "--checkpoint", "c.pt", "--dataset", "synthetic", "--data-root", "d"]
    + ["--out", "o"],
    "zoo study": ["zoo", "study", "imagenet-resnet50", "--data-root", "d", "--out", "o"],
}


# ---------------------------------------------------------------------------------- --workers


@pytest.mark.parametrize("command", list(WORKER_COMMANDS))
def test_workers_above_the_limit_is_refused_by_every_command(capsys, command):
    # --workers 100000 started ~3,200 processes on a 2-core machine and hung it
    limit = max_workers()
    assert limit == max(64, 8 * usable_cores())
    err = _argparse_error(capsys, [*WORKER_COMMANDS[command], "--workers", "100000"], "--workers", str(limit))
    assert "100000" in err


def test_workers_at_the_limit_is_accepted(capsys):
    # the limit itself parses (the command then fails on the missing checkpoint, not on --workers)
    argv = [*WORKER_COMMANDS["evaluate"], "--device", "cpu", "--workers", str(max_workers())]
    assert main(argv) == 2
    assert "--workers" not in capsys.readouterr().err


class _CountingContext:
    """A multiprocessing context whose ``Pool`` records its size and refuses more processes than
    ``most`` (so that the old code fails before forking them)."""

    def __init__(self, most: int):
        self.most = most
        self.sizes: list[int] = []
        self._real = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)

    def Pool(self, processes, *args, **kwargs):  # noqa: N802 - multiprocessing's name
        self.sizes.append(processes)
        assert processes <= self.most, f"a pool of {processes} processes for {self.most} images"
        return self._real.Pool(processes, *args, **kwargs)


def test_evaluate_scoremaps_pool_has_no_more_processes_than_images(tmp_path, monkeypatch, capsys):
    # --workers 64 (the limit here) on a 12-image split: at most 12 sweep processes, same numbers
    import eval.sweep

    n = 12  # 12 images x 255 levels > the small-split bound: a pool is used
    meta_dir, maps = write_split(tmp_path, n)
    ctx = _CountingContext(n)
    monkeypatch.setattr(eval.sweep, "_mp_context", lambda: ctx)
    results = {}
    for workers in ("0", "2", str(max_workers())):
        out = tmp_path / f"r{workers}.json"
        argv = ["evaluate-scoremaps", "--metadata-dir", str(meta_dir), "--scoremap-dir", str(maps)]
        argv += ["--cam-curve-interval", "0.001", "--workers", workers, "--no-progress", "--output", str(out)]
        assert main(argv) == 0, capsys.readouterr().err
        results[workers] = json.loads(out.read_text())
    assert ctx.sizes and max(ctx.sizes) <= n, ctx.sizes
    assert 2 in ctx.sizes  # --workers 2 did use a pool of 2
    metrics = {w: {k: v for k, v in r.items() if "time" not in k and "worker" not in k} for w, r in results.items()}
    first = metrics["0"]
    for w, m in metrics.items():
        for key in ("MaxBoxAcc", "MaxBoxAccV2", "BoxAcc_curve"):
            if key in first:
                assert m[key] == first[key], (w, key)


def test_sweep_pool_caps_library_callers():
    # library callers bypass argparse: the pool itself never exceeds the limit nor the items
    from eval.sweep import SweepPool

    assert SweepPool(100_000, kernel=False).workers == max_workers()
    assert SweepPool(50, kernel=False, items=3).workers == 3
    with SweepPool(50, kernel=False) as pool:
        assert list(pool.imap(abs, iter([-1, -2, 3]))) == [1, 2, 3]  # a generator: counted ahead
        assert pool.workers == 3
    with SweepPool(50, kernel=False) as pool:
        assert list(pool.imap(abs, [-4])) == [4]
        assert pool.workers == 1 and pool._pool is None  # one item: in this process


def test_runtime_worker_counts_never_exceed_the_work():
    import torch

    from wsol.runtime import loader_workers, sweep_workers

    assert sweep_workers(100_000) == max_workers()
    assert sweep_workers(64, images=18) == min(64, max_workers(), 18)
    assert sweep_workers(None, images=1) == 1
    assert sweep_workers(0, images=18) == 0
    assert loader_workers(64, torch.device("cuda"), batches=2) == 2
    assert loader_workers(64, torch.device("cpu"), batches=0) == 0
    assert loader_workers(64, torch.device("cuda")) == 4


# ------------------------------------------------------------------------- --cam-curve-interval


@pytest.mark.parametrize("command", ["evaluate", "evaluate-scoremaps", "compare"])
@pytest.mark.parametrize("interval", ["1e-9", "1e-8", "1e-7", "1e-6", "0.00009"])
def test_tiny_cam_curve_interval_is_refused(capsys, command, interval):
    # 1e-9 got the process killed, 1e-8 a numpy _ArrayMemoryError traceback, 1e-6 a 72 MB JSON
    argv = [*WORKER_COMMANDS[command], "--cam-curve-interval", interval]
    _argparse_error(capsys, argv, "--cam-curve-interval", f"at least {MIN_CAM_CURVE_INTERVAL:g}", interval)


@pytest.mark.parametrize("interval", ["1", "1.5", "0", "-0.01", "nan", "inf"])
def test_cam_curve_interval_outside_0_1_is_refused(capsys, interval):
    _argparse_error(capsys, [*WORKER_COMMANDS["evaluate"], "--cam-curve-interval", interval], "(0, 1)")


def test_cam_curve_interval_limits_in_metric_settings():
    with pytest.raises(InputError, match=f"at least {MIN_CAM_CURVE_INTERVAL:g}") as exc:
        MetricSettings(cam_curve_interval=1e-8)
    assert "\n" not in str(exc.value)
    for bad in (1.0, 0.0, float("nan")):
        with pytest.raises(InputError, match=r"\(0, 1\)"):
            MetricSettings(cam_curve_interval=bad)
    assert len(MetricSettings(cam_curve_interval=MIN_CAM_CURVE_INTERVAL).thresholds) == 10_000
    assert list(MetricSettings(cam_curve_interval=0.9).thresholds) == [0.0, 0.9]  # coarse: two thresholds


def test_evaluate_at_the_finest_and_coarsest_interval(tiny_checkpoint, tiny_synth, tmp_path, capsys, one_torch_thread):
    base = ["evaluate", "--checkpoint", str(tiny_checkpoint), "--dataset", "synthetic", "--data-root", str(tiny_synth)]
    base += ["--device", "cpu", "--workers", "0", "--no-progress"]
    for interval, n in (("0.0001", 10_000), ("0.9", 2)):
        out = tmp_path / f"r{interval}.json"
        assert main([*base, "--cam-curve-interval", interval, "--output", str(out)]) == 0, capsys.readouterr().err
        result = json.loads(out.read_text())
        assert len(result["BoxAcc_curve"]["thresholds"]) == n
        assert sorted(result["MaxBoxAcc"]) == ["30", "50", "70"]


# ------------------------------------------------------------------------------- repeated values


@pytest.mark.parametrize("values", [["50", "50"], ["30", "50", "50.0"]])
@pytest.mark.parametrize("command", ["evaluate", "evaluate-scoremaps", "compare"])
def test_repeated_iou_threshold_is_refused(capsys, command, values):
    # --iou-thresholds 50 50 gave one key in the JSON while iou_thresholds said [50, 50]
    _argparse_error(capsys, [*WORKER_COMMANDS[command], "--iou-thresholds", *values], "--iou-thresholds", "50", "twice")


def test_repeated_iou_threshold_in_metric_settings():
    with pytest.raises(InputError, match="50 is given twice"):
        MetricSettings(iou_thresholds=(50, 50.0))
    assert MetricSettings(iou_thresholds=(70, 30)).iou_thresholds == (70, 30)  # order is kept
