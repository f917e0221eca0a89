"""eval/results.py: the result format -- assemble, write, read back (same values, fixed key order), summarize."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from eval.errors import InputError
from eval.evaluator import LocalizationEvaluator, score_image
from eval.results import (
    HEAD_KEYS,
    LAST_KEYS,
    RUN_KEYS,
    assemble_result,
    boxacc_curve_of,
    format_summary,
    load_result,
    metric_interval,
    metric_value,
    per_class_of,
    per_class_rows,
    per_image_of,
    read_per_class_csv,
    rows_csv_text,
    to_jsonable,
    write_result,
)
from eval.settings import MetricSettings
from tests.eval.test_sweep import make_map, random_gt


@pytest.fixture(scope="module")
def evaluated():
    """``(metrics, per_image)`` of a small evaluated split (boxes, labels and top-5 predictions)."""
    rng = np.random.default_rng(3)
    st = MetricSettings(cam_curve_interval=0.05)
    ev = LocalizationEvaluator(st)
    for i in range(9):
        m = make_map(rng, ("smooth", "blocks", "noisy")[i % 3], 28, 28)
        ev.add(
            f"{i % 3:03d}.cls/img_{i}.jpg", score_image(st, m, random_gt(rng, 28, 28)), i % 3, list(rng.permutation(5))
        )
    return ev.compute(resamples=100)


def _run_keys():
    return {
        "checkpoint": "runs/x/last.pt",
        "arch": "small_cnn",
        "arch_options": {"layer4_stride": 1},
        "model": {"arch": "small_cnn"},
        "cam_method": "cam",
        "dataset": "synthetic",
        "split": "test",
        "preset": None,
        "num_skipped": 0,
        "skipped": [],
        "num_without_gt_in_frame": 0,
        "processes": 1,
        "device": "cpu",
        "elapsed_seconds": 1.25,
        "images_per_second": 7.2,
        "note": "an extra run key",
    }


def test_assemble_write_load_round_trip(evaluated, tmp_path):
    metrics, per_image = evaluated
    result = assemble_result(metrics, **_run_keys())
    classes = per_class_rows(per_image, ["000.cls", "001.cls", "002.cls"])
    (tmp_path / "r.per_class.csv").write_text(rows_csv_text(classes))
    result = assemble_result(result, per_class="r.per_class.csv", config="r.config.json")
    path = write_result(tmp_path / "r.json", result, per_image=per_image)

    loaded = load_result(path)
    assert loaded.name == "r" and loaded.path == path
    expected = {**to_jsonable(result), "per_image": "r.per_image.csv"}
    assert loaded.data == expected  # same values (JSON types)
    # the fixed, documented order: what the run was, the metrics, other keys, how it went, side files
    keys = list(loaded.data)
    assert keys[: len(HEAD_KEYS)] == [k for k in HEAD_KEYS if k in loaded.data]
    assert keys[:2] == ["num_images", "cam_curve_interval"]
    assert keys[-len(LAST_KEYS) :] == list(LAST_KEYS)
    run_part = [k for k in keys if k in RUN_KEYS]
    assert run_part == [k for k in RUN_KEYS if k in loaded.data]
    assert keys.index("note") > max(keys.index(k) for k in metrics if k not in (*HEAD_KEYS, *LAST_KEYS))
    assert keys.index("note") < keys.index("num_skipped")
    metric_order = [k for k in keys if k in metrics and k not in (*HEAD_KEYS, *LAST_KEYS)]
    assert metric_order == [k for k in metrics if k not in (*HEAD_KEYS, *LAST_KEYS)]

    # the numbers read back as written
    for d, v in metrics["MaxBoxAcc"].items():
        assert metric_value(loaded, f"MaxBoxAcc@{d}") == v
        assert metric_interval(loaded, f"MaxBoxAcc@{d}") == tuple(metrics["ci95"][f"MaxBoxAcc@{d}"])
    for key in ("MaxBoxAccV2", "top1_loc", "top5_loc", "gt_known_loc", "top1_cls", "top5_cls"):
        assert metric_value(loaded, key) == metrics[key]
    t, curves = boxacc_curve_of(loaded)
    np.testing.assert_array_equal(t, metrics["BoxAcc_curve"]["thresholds"])
    for d in metrics["MaxBoxAcc"]:
        np.testing.assert_array_equal(curves[d], metrics["BoxAcc_curve"][d])

    # the per-image CSV: same ids, hits, labels and IoUs (floats at repr precision: exact)
    pi = per_image_of(loaded)
    assert pi.image_ids == per_image["image_id"]
    for col, values in per_image.items():
        if col != "image_id":
            np.testing.assert_array_equal(pi.columns[col], np.asarray(values, dtype=pi.columns[col].dtype))
    assert pi.columns["best_iou"].tolist() == per_image["best_iou"]

    # the per-class CSV (4 decimals)
    pc = per_class_of(loaded)
    assert pc.class_names == ["000.cls", "001.cls", "002.cls"]
    for row, name in zip(classes, pc.class_names):
        for col in ("num_images", "top1_cls", "top1_loc", "gt_known_loc", "MaxBoxAccV2_hits"):
            assert pc.columns[col][pc.class_names.index(name)] == pytest.approx(row[col], abs=5e-5)


def test_write_result_puts_keys_in_order_and_refuses_overwrite(tmp_path):
    shuffled = {
        "BoxAcc_curve": {"thresholds": [0.0, 0.5], "50": [10.0, 20.0]},
        "elapsed_seconds": 2.0,
        "MaxBoxAcc": {"50": 20.0},
        "protocol": "p",
        "num_images": 3,
        "settings": {"a": 1},
        "cam_curve_interval": 0.5,
    }
    path = write_result(tmp_path / "s.json", shuffled, per_image={"image_id": ["a", "b", "c"], "hit@50": [1, 0, 0]})
    data = json.loads(path.read_text())
    assert list(data) == [
        "num_images",
        "cam_curve_interval",
        "MaxBoxAcc",
        "protocol",
        "settings",
        "elapsed_seconds",
        "per_image",
        "BoxAcc_curve",
    ]
    assert list(assemble_result(data)) == list(data)  # idempotent
    assert (tmp_path / "s.per_image.csv").read_text() == "image_id,hit@50\na,1\nb,0\nc,0\n"
    with pytest.raises(InputError):
        write_result(path, shuffled, overwrite=False)


def test_assemble_result_rules():
    r = assemble_result({"MaxBoxAcc": {"50": 1.0}, "num_images": 4, "device": "x"}, device="cpu", arch="a", zeta=1)
    assert list(r) == ["num_images", "arch", "MaxBoxAcc", "zeta", "device"]
    assert r["device"] == "cpu"  # a run key overrides a metric key


def test_to_jsonable():
    out = to_jsonable(
        {
            "a": np.float32(0.5),
            "b": (np.int64(3), np.bool_(True)),
            "c": float("nan"),
            "d": np.arange(3),
            "e": Path("x/y"),
            7: [math.inf],
        }
    )
    assert out == {"a": 0.5, "b": [3, True], "c": None, "d": [0, 1, 2], "e": "x/y", "7": [None]}
    assert type(out["b"][0]) is int and type(out["b"][1]) is bool


def test_per_class_rows_and_csv(tmp_path):
    per_image = {"label": [0, 0, 1], "top1_cls": [True, False, True], "hit@30": [1, 1, 0], "hit@50": [1, 0, 0]}
    rows = per_class_rows(per_image, ["a", "b", "empty"])
    assert rows[0] == {"class": "a", "num_images": 2, "top1_cls": 50.0, "MaxBoxAccV2_hits": 75.0}
    assert math.isnan(rows[2]["top1_cls"])
    (tmp_path / "pc.csv").write_text(rows_csv_text(rows))
    pc = read_per_class_csv(tmp_path / "pc.csv")
    assert pc.class_names == ["a", "b", "empty"]
    np.testing.assert_array_equal(pc.columns["top1_cls"], [50.0, 100.0, np.nan])


RESULT = {
    "num_images": 12,
    "cam_method": "cam",
    "images_per_second": 3.5,
    "top1_cls": 75.0,
    "gt_known_loc": 50.0,
    "MaxBoxAcc": {"30": 80.0, "50": 60.0},
    "best_threshold": {"30": 0.1, "50": 0.25},
    "MaxBoxAccV2": 70.0,
    "ci95": {"MaxBoxAcc@50": [55.0, 65.125], "top1_cls": [70.0, 80.0]},
    "num_skipped": 2,
}


def test_format_summary_table():
    assert format_summary(RESULT).splitlines() == [
        "12 images, CAM 'cam', 3.5 img/s",
        "  classification top-1            75.00  [ 70.0,  80.0]",
        "  GT-known loc (old protocol)     50.00  ",
        "  MaxBoxAcc @ IoU 30              80.00  ",
        "  MaxBoxAcc @ IoU 50              60.00  [ 55.0,  65.1]",
        "  MaxBoxAccV2                     70.00  ",
        "  skipped: 2 unreadable image(s)",
    ]


def test_format_summary_plain():
    assert format_summary(RESULT, style="plain").splitlines() == [
        "images: 12",
        "top1_cls          75.00   [70.00, 80.00]",
        "gt_known_loc      50.00",
        "MaxBoxAcc@30      80.00   tau=0.100",
        "MaxBoxAcc@50      60.00   [55.00, 65.12]   tau=0.250",
        "MaxBoxAccV2       70.00",
    ]


def test_write_result_writes_side_files_as_one_unit(tmp_path, monkeypatch):
    import os

    result = {"num_images": 1, "per_class": "r.per_class.csv", "config": "r.config.json"}
    side = {"r.per_class.csv": "class,num_images\na,1\n", tmp_path / "r.config.json": "{}\n"}
    path = write_result(tmp_path / "r.json", result, per_image={"image_id": ["x"]}, side_files=side)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "r.config.json",
        "r.json",
        "r.per_class.csv",
        "r.per_image.csv",
    ]
    assert (tmp_path / "r.per_class.csv").read_text() == "class,num_images\na,1\n"
    assert json.loads(path.read_text())["per_image"] == "r.per_image.csv"
    # the JSON's rename fails: nothing of the new result reaches the final paths
    out = tmp_path / "new"
    real = os.replace

    def replace(src, dst, *a, **k):
        if Path(dst).name == "r.json" and not str(src).endswith(".old"):
            raise OSError(5, "Input/output error")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(InputError, match="Input/output error"):
        write_result(
            out / "r.json",
            result,
            per_image={"image_id": ["x"]},
            side_files={"r.per_class.csv": "new\n", "r.config.json": "{}\n"},
        )
    assert [p.name for p in out.iterdir()] == []
