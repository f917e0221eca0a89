"""FGSM and occlusion (wsol/robustness.py) on a tiny seeded model."""

from __future__ import annotations

import json

import pytest
import torch

from wsol.checkpoints import load_checkpoint
from wsol.data import IMAGENET_MEAN, IMAGENET_STD, build_dataset
from wsol.robustness import fgsm_accuracy, fgsm_images, make_loader, occlude, occlusion_accuracy


def _pixels(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return x * std + mean


def test_occlude_center_and_boundary():
    x = torch.ones(1, 3, 8, 8)
    c = occlude(x, 4, "center")
    assert c[0, 0, 2:6, 2:6].abs().sum() == 0 and c[0, 0, :2].eq(1).all()
    b = occlude(x, 4, "boundary")
    assert b[0, 0, 2:6, 2:6].eq(1).all() and b[0, 0, :2].abs().sum() == 0
    assert torch.equal(occlude(x, 0, "center"), x)
    assert torch.equal(occlude(x, 8, "boundary"), x)
    assert occlude(x, 0, "boundary").abs().sum() == 0
    with pytest.raises(ValueError):
        occlude(x, 2, "corner")


def test_fgsm_step_is_eps_in_pixel_space_and_clamped(tiny_checkpoint, tiny_synth):
    model = load_checkpoint(tiny_checkpoint)
    model.train()
    ds = build_dataset("synthetic", tiny_synth, "test")
    batch = next(iter(make_loader(ds, 6)))
    x, y = batch["image"], batch["label"]
    eps = 8 / 255
    adv = fgsm_images(model, x, y, eps)
    p, pa = _pixels(x), _pixels(adv)
    assert pa.min() >= -1e-6 and pa.max() <= 1 + 1e-6
    assert (pa - p).abs().max() <= eps + 1e-5
    moved = (pa - p).abs() > 1e-6
    assert moved.float().mean() > 0.5  # most pixels move by eps (those not clamped or zero-gradient)
    assert model.training  # left as it was
    assert all(q.grad is None for q in model.parameters())
    with pytest.raises(ValueError):
        fgsm_images(model, x, y, 1.5)


def test_accuracy_sweeps_are_consistent(tiny_checkpoint, tiny_synth):
    model = load_checkpoint(tiny_checkpoint)
    ds = build_dataset("synthetic", tiny_synth, "test")
    loader = make_loader(ds, 5)
    dev = torch.device("cpu")
    zero = fgsm_accuracy(model, loader, 0.0, device=dev, progress=False)
    assert zero["num_images"] == len(ds) == 18
    assert zero["fgsm_top1"] == pytest.approx(zero["clean_top1"], abs=1e-9)
    occ = occlusion_accuracy(model, loader, [0, 32, 64], "center", device=dev, progress=False)
    assert occ["top1"][0] == pytest.approx(zero["clean_top1"])
    bnd = occlusion_accuracy(model, loader, [0, 64], "boundary", device=dev, progress=False)
    assert bnd["top1"][1] == pytest.approx(zero["clean_top1"])


def test_cli_occlusion_writes_json_and_figure(tiny_checkpoint, tiny_synth, tmp_path, capsys):
    from wsol.cli import main

    out = tmp_path / "occ"
    rc = main(
        [
            "robustness",
            "--checkpoint",
            str(tiny_checkpoint),
            "--checkpoint",
            str(tiny_checkpoint),
            "--names",
            "a",
            "b",
            "--occlusion",
            "center",
            "--steps",
            "4",
            "--dataset",
            "synthetic",
            "--data-root",
            str(tiny_synth),
            "--device",
            "cpu",
            "--batch-size",
            "9",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    res = json.loads((out / "robustness.json").read_text())
    assert [m["name"] for m in res["models"]] == ["a", "b"]
    assert res["models"][0]["sides"] == [0, 16, 32, 48, 64]
    assert (out / "occlusion_center.png").stat().st_size > 5000
    assert (out / "occlusion_center.pdf").exists()
    assert "zeroes the square" in capsys.readouterr().out
    # an existing result is not overwritten without --overwrite
    rc = main(
        [
            "robustness",
            "--checkpoint",
            str(tiny_checkpoint),
            "--occlusion",
            "center",
            "--dataset",
            "synthetic",
            "--data-root",
            str(tiny_synth),
            "--out",
            str(out),
        ]
    )
    assert rc == 2
