"""`wsol figure`: image selection, curves and per-class figures from result files, and the CAM grid
end to end on a tiny synthetic dataset and model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from eval.results import read_per_image_csv
from wsol.cli import main
from wsol.errors import UserError
from wsol.jobs.figure import (
    DEFAULT_TAU,
    GridConfig,
    _column_tau,
    column_names,
    denormalize_image,
    disagreement_order,
    select_by_seed,
)


def _per_image(path: Path, ids, hit50, iou) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image_id", "hit@50", "best_iou"])
        w.writerows(zip(ids, hit50, iou))
    return path


def _result(folder: Path, *, ids=None, hit50=None, iou=None, curve=True, per_class=True, extra=None) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    data = {"num_images": 4, "MaxBoxAcc": {"50": 50.0}, "best_threshold": {"30": 0.1, "50": 0.3, "70": 0.5}}
    if curve:
        t = np.arange(0, 1, 0.05)
        data["BoxAcc_curve"] = {
            "thresholds": t.tolist(),
            **{d: (60 * np.exp(-(((t - 0.3) / 0.2) ** 2)) - int(d) / 5).tolist() for d in ("30", "50", "70")},
        }
    if ids is not None:
        _per_image(folder / "pi.csv", ids, hit50, iou)
        data["per_image"] = "pi.csv"
    if per_class:
        (folder / "pc.csv").write_text(
            "class,num_images,top1_cls,top1_loc,gt_known_loc,MaxBoxAccV2_hits\n"
            + "".join(f"{c:03d}.Bird_{c},5,{80 - c},{40 + c},{50 - c},{30 + 2 * c}\n" for c in range(1, 6))
        )
        data["per_class"] = "pc.csv"
    data.update(extra or {})
    (folder / "result.json").write_text(json.dumps(data))
    return str(folder / "result.json")


# ------------------------------------------------------------------------------ pure helpers


def test_denormalize_image_inverts_imagenet_normalization():
    rgb = np.array([[[0, 255]], [[128, 64]], [[10, 200]]], dtype=np.float64) / 255.0  # [3, 1, 2]
    mean = np.array([0.485, 0.456, 0.406]).reshape(3, 1, 1)
    std = np.array([0.229, 0.224, 0.225]).reshape(3, 1, 1)
    out = denormalize_image((rgb - mean) / std)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 3)
    np.testing.assert_array_equal(out[0], [[0, 128, 10], [255, 64, 200]])
    assert denormalize_image(np.full((3, 1, 1), 100.0)).tolist() == [[[255, 255, 255]]]  # clipped
    with pytest.raises(UserError, match=r"\[3, H, W\]"):
        denormalize_image(np.zeros((4, 2, 2)))


def test_select_by_seed_is_reproducible_sorted_and_distinct():
    a = select_by_seed(100, 6, seed=3)
    assert a == select_by_seed(100, 6, seed=3) and a == sorted(set(a)) and len(a) == 6
    assert a != select_by_seed(100, 6, seed=4)
    assert select_by_seed(5, 10, seed=0) == [0, 1, 2, 3, 4]
    with pytest.raises(UserError):
        select_by_seed(5, 0, seed=0)


def test_disagreement_order(tmp_path):
    ids = ["a", "b", "c", "d", "e"]
    # three models; hits@50: image b splits 2-1, c splits 1-2, a/d/e agree; best_iou spread breaks ties
    p1 = _per_image(tmp_path / "1.csv", ids, [1, 1, 0, 0, 1], [0.6, 0.7, 0.2, 0.10, 0.9])
    p2 = _per_image(tmp_path / "2.csv", ids[::-1], [1, 0, 1, 0, 1][::-1], [0.6, 0.3, 0.6, 0.12, 0.5][::-1])
    p3 = _per_image(tmp_path / "3.csv", ids, [1, 1, 0, 0, 1], [0.6, 0.8, 0.1, 0.40, 0.9])
    tables = [read_per_image_csv(p) for p in (p1, p2, p3)]
    # b: split 1, spread 0.5; c: split 1, spread 0.5 -> tie, first-table order; e: 0.4; d: 0.3; a: 0
    assert disagreement_order(tables) == ["b", "c", "e", "d", "a"]
    # only best_iou: pure spread order
    only_iou = [
        read_per_image_csv(_per_image(tmp_path / f"i{k}.csv", ids, [0] * 5, v))
        for k, v in enumerate(([0.1, 0.5, 0.5, 0.5, 0.5], [0.9, 0.5, 0.4, 0.5, 0.2]))
    ]
    assert disagreement_order(only_iou) == ["a", "e", "c", "b", "d"]
    with pytest.raises(UserError, match="at least two models"):
        disagreement_order(tables[:1])
    other = read_per_image_csv(_per_image(tmp_path / "x.csv", ["a", "b", "c", "d", "z"], [0] * 5, [0] * 5))
    with pytest.raises(Exception, match="not evaluated on the same images"):
        disagreement_order([tables[0], other])


def test_column_names_and_thresholds(tmp_path):
    assert column_names(["base", "cutmix"], ["cam"]) == ["base", "cutmix"]
    assert column_names(["base"], ["cam", "gradcam"]) == ["cam", "gradcam"]
    assert column_names(["a", "b"], ["cam", "gradcam"]) == ["a · cam", "a · gradcam", "b · cam", "b · gradcam"]
    from eval.compare import load_results

    res = load_results(
        [_result(tmp_path / "r1", extra={"cam_method": "cam"}), _result(tmp_path / "r2", extra={"best_threshold": {}})]
    )
    cfg = GridConfig(checkpoints=["x", "y"], dataset="synthetic", data_root=".", out="o.png")
    assert _column_tau(cfg, res, 0, "cam") == 0.3
    assert _column_tau(cfg, res, 0, "gradcam") == DEFAULT_TAU  # the result is for another CAM method
    assert _column_tau(cfg, res, 1, "cam") == DEFAULT_TAU
    cfg.threshold = 0.4
    assert _column_tau(cfg, res, 1, "cam") == 0.4 and _column_tau(cfg, None, 0, "cam") == 0.4


# ------------------------------------------------------------------------ curves, per-class


def test_figure_curves_and_per_class_cli(tmp_path, capsys):
    a, b = _result(tmp_path / "base"), _result(tmp_path / "cutmix")
    assert main(["figure", "curves", a, b, "--names", "baseline", "CutMix", "--out", str(tmp_path / "c.png")]) == 0
    assert main(["figure", "curves", a, b, "--iou", "50", "--out", str(tmp_path / "c50.png")]) == 0
    assert main(["figure", "per-class", a, b, "--out", str(tmp_path / "pc.png"), "--metric", "gt_known_loc"]) == 0
    out = capsys.readouterr().out
    for name in ("c", "c50", "pc"):
        for ext in ("png", "pdf"):
            p = tmp_path / f"{name}.{ext}"
            assert p.stat().st_size > 5000 and f"wrote {p}" in out


def test_figure_errors_are_one_line(tmp_path, capsys):
    a = _result(tmp_path / "base", curve=False, per_class=False)
    assert main(["figure", "curves", a, "--out", str(tmp_path / "c.png")]) == 2
    assert "no 'BoxAcc_curve' key" in capsys.readouterr().err
    assert main(["figure", "per-class", a, "--out", str(tmp_path / "c.png")]) == 2
    assert "no 'per_class' key" in capsys.readouterr().err
    b = _result(tmp_path / "b")
    assert main(["figure", "curves", b, "--iou", "90", "--out", str(tmp_path / "c.png")]) == 2
    assert "no IoU threshold 90" in capsys.readouterr().err
    assert main(["--debug", "figure", "curves", b, "--out", str(tmp_path / "d.png")]) == 0


# ------------------------------------------------------------------------------ CAM grid (e2e)


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    import torch

    from wsol.checkpoints import save_checkpoint
    from wsol.data import build_dataset
    from wsol.data.synthetic import SynthConfig, generate_synthetic
    from wsol.models import create_model

    root = tmp_path_factory.mktemp("grid")
    data = root / "data"
    generate_synthetic(
        data, SynthConfig(classes=3, train_per_class=1, val_per_class=1, test_per_class=4, size=32, seed=0)
    )
    ckpts = []
    for k in range(2):
        torch.manual_seed(k)
        model = create_model("small_cnn", num_classes=3)
        path = root / f"m{k}" / "last.pt"
        save_checkpoint(path, model)
        ckpts.append(str(path))
    ids = [r.image_id for r in build_dataset("synthetic", str(data), "test").records]
    return root, data, ckpts, ids


def test_grid_end_to_end(tiny_setup, capsys):
    root, data, ckpts, ids = tiny_setup
    results = []
    for k in range(2):  # per-image results: model 1 misses where model 0 hits on images 2 and 5
        hit = [1] * len(ids)
        if k:
            hit[2] = hit[5] = 0
        iou = [0.5] * len(ids)
        results.append(_result(root / f"r{k}", ids=ids, hit50=hit, iou=iou, extra={"cam_method": "cam"}))
    out = root / "grid.png"
    argv = [
        "figure",
        "grid",
        "--checkpoint",
        ckpts[0],
        "--checkpoint",
        ckpts[1],
        "--names",
        "A",
        "B",
        "--dataset",
        "synthetic",
        "--data-root",
        str(data),
        "--images",
        "2",
        "--select",
        "disagree",
        "--results",
        *results,
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert out.stat().st_size > 10000 and out.with_suffix(".pdf").stat().st_size > 10000

    from wsol.jobs import figure as figure_job

    captured = {}
    real = figure_job.cam_grid_figure

    def spy(rows, cols, **kw):
        captured["rows"], captured["cols"] = rows, cols
        return real(rows, cols, **kw)

    figure_job_cfg = figure_job.GridConfig(
        checkpoints=ckpts,
        names=["A", "B"],
        dataset="synthetic",
        data_root=str(data),
        out=str(root / "g2.png"),
        ids=[ids[5], ids[2]],
        results=results,
        device="cpu",
    )
    mp = pytest.MonkeyPatch()
    mp.setattr(figure_job, "cam_grid_figure", spy)
    try:
        figure_job.render_cam_grid(figure_job_cfg)
    finally:
        mp.undo()
    rows = captured["rows"]
    assert captured["cols"] == ["A", "B"] and [r.label for r in rows] == [ids[5], ids[2]]
    for row in rows:
        assert row.image.dtype == np.uint8 and row.image.shape == (32, 32, 3)
        for cell in row.cells:
            assert cell.cam.shape == (32, 32) and 0.0 <= cell.cam.min() and cell.cam.max() <= 1.0
            assert cell.iou is None or 0.0 <= cell.iou <= 1.0
            assert isinstance(cell.correct, bool) and cell.pred_name


def test_grid_unknown_id_is_a_clear_error(tiny_setup, capsys):
    root, data, ckpts, ids = tiny_setup
    assert (
        main(
            [
                "figure",
                "grid",
                "--checkpoint",
                ckpts[0],
                "--dataset",
                "synthetic",
                "--data-root",
                str(data),
                "--ids",
                "nope.png",
                "--device",
                "cpu",
                "--out",
                str(root / "x.png"),
            ]
        )
        == 2
    )
    assert "1 image id(s) not in the synthetic test split: nope.png" in capsys.readouterr().err
