"""The fast paths of evaluate-scoremaps: the .npy reader, small splits swept with OpenCV, the
process pool's task size, the lazy kernel. Every one must give the numbers of the plain path."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.baseline_boxes import BaselineBoxAccuracy  # noqa: E402
from benchmarks.bench_scoremaps import write_split  # noqa: E402
from eval import scoremaps  # noqa: E402
from eval.boxes import rescale_boxes_wsolevaluation  # noqa: E402
from eval.errors import InputError  # noqa: E402
from eval.metadata import read_split  # noqa: E402
from eval.scoremaps import _chunksize, _read_npy_2d, evaluate_scoremaps, load_scoremap  # noqa: E402
from eval.settings import MetricSettings  # noqa: E402
from eval.sweep import HAVE_NUMBA  # noqa: E402


def _kernel_loaded() -> bool:
    import eval.sweep as sweep_module

    return sweep_module._kernel is not None


@pytest.mark.parametrize("dtype", ["<f4", "<f8", ">f8", "<f2", "<i8", "|u1", "|b1"])
@pytest.mark.parametrize("fortran", [False, True])
def test_npy_reader_matches_np_load(tmp_path, dtype, fortran):
    a = np.random.default_rng(0).random((5, 7)).astype(dtype)
    if fortran:
        a = np.asfortranarray(a)
    p = tmp_path / "m.npy"
    np.save(p, a)
    got = _read_npy_2d(p)
    assert got is not None and got.flags.writeable
    ref = np.load(p)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)


def test_npy_reader_leaves_other_files_to_np_load(tmp_path):
    p = tmp_path / "m.npy"
    for arr in (np.zeros(3), np.zeros((2, 3, 4)), np.array([["a", "b"]]), np.zeros((0, 4))):
        np.save(p, arr)
        if arr.ndim != 2 or arr.dtype.kind not in "fiub":
            assert _read_npy_2d(p) is None
        np.testing.assert_array_equal(load_scoremap(p, "x"), np.load(p))
    p.write_bytes(b"\x93NUMPY\x01\x00" + b"\x00" * 20)  # a broken header
    assert _read_npy_2d(p) is None
    with pytest.raises(InputError, match="not a readable .npy"):
        load_scoremap(p, "x")
    np.save(p, np.zeros((4, 4)))
    p.write_bytes(p.read_bytes()[:-8])  # truncated data
    assert _read_npy_2d(p) is None
    with pytest.raises(InputError):
        load_scoremap(p, "x")
    with pytest.raises(InputError, match="not found"):
        load_scoremap(tmp_path / "missing.npy", "x")


def _reference(meta_dir: Path, maps: Path, interval: float, multi_contour: bool) -> dict:
    meta = read_split(meta_dir)
    ref = BaselineBoxAccuracy(interval, multi_contour=multi_contour)
    for iid in meta.image_ids:
        m = np.load(maps / (iid + ".npy")).astype(np.float64)
        ref.accumulate(m, rescale_boxes_wsolevaluation(meta.boxes[iid], meta.sizes[iid], m.shape[::-1]))
    return {str(d): v for d, v in ref.compute().items()}


@pytest.mark.parametrize("interval", [0.01, 0.001])
@pytest.mark.parametrize("multi_contour", [True, False])
def test_small_split_swept_with_opencv_gives_the_same_numbers(tmp_path, interval, multi_contour):
    meta_dir, maps = write_split(tmp_path, 8)
    st = MetricSettings(cam_curve_interval=interval, multi_contour=multi_contour)
    small, _ = evaluate_scoremaps(meta_dir, maps, st, workers=2)
    # OpenCV unless this test process has the kernel loaded already (then nothing is saved)
    assert small["sweep_method"] == ("opencv" if not _kernel_loaded() else "numba")
    assert small["MaxBoxAcc"] == _reference(meta_dir, maps, interval, multi_contour)
    if HAVE_NUMBA:  # the same split with the compiled kernel
        forced, _ = evaluate_scoremaps(meta_dir, maps, st.replace(method="numba"), workers=1)
        assert forced["sweep_method"] == "numba"
        for key in ("MaxBoxAcc", "MaxBoxAccV2", "best_threshold", "gt_known_loc", "ci95"):
            assert forced[key] == small[key], key


def test_small_split_rule():
    st = MetricSettings()
    if not _kernel_loaded():
        assert scoremaps._small_split(10, st)
        assert scoremaps._small_split(30, st)  # 30 x 100 levels
        assert not scoremaps._small_split(31, st)
        assert scoremaps._small_split(11, MetricSettings(cam_curve_interval=0.001))  # 11 x 255
        assert not scoremaps._small_split(12, MetricSettings(cam_curve_interval=0.001))
    assert not scoremaps._small_split(10, st.replace(method="numba"))


def test_chunksize_keeps_workers_busy_together():
    assert _chunksize(10, 2) == 1
    assert _chunksize(2000, 2) == 16
    assert _chunksize(200, 2) == 6
    assert _chunksize(5, 1) == 1


def _python(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_small_split_and_mask_pools_do_not_load_numba(tmp_path):
    meta_dir, maps = write_split(tmp_path, 5)
    out = _python(
        "import sys\n"
        "from eval.scoremaps import evaluate_scoremaps\n"
        f"r, _ = evaluate_scoremaps({str(meta_dir)!r}, {str(maps)!r}, workers=2)\n"
        "from eval.sweep import SweepPool\n"
        "with SweepPool(2, kernel=False) as pool:\n"
        "    assert list(pool.imap(abs, [-1, -2, 3])) == [1, 2, 3]\n"
        "print(r['sweep_method'], 'numba' in sys.modules)"
    )
    assert out == "opencv False"


def test_pool_and_cli_leave_the_callers_garbage_collector_alone(tmp_path):
    """The fork freezes the parent's objects only for the workers; ``run`` called in-process (not
    as the ``wsol`` process) does not freeze at exit."""
    import gc

    from eval.sweep import SweepPool
    from wsol.cli import main

    with SweepPool(2, kernel=False) as pool:
        assert list(pool.imap(abs, [-1, 2])) == [1, 2]
        assert gc.get_freeze_count() == 0
    meta_dir, maps = write_split(tmp_path, 3)
    out = tmp_path / "r.json"
    rc = main(
        [
            "evaluate-scoremaps",
            "--metadata-dir",
            str(meta_dir),
            "--scoremap-dir",
            str(maps),
            "--output",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0 and out.is_file()
    assert gc.get_freeze_count() == 0
