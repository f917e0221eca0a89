"""``beta=0`` switches CutMix off and ``alpha=0`` Mixup, as the reference code does, not raise.

CutMix-PyTorch mixes only ``if args.beta > 0 and r < args.cutmix_prob``; mixup-cifar10 uses
``lam = 1`` when ``alpha <= 0``. Off means: the batch is returned unchanged with its one-hot /
soft targets, nothing is drawn, and a training run equals one with ``--aug none``.
"""

from __future__ import annotations

import pytest
import torch

from wsol.augment import build_augmentation, to_soft
from wsol.errors import UserError

CUTMIX_FAMILY = ["cutmix", "cutmix_center_gaussian", "cutmix_scheduled", "cutmix_one_hot", "cutmix_complete_label"]


def _batch(b: int = 6, k: int = 4, h: int = 15, w: int = 22):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(b, 3, h, w, generator=g)
    labels = torch.randint(0, k, (b,), generator=g)
    soft = torch.softmax(torch.randn(b, k, generator=g), 1)
    return images, labels, soft


@pytest.mark.parametrize(
    "name,option", [(n, "beta") for n in CUTMIX_FAMILY + ["feature_cutmix"]] + [("mixup", "alpha")]
)
@pytest.mark.parametrize("per_sample", [False, True])
def test_zero_switches_mixing_off(name, option, per_sample):
    k = 4
    images, labels, soft_in = _batch(k=k)
    kw = {option: 0, "per_sample": per_sample}
    if name == "feature_cutmix":
        kw["layer"] = 0
    aug = build_augmentation(name, k, **kw)
    if name == "cutmix_scheduled":
        aug.progress = 1.0
    before_images = images.clone()
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    torch.manual_seed(1)
    global_state = torch.get_rng_state()
    for targets in (labels, soft_in):
        for _ in range(10):
            out, soft = aug(images, targets, generator=g)
            assert torch.equal(out, images)
            assert torch.equal(soft, to_soft(targets, k)) and soft.dtype == torch.float32
        out, soft = aug(images, targets)  # global RNG
        assert torch.equal(out, images) and torch.equal(soft, to_soft(targets, k))
    assert torch.equal(g.get_state(), state)  # nothing drawn
    assert torch.equal(torch.get_rng_state(), global_state)
    assert torch.equal(images, before_images)
    assert getattr(aug, option) == 0.0


def test_zero_beta_feature_cutmix_plan_mixes_nothing():
    images, labels, _ = _batch(b=4, h=16, w=16)
    aug = build_augmentation("feature_cutmix", 4, layer=2, beta=0)
    plan = aug.plan(images, labels, generator=torch.Generator().manual_seed(0))
    feats = torch.randn(4, 8, 4, 4)
    assert torch.equal(plan.mix(feats), feats)
    assert torch.equal(plan.targets(), torch.eye(4)[labels])
    assert not plan.cut.applied.any()


@pytest.mark.parametrize(
    "name,option",
    [("cutmix", "beta"), ("cutmix_center_gaussian", "beta"), ("feature_cutmix", "beta"), ("mixup", "alpha")],
)
@pytest.mark.parametrize("bad", [-1.0, -1e-9, float("nan")])
def test_negative_or_nan_is_refused(name, option, bad):
    with pytest.raises(UserError, match=rf"{option} must be >= 0"):
        build_augmentation(name, 3, **{option: bad})


def test_positive_beta_still_mixes():
    images, labels, _ = _batch()
    out, soft = build_augmentation("cutmix", 4, beta=0.5)(images, labels, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(out, images)


def test_recipe_options_accept_zero_and_the_box_rule():
    from wsol.train import load_recipe

    cfg = load_recipe(
        "synthetic_cpu",
        ["aug_options.cutmix.beta=0", "aug_options.mixup.alpha=0", "aug_options.cutout.box_rule=exact_side"],
        aug="cutmix",
    )
    assert cfg.aug_options["cutmix"]["beta"] == 0 and cfg.aug_options["mixup"]["alpha"] == 0
    assert cfg.aug_options["cutout"]["box_rule"] == "exact_side"
    for bad, match in [
        ("aug_options.cutmix.beta=-1", "beta must be >= 0"),
        ("aug_options.cutmix.box_rule=exact", "box_rule must be one of"),
    ]:
        with pytest.raises(UserError, match=match):
            load_recipe("synthetic_cpu", [bad])


# ---------------------------------------------------------------------------------------------
# through `wsol train`
def _train(tmp_path, tiny_synth, name: str, aug: str, *sets: str) -> int:
    from wsol.cli import main

    args = [
        "train",
        "--recipe",
        "synthetic_cpu",
        "--aug",
        aug,
        "--out",
        str(tmp_path / name),
        "--set",
        f"data_root={tiny_synth}",
        "--set",
        "epochs=1",
        "--set",
        "batch_size=8",
        "--set",
        "val_every=0",
        "--set",
        "model_options.widths=[4,4,4,4,4]",
        "--seed",
        "1",
        "--device",
        "cpu",
        "--no-progress",
    ]
    for s in sets:
        args += ["--set", s]
    return main(args)


def _weights(path):
    from wsol.checkpoints import read_checkpoint

    return read_checkpoint(path)["state_dict"]


def test_wsol_train_with_zero_beta_and_alpha_equals_no_augmentation(tiny_synth, tmp_path, capsys, one_torch_thread):
    assert _train(tmp_path, tiny_synth, "none", "none") == 0
    assert _train(tmp_path, tiny_synth, "cutmix0", "cutmix", "aug_options.cutmix.beta=0") == 0
    assert _train(tmp_path, tiny_synth, "mixup0", "mixup", "aug_options.mixup.alpha=0") == 0
    assert _train(tmp_path, tiny_synth, "cutmix1", "cutmix", "aug_options.cutmix.beta=1") == 0
    none = _weights(tmp_path / "none" / "last.pt")
    for run in ("cutmix0", "mixup0"):
        got = _weights(tmp_path / run / "last.pt")
        assert got.keys() == none.keys()
        assert all(torch.equal(got[k], none[k]) for k in none), run
    mixed = _weights(tmp_path / "cutmix1" / "last.pt")
    assert any(not torch.equal(mixed[k], none[k]) for k in none)  # the comparison can fail


def test_wsol_train_refuses_a_negative_beta_in_one_line(tiny_synth, tmp_path, capsys):
    rc = _train(tmp_path, tiny_synth, "neg", "cutmix", "aug_options.cutmix.beta=-0.5")
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "beta must be >= 0" in err
    assert not (tmp_path / "neg" / "last.pt").exists()
