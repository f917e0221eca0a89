"""Trust, part 2: worker errors, class counts, the resume guard, lossless saving, stated assumptions.

Every case goes through the CLI (``wsol.cli.main``) as a user would, at the default ``--workers``
and at 0, 1 and 2 where the command has the option.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from wsol.checkpoints import save_checkpoint
from wsol.cli import main
from wsol.models import create_model

WORKERS = [None, "0", "1", "2"]  # None: the default


@pytest.fixture(scope="module")
def synth_copy(tiny_synth, tmp_path_factory) -> Path:
    """A copy of the tiny benchmark whose test image 001/test_0002 and train image 001/train_0004
    are truncated PNGs."""
    root = tmp_path_factory.mktemp("broken") / "data"
    shutil.copytree(tiny_synth, root)
    for name in ("test_0002.png", "train_0004.png"):
        p = root / "images" / "001.hue000" / name
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    return root


def _one_line_error(capsys, rc: int) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if "error" in ln.lower()]
    assert len(lines) == 1, err  # informative lines (e.g. what train is about to do) may come first
    assert "Traceback" not in err and "Caught" not in err and "worker process" not in err, err
    return lines[0]


def _workers(w: str | None) -> list[str]:
    return [] if w is None else ["--workers", w]


# ----------------------------------------------------------------------------------------------
# 1. errors raised in worker processes read as in-process


@pytest.mark.parametrize("workers", WORKERS)
def test_evaluate_truncated_image_one_line_at_every_workers(synth_copy, tiny_checkpoint, tmp_path, capsys, workers):
    rc = main(
        [
            "evaluate",
            "--checkpoint",
            str(tiny_checkpoint),
            "--dataset",
            "synthetic",
            "--data-root",
            str(synth_copy),
            "--device",
            "cpu",
            "--no-progress",
            "--output",
            str(tmp_path / "r.json"),
            *_workers(workers),
        ]
    )
    line = _one_line_error(capsys, rc)
    assert line.startswith("wsol evaluate: error:") and "test_0002.png" in line


@pytest.mark.parametrize("workers", WORKERS)
def test_robustness_truncated_image_one_line(synth_copy, tiny_checkpoint, tmp_path, capsys, workers):
    rc = main(
        [
            "robustness",
            "--checkpoint",
            str(tiny_checkpoint),
            "--attack",
            "fgsm",
            "--dataset",
            "synthetic",
            "--data-root",
            str(synth_copy),
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "rob"),
            *_workers(workers),
        ]
    )
    line = _one_line_error(capsys, rc)
    assert line.startswith("wsol robustness: error:") and "test_0002.png" in line


@pytest.mark.parametrize("workers", WORKERS)
def test_figure_truncated_image_one_line(synth_copy, tiny_checkpoint, tmp_path, capsys, workers):
    rc = main(
        [
            "figure",
            "grid",
            "--checkpoint",
            str(tiny_checkpoint),
            "--dataset",
            "synthetic",
            "--data-root",
            str(synth_copy),
            "--ids",
            "001.hue000/test_0002.png",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "g.png"),
            *_workers(workers),
        ]
    )
    line = _one_line_error(capsys, rc)
    assert line.startswith("wsol figure: error:") and "test_0002.png" in line


@pytest.mark.parametrize("workers", ["0", "1", "2"])
def test_train_truncated_image_one_line(synth_copy, tmp_path, capsys, workers, one_torch_thread):
    rc = main(
        [
            "train",
            "--recipe",
            "synthetic_cpu",
            "--out",
            str(tmp_path / "t"),
            "--device",
            "cpu",
            "--no-progress",
            "--set",
            f"data_root={synth_copy}",
            "--set",
            "epochs=1",
            "--set",
            "val_every=0",
            "--set",
            "cache_images=false",
            "--set",
            f"workers={workers}",
            "--set",
            "batch_size=8",
            "--set",
            "model_options.widths=[4,4,4,4,4]",
        ]
    )
    line = _one_line_error(capsys, rc)
    assert line.startswith("wsol train: error:") and "train_0004.png" in line


def _metadata_and_maps(tiny_synth, write_metadata, folder: Path, bad: str | None = None) -> tuple[Path, Path]:
    from wsol.data import build_dataset

    ds = build_dataset("synthetic", tiny_synth, "test")
    meta = write_metadata(ds, folder / "meta")
    recs = ds.records
    maps = folder / "maps"
    rng = np.random.default_rng(0)
    for r in recs:
        m = rng.random((64, 64)).astype(np.float32)
        if r.image_id == bad:
            m[3, 4] = np.nan
        p = maps / f"{r.image_id}.npy"
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, m)
    return meta, maps


@pytest.mark.parametrize("workers", [None, "1", "2"])
def test_evaluate_scoremaps_bad_map_one_line(tiny_synth, write_metadata, tmp_path, capsys, workers):
    bad = "002.hue120/test_0001.png"
    meta, maps = _metadata_and_maps(tiny_synth, write_metadata, tmp_path, bad=bad)
    rc = main(
        [
            "evaluate-scoremaps",
            "--metadata-dir",
            str(meta),
            "--scoremap-dir",
            str(maps),
            "--no-progress",
            "--output",
            str(tmp_path / "r.json"),
            *_workers(workers),
        ]
    )
    line = _one_line_error(capsys, rc)
    assert line.startswith("wsol evaluate-scoremaps: error:") and bad in line


# ----------------------------------------------------------------------------------------------
# 2. the checkpoint's class count must be the dataset's


@pytest.fixture(scope="module")
def seven_class_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("seven") / "seven.pt"
    save_checkpoint(path, create_model("small_cnn", 7))
    return path


def test_class_count_mismatch_is_refused_naming_both(seven_class_checkpoint, tiny_synth, tmp_path, capsys):
    rc = main(
        [
            "evaluate",
            "--checkpoint",
            str(seven_class_checkpoint),
            "--dataset",
            "synthetic",
            "--data-root",
            str(tiny_synth),
            "--device",
            "cpu",
            "--no-progress",
            "--output",
            str(tmp_path / "r.json"),
        ]
    )
    line = _one_line_error(capsys, rc)
    assert "7 classes" in line and "has 3" in line and str(seven_class_checkpoint) in line
    assert str(tiny_synth) in line and "--label-subset" in line
    assert not (tmp_path / "r.json").exists()


def test_label_subset_is_the_explicit_way(seven_class_checkpoint, tiny_synth, tmp_path, capsys):
    rc = main(
        [
            "evaluate",
            "--checkpoint",
            str(seven_class_checkpoint),
            "--dataset",
            "synthetic",
            "--data-root",
            str(tiny_synth),
            "--device",
            "cpu",
            "--no-progress",
            "--label-subset",
            "--output",
            str(tmp_path / "r.json"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "r.json").read_text())["num_images"] == 18


def test_fewer_outputs_than_labels_refused_even_with_subset(tiny_synth, tmp_path, capsys):
    torch.manual_seed(0)
    two = tmp_path / "two.pt"
    save_checkpoint(two, create_model("small_cnn", 2))
    rc = main(
        [
            "evaluate",
            "--checkpoint",
            str(two),
            "--dataset",
            "synthetic",
            "--data-root",
            str(tiny_synth),
            "--device",
            "cpu",
            "--no-progress",
            "--label-subset",
            "--output",
            str(tmp_path / "r.json"),
        ]
    )
    line = _one_line_error(capsys, rc)
    assert "out of range 0..1" in line and "label 2" in line


# ----------------------------------------------------------------------------------------------
# 3. --resume guards the configuration


def _evaluate(ckpt: Path, data: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "evaluate",
            "--checkpoint",
            str(ckpt),
            "--dataset",
            "synthetic",
            "--data-root",
            str(data),
            "--device",
            "cpu",
            "--no-progress",
            "--output",
            str(out),
            *extra,
        ]
    )


def test_resume_on_a_finished_result_refuses_other_options(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert _evaluate(tiny_checkpoint, tiny_synth, out) == 0
    before = out.read_bytes()
    capsys.readouterr()
    line = _one_line_error(capsys, _evaluate(tiny_checkpoint, tiny_synth, out, "--resume", "--sigma", "0.3"))
    assert "sigma: 0.15 -> 0.3" in line and "--overwrite" in line
    assert out.read_bytes() == before
    assert _evaluate(tiny_checkpoint, tiny_synth, out, "--resume") == 0
    assert "already finished" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_resume_of_a_log_refuses_another_checkpoint_file(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    """An interrupted log, then the checkpoint file replaced by other weights at the same path."""
    ckpt = tmp_path / "model.pt"
    shutil.copy(tiny_checkpoint, ckpt)
    out = tmp_path / "r.json"
    assert _evaluate(ckpt, tiny_synth, out) == 0
    log = tmp_path / "r.log.jsonl"
    config = json.loads((tmp_path / "r.config.json").read_text())["guarded"]
    log.write_text(json.dumps({"header": config}) + "\n")  # as if interrupted after the header
    out.unlink()
    torch.manual_seed(1)
    save_checkpoint(ckpt, create_model("small_cnn", 3))
    line = _one_line_error(capsys, _evaluate(ckpt, tiny_synth, out, "--resume"))
    assert "checkpoint_sha256" in line and str(log) in line
    assert log.exists() and not out.exists()
    line = _one_line_error(capsys, _evaluate(tiny_checkpoint, tiny_synth, out, "--resume", "--largest-contour"))
    assert "multi_contour: True -> False" in line


# ----------------------------------------------------------------------------------------------
# 5. options the weights cannot reveal are stated


def _resnet18_file(path: Path, layout: str) -> Path:
    torch.manual_seed(0)
    model = create_model("resnet18", 3)
    sd = model.state_dict()
    if layout == "wsolevaluation":
        torch.save({"architecture": "resnet18", "epoch": 1, "state_dict": sd, "optimizer": {}}, path)
    else:
        torch.save({"state_dict": sd}, path)
    return path


def test_plain_state_dict_states_the_assumed_stride(tiny_synth, tmp_path, capsys):
    ckpt = _resnet18_file(tmp_path / "plain.pth", "plain")
    out = tmp_path / "r.json"
    assert _evaluate(ckpt, tiny_synth, out, "--workers", "0") == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"model {ckpt}: resnet18") and "CAM 2x2 at 64x64" in first
    assert "assumed, not read from the file" in first and "layer4_stride=2 (change with --layer4-stride)" in first
    model = json.loads(out.read_text())["model"]
    assert model["assumed_options"] == {"layer4_stride": 2, "large_feature_map": False}
    assert model["cam_size"] == [2, 2]


def test_given_options_are_not_assumed(tiny_synth, tmp_path, capsys):
    ckpt = _resnet18_file(tmp_path / "w.pth", "wsolevaluation")
    out = tmp_path / "r.json"
    assert _evaluate(ckpt, tiny_synth, out, "--workers", "0", "--layer4-stride", "1") == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "CAM 4x4 at 64x64" in first and "large_feature_map=False (change with --large-feature-map)" in first
    assert "layer4_stride=1 (" not in first
    assert json.loads(out.read_text())["model"]["assumed_options"] == {"large_feature_map": False}
    out2 = tmp_path / "r2.json"
    assert _evaluate(ckpt, tiny_synth, out2, "--workers", "0", "--layer4-stride", "1", "--large-feature-map") == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "CAM 8x8 at 64x64" in first and "every option read from the file or given" in first


def test_robustness_and_figure_state_the_model_first(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    assert (
        main(
            [
                "robustness",
                "--checkpoint",
                str(tiny_checkpoint),
                "--attack",
                "fgsm",
                "--dataset",
                "synthetic",
                "--data-root",
                str(tiny_synth),
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "rob"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines()[0].startswith("model small: small_cnn")
    saved = json.loads((tmp_path / "rob" / "robustness.json").read_text())
    assert saved["models"][0]["model"]["cam_size"] == [16, 16]
    assert (
        main(
            [
                "figure",
                "grid",
                "--checkpoint",
                str(tiny_checkpoint),
                "--dataset",
                "synthetic",
                "--data-root",
                str(tiny_synth),
                "--images",
                "2",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "g.png"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines()[0].startswith("model ")


def test_relative_output_keeps_side_files_beside_the_json(tiny_checkpoint, tiny_synth, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _evaluate(tiny_checkpoint, tiny_synth, Path("runs/e/result.json"), "--workers", "0") == 0
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert names == [
        "runs/e/result.config.json",
        "runs/e/result.json",
        "runs/e/result.per_class.csv",
        "runs/e/result.per_image.csv",
    ]
