"""Property tests of the batch augmentations (wsol.augment)."""

from __future__ import annotations

import pytest
import torch

from wsol.augment import AUGMENTATIONS, FeatureCutMix, build_augmentation, to_soft
from wsol.errors import UserError

INPUT_LEVEL = [n for n in AUGMENTATIONS.names() if n != "feature_cutmix"]
MIXING = ["mixup", "cutmix", "cutmix_center_gaussian", "cutmix_fixed_size", "cutmix_scheduled"]


def make(name: str, k: int, **kw):
    aug = build_augmentation(name, k, **kw)
    if name == "cutmix_scheduled":
        aug.progress = 1.0
    return aug


def constant_batch(b: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is filled with the value i + 1; label i: partners are identifiable by pixel value."""
    values = torch.arange(1, b + 1, dtype=torch.float32)
    images = values.view(b, 1, 1, 1).expand(b, 3, h, w).clone()
    return images, torch.arange(b)


def test_registry_lists_every_variant():
    assert set(AUGMENTATIONS.names()) == {
        "none",
        "cutout",
        "mixup",
        "cutmix",
        "cutmix_center_gaussian",
        "cutmix_fixed_size",
        "cutmix_scheduled",
        "cutmix_one_hot",
        "cutmix_complete_label",
        "feature_cutmix",
    }


def test_unknown_option_and_name_are_user_errors():
    with pytest.raises(UserError, match="alpha"):
        build_augmentation("cutmix", 10, alpha=1.0)
    with pytest.raises(UserError, match="choose from"):
        build_augmentation("cutmixx", 10)
    with pytest.raises(UserError, match="prob"):
        build_augmentation("cutmix", 10, prob=1.5)
    with pytest.raises(UserError, match="layer"):
        build_augmentation("feature_cutmix", 10, layer=5)


@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("name", ["cutmix", "cutmix_center_gaussian", "cutmix_fixed_size"])
def test_partner_weight_equals_pasted_pixel_fraction_exactly(name, per_sample):
    b, h, w = 8, 13, 17
    aug = make(name, b, per_sample=per_sample)
    g = torch.Generator().manual_seed(0)
    seen_mixed = 0
    for _ in range(25):
        images, labels = constant_batch(b, h, w)
        out, soft = aug(images, labels, generator=g)
        for i in range(b):
            plane = out[i, 0]
            foreign = plane != i + 1
            n = int(foreign.sum())
            if n == 0:
                continue
            partners = plane[foreign].unique()
            assert partners.numel() == 1  # one partner, one rectangle
            j = int(partners.item()) - 1
            rows, cols = foreign.nonzero(as_tuple=True)
            assert n == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            assert soft[i, j] == torch.tensor(n / (h * w), dtype=torch.float32)  # exact
            assert torch.allclose(soft[i, i], torch.tensor(1 - n / (h * w)))
            seen_mixed += 1
    assert seen_mixed > 50


@pytest.mark.parametrize("name", MIXING + ["cutmix_one_hot", "cutmix_complete_label"])
@pytest.mark.parametrize("per_sample", [False, True])
def test_pixel_mean_is_the_target_weighted_value(name, per_sample):
    """For constant images the mean of a mixed image equals sum_k soft[k] * value_k."""
    b, h, w = 6, 16, 16
    aug = make(name, b, per_sample=per_sample)
    g = torch.Generator().manual_seed(1)
    values = torch.arange(1, b + 1, dtype=torch.float64)
    for _ in range(10):
        images, labels = constant_batch(b, h, w)
        out, soft = aug(images, labels, generator=g)
        if name in ("cutmix_one_hot", "cutmix_complete_label"):
            continue  # these change the label rule on purpose; see the dedicated tests
        expected = soft.double() @ values
        assert torch.allclose(out.double().mean(dim=(1, 2, 3)), expected, atol=1e-5)


@pytest.mark.parametrize("name", INPUT_LEVEL)
@pytest.mark.parametrize("soft_in", [False, True])
def test_soft_targets_sum_to_one_and_shapes(name, soft_in):
    k = 5
    gen = torch.Generator().manual_seed(2)
    images = torch.randn(7, 3, 12, 12, generator=gen)
    labels = torch.randint(0, k, (7,), generator=gen)
    targets = torch.softmax(torch.randn(7, k, generator=gen), 1) if soft_in else labels
    before = images.clone()
    out, soft = make(name, k)(images, targets, generator=gen)
    assert out.shape == images.shape and soft.shape == (7, k) and soft.dtype == torch.float32
    assert torch.allclose(soft.sum(1), torch.ones(7), atol=1e-6)
    assert (soft >= 0).all()
    assert torch.equal(images, before)  # input untouched


@pytest.mark.parametrize("name", INPUT_LEVEL)
def test_same_generator_seed_same_batch_independent_of_global_rng(name):
    gen = torch.Generator().manual_seed(3)
    images = torch.randn(8, 3, 10, 10, generator=gen)
    labels = torch.randint(0, 4, (8,), generator=gen)
    aug = make(name, 4)
    torch.manual_seed(100)
    state = torch.get_rng_state()
    a = aug(images, labels, generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), state)  # global RNG not consumed
    torch.manual_seed(200)
    b = aug(images, labels, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    if name != "none":
        outs = [aug(images, labels, generator=torch.Generator().manual_seed(s)) for s in range(4)]
        assert any(not torch.equal(o[0], a[0]) for o in outs)


def test_global_rng_used_without_generator():
    images, labels = constant_batch(8, 16, 16)
    aug = build_augmentation("cutmix", 8)
    torch.manual_seed(5)
    a = aug(images, labels)
    torch.manual_seed(5)
    b = aug(images, labels)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_cutout_never_changes_labels_and_cuts_clipped_squares():
    b, h, w = 16, 20, 20
    gen = torch.Generator().manual_seed(4)
    images = torch.rand(b, 3, h, w, generator=gen) + 1.0  # no zeros before Cutout
    labels = torch.randint(0, 3, (b,), generator=gen)
    soft_in = torch.softmax(torch.randn(b, 3, generator=gen), 1)
    aug = build_augmentation("cutout", 3, size=6)
    for targets in (labels, soft_in):
        out, soft = aug(images, targets, generator=gen)
        assert torch.equal(soft, to_soft(targets, 3))
        for i in range(b):
            zero = out[i] == 0
            assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])
            rows, cols = zero[0].nonzero(as_tuple=True)
            assert rows.numel() > 0
            hh, ww = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
            assert rows.numel() == hh * ww and hh <= 6 and ww <= 6
            assert hh == 6 or rows.min() == 0 or rows.max() == h - 1  # clipped only at borders
            assert ww == 6 or cols.min() == 0 or cols.max() == w - 1
            assert torch.equal(out[i][~zero], images[i][~zero])


def test_cutout_fraction_holes_and_prob_zero():
    images = torch.ones(4, 3, 32, 32)
    aug = build_augmentation("cutout", 2, size=0.5, n_holes=2)
    assert aug.sides(32, 32) == (16, 16) and aug.sides(20, 40) == (10, 20)
    out, _ = aug(images, torch.zeros(4, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    assert ((out == 0).sum(dim=(1, 2, 3)) <= 3 * 2 * 256).all()
    never = build_augmentation("cutout", 2, prob=0.0)
    out, _ = never(images, torch.zeros(4, dtype=torch.long), generator=torch.Generator())
    assert torch.equal(out, images)


def test_mixup_per_batch_uses_one_lambda():
    b = 6
    images, labels = constant_batch(b, 4, 4)
    out, soft = build_augmentation("mixup", b, alpha=0.4)(images, labels, generator=torch.Generator().manual_seed(9))
    self_w = soft[torch.arange(b), labels]
    moved = self_w < 1  # samples whose partner is another image
    assert moved.any()
    assert torch.allclose(self_w[moved], self_w[moved][0].expand(int(moved.sum())))


def test_one_hot_cutmix_gives_label_of_larger_area():
    b, h, w = 8, 16, 16
    aug = build_augmentation("cutmix_one_hot", b, per_sample=True)
    ref = build_augmentation("cutmix", b, per_sample=True)
    seen = set()
    for seed in range(20):
        images, labels = constant_batch(b, h, w)
        out, soft = aug(images, labels, generator=torch.Generator().manual_seed(seed))
        out_ref, soft_ref = ref(images, labels, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(out, out_ref)  # same draws, only the label rule differs
        assert ((soft == 0) | (soft == 1)).all() and torch.equal(soft.sum(1), torch.ones(b))
        for i in range(b):
            frac_self = float((out[i, 0] == i + 1).float().mean())
            winner = i if frac_self >= 0.5 else int(out[i, 0][out[i, 0] != i + 1][0]) - 1
            assert int(soft[i].argmax()) == winner
            seen.add(winner == i)
    assert seen == {True, False}


def test_complete_label_cutmix_is_half_half():
    b = 8
    images, labels = constant_batch(b, 16, 16)
    aug = build_augmentation("cutmix_complete_label", b)
    out, soft = aug(images, labels, generator=torch.Generator().manual_seed(0))
    for i in range(b):
        row = soft[i]
        if row[i] == 1.0:
            continue  # partner is itself
        assert sorted(row[row > 0].tolist()) == [0.5, 0.5] and row[i] == 0.5


def test_scheduled_cutmix_follows_progress():
    images, labels = constant_batch(64, 8, 8)
    aug = build_augmentation("cutmix_scheduled", 64, per_sample=True)
    assert aug.progress == 0.0
    out, soft = aug(images, labels, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, images) and torch.equal(soft, torch.eye(64))
    aug.progress = 1.0
    ref = build_augmentation("cutmix", 64, per_sample=True)
    a = aug(images, labels, generator=torch.Generator().manual_seed(1))
    r = ref(images, labels, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], r[0]) and torch.equal(a[1], r[1])
    aug.progress = 0.5
    g = torch.Generator().manual_seed(2)
    applied = sum(int(aug.sample(64, 8, 8, g).applied.sum()) for _ in range(20))
    assert 0.4 < applied / (64 * 20) < 0.6
    with pytest.raises(UserError):
        aug.progress = 1.5


def test_center_gaussian_and_fixed_size_boxes():
    g = torch.Generator().manual_seed(0)
    tight = build_augmentation("cutmix_center_gaussian", 4, sigma=1e-6)
    plan = tight.sample(4, 32, 32, g)
    centre_y = (plan.boxes[:, 0] + plan.boxes[:, 1]) / 2
    centre_x = (plan.boxes[:, 2] + plan.boxes[:, 3]) / 2
    assert ((centre_y - 16).abs() <= 1).all() and ((centre_x - 16).abs() <= 1).all()
    fixed = build_augmentation("cutmix_fixed_size", 4, per_sample=True)
    for _ in range(10):
        p = fixed.sample(4, 32, 32, g)
        h = p.boxes[:, 1] - p.boxes[:, 0]
        w = p.boxes[:, 3] - p.boxes[:, 2]
        assert (h <= 16).all() and (w <= 16).all()
        inner = (p.boxes[:, 0] > 0) & (p.boxes[:, 1] < 32)
        assert (h[inner] == 16).all()


class _Toy(torch.nn.Module):
    """Five stages: identity stem, then 2x average pools (16 -> 16, 8, 4, 2, 1 is not needed)."""

    def stages(self):
        pool = torch.nn.AvgPool2d(2)
        return [torch.nn.Identity(), pool, pool, pool, torch.nn.Identity()]


def test_feature_cutmix_layer0_equals_cutmix_and_call_convention():
    images, labels = constant_batch(8, 16, 16)
    f0 = build_augmentation("feature_cutmix", 8, layer=0)
    ref = build_augmentation("cutmix", 8)
    a = f0(images, labels, generator=torch.Generator().manual_seed(3))
    r = ref(images, labels, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], r[0]) and torch.equal(a[1], r[1])
    with pytest.raises(UserError, match="plan"):
        build_augmentation("feature_cutmix", 8, layer=2)(images, labels)


@pytest.mark.parametrize("layer", [0, 1, 2, 3, 4])
def test_feature_cutmix_scales_box_and_weights_by_feature_fraction(layer):
    b = 8
    images, labels = constant_batch(b, 16, 16)
    aug: FeatureCutMix = build_augmentation("feature_cutmix", b, layer=layer, per_sample=True)
    checked = 0
    for seed in range(10):
        plan = aug.plan(images, labels, generator=torch.Generator().manual_seed(seed))
        x = images
        for i, stage in enumerate(_Toy().stages()):
            if i == plan.layer:
                x = plan.mix(x)
                mixed = x
            x = stage(x)
        soft = plan.targets()
        hf, wf = mixed.shape[-2:]
        assert (hf, wf) == (16 >> max(0, layer - 1), 16 >> max(0, layer - 1))
        for i in range(b):
            foreign = mixed[i, 0] != i + 1
            n = int(foreign.sum())
            if n:
                j = int(mixed[i, 0][foreign][0]) - 1
                assert soft[i, j] == torch.tensor(n / (hf * wf), dtype=torch.float32)
                checked += 1
        # the scaled box covers the same image region up to rounding
        y0, y1, x0, x1 = plan.cut.boxes[0].tolist()
        s = 16 // hf
        fy0, fy1, fx0, fx1 = plan.cut.scaled(hf, wf).boxes[0].tolist()
        assert abs(fy0 * s - y0) <= s / 2 and abs(fy1 * s - y1) <= s / 2
        assert abs(fx0 * s - x0) <= s / 2 and abs(fx1 * s - x1) <= s / 2
    assert checked > 0
