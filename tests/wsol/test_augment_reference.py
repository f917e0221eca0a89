"""CutMix and Cutout against transcriptions of the reference code, fed the same random draws.

The transcriptions below follow the public code line by line; only ``np.random.*`` calls are
replaced by arguments (the draws), so that both sides get the same lambda, centre and permutation:

- CutMix-PyTorch (clovaai/CutMix-PyTorch, ``train.py``): ``rand_bbox`` and the mixing branch of
  the training loop. Its naming is kept: its ``W`` is ``size[2]`` (image rows), its ``H`` is
  ``size[3]`` (columns), so ``bbx`` are rows and ``bby`` columns.
- Cutout (uoguelph-mlrg/Cutout, ``util/cutout.py``, DeVries & Taylor).

Our side is driven through the public, deterministic halves of the augmentations
(``CutMix.plan_from_draws``, ``CutPlan.paste``, ``CutMix.mix_targets``, ``Cutout.cut``), which are
what ``aug(images, targets, generator)`` runs after drawing (checked below as well).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wsol.augment import BOX_RULES, DEFAULT_BOX_RULE, CutDraws, CutoutDraws, build_augmentation, cut_sides
from wsol.augment.base import box_span
from wsol.errors import UserError

SIZES = [(224, 224), (157, 224), (224, 157), (33, 20)]  # (rows, columns) of the NCHW images


# ---------------------------------------------------------------------------------------------
# transcriptions (do not "fix" them: they are the references)
def rand_bbox_cutmix_pytorch(size, lam, randint_w, randint_h):
    """CutMix-PyTorch ``rand_bbox(size, lam)``; ``randint_w`` / ``randint_h`` are the values of
    its ``np.random.randint(W)`` and ``np.random.randint(H)``."""
    W = size[2]
    H = size[3]
    cut_rat = np.sqrt(1.0 - lam)
    cut_w = int(W * cut_rat)  # the original spells it np.int, removed from NumPy since
    cut_h = int(H * cut_rat)

    # uniform
    cx = randint_w
    cy = randint_h

    bbx1 = np.clip(cx - cut_w // 2, 0, W)
    bby1 = np.clip(cy - cut_h // 2, 0, H)
    bbx2 = np.clip(cx + cut_w // 2, 0, W)
    bby2 = np.clip(cy + cut_h // 2, 0, H)

    return bbx1, bby1, bbx2, bby2


def cutmix_pytorch_step(input, target, num_classes, beta, cutmix_prob, r, lam, rand_index, randint_w, randint_h):
    """The mixing branch of CutMix-PyTorch's ``train()``; returns the batch and the weights of
    its loss ``criterion(output, target_a) * lam + criterion(output, target_b) * (1. - lam)`` as
    float32 soft targets ``[B, K]`` (built in float64), plus ``lam`` and the box."""
    input = input.clone()
    if beta > 0 and r < cutmix_prob:
        # generate mixed sample
        lam = lam  # np.random.beta(args.beta, args.beta)
        rand_index = rand_index  # torch.randperm(input.size()[0]).cuda()
        target_a = target
        target_b = target[rand_index]
        bbx1, bby1, bbx2, bby2 = rand_bbox_cutmix_pytorch(input.size(), lam, randint_w, randint_h)
        input[:, :, bbx1:bbx2, bby1:bby2] = input[rand_index, :, bbx1:bbx2, bby1:bby2]
        # adjust lambda to exactly match pixel ratio
        lam = 1 - ((bbx2 - bbx1) * (bby2 - bby1) / (input.size()[-1] * input.size()[-2]))
        weights = np.zeros((input.shape[0], num_classes), dtype=np.float64)
        for i in range(input.shape[0]):
            weights[i, int(target_a[i])] += lam
            weights[i, int(target_b[i])] += 1.0 - lam
        box = (bbx1, bby1, bbx2, bby2)
    else:
        lam = 1.0
        weights = np.eye(num_classes, dtype=np.float64)[target.numpy()]
        box = None
    return input, torch.from_numpy(weights.astype(np.float32)), lam, box


def cutout_official(img, n_holes, length, randint_h, randint_w):
    """``Cutout.__call__(img)`` of util/cutout.py for one ``[C, H, W]`` image; ``randint_h[n]`` /
    ``randint_w[n]`` are hole ``n``'s ``np.random.randint(h)`` / ``np.random.randint(w)``."""
    h = img.size(1)
    w = img.size(2)

    mask = np.ones((h, w), np.float32)

    for n in range(n_holes):
        y = randint_h[n]
        x = randint_w[n]

        y1 = np.clip(y - length // 2, 0, h)
        y2 = np.clip(y + length // 2, 0, h)
        x1 = np.clip(x - length // 2, 0, w)
        x2 = np.clip(x + length // 2, 0, w)

        mask[y1:y2, x1:x2] = 0.0

    mask = torch.from_numpy(mask)
    mask = mask.expand_as(img)
    img = img * mask

    return img


def exact_side_span(c, s, n):
    """The toolkit's former (now ``box_rule="exact_side"``) layout: ``[c - s//2, c - s//2 + s)``."""
    lo = c - s // 2
    return int(np.clip(lo, 0, n)), int(np.clip(lo + s, 0, n))


# ---------------------------------------------------------------------------------------------
def _bits(x: torch.Tensor) -> torch.Tensor:
    """The raw bits of a float32 tensor (so -0.0 != 0.0 and NaNs compare)."""
    return x.contiguous().view(torch.int32)


def _one_box_draws(lam: float, row: int, col: int, perm: np.ndarray, h: int, w: int, applied: bool = True) -> CutDraws:
    side_h, side_w = cut_sides(torch.tensor([lam], dtype=torch.float64), h, w)
    return CutDraws(
        applied=torch.tensor([applied]),
        side_h=side_h,
        side_w=side_w,
        cy=torch.tensor([row]),
        cx=torch.tensor([col]),
        perm=torch.from_numpy(perm),
    )


def test_default_rule_is_the_references():
    assert DEFAULT_BOX_RULE == "reference" and set(BOX_RULES) == {"reference", "exact_side"}
    for name in (
        "cutmix",
        "cutmix_center_gaussian",
        "cutmix_fixed_size",
        "cutmix_scheduled",
        "cutmix_one_hot",
        "cutmix_complete_label",
        "feature_cutmix",
        "cutout",
    ):
        assert build_augmentation(name, 3).box_rule == "reference", name
        assert build_augmentation(name, 3, box_rule="exact_side").options()["box_rule"] == "exact_side"
        with pytest.raises(UserError, match="box_rule must be one of 'reference', 'exact_side'"):
            build_augmentation(name, 3, box_rule="exact")


def test_the_issue_example_at_224():
    """lam 0.8973, centre (88, 107), side 71: reference (53, 123, 72, 142); exact side +1."""
    perm = np.arange(2)
    x1, y1, x2, y2 = rand_bbox_cutmix_pytorch((2, 3, 224, 224), 0.8973, 88, 107)
    assert (x1, x2, y1, y2) == (53, 123, 72, 142)
    draws = _one_box_draws(0.8973, 88, 107, perm, 224, 224)
    assert int(draws.side_h[0]) == 71
    ref = build_augmentation("cutmix", 2).plan_from_draws(draws, 224, 224)
    assert ref.boxes[0].tolist() == [53, 123, 72, 142]
    exact = build_augmentation("cutmix", 2, box_rule="exact_side").plan_from_draws(draws, 224, 224)
    assert exact.boxes[0].tolist() == [53, 124, 72, 143]


@pytest.mark.parametrize("h,w", SIZES)
def test_cutmix_boxes_equal_rand_bbox_for_the_same_draws(h, w):
    rng = np.random.default_rng(h * 1000 + w)
    ref_aug = build_augmentation("cutmix", 4)
    exact_aug = build_augmentation("cutmix", 4, box_rule="exact_side")
    odd = clipped = differ = 0
    n = 3000
    for k in range(n):
        lam = float(rng.beta(1.0, 1.0)) if k % 3 else float(rng.uniform(0.0, 0.2))  # big boxes
        row, col = int(rng.integers(h)), int(rng.integers(w))
        draws = _one_box_draws(lam, row, col, np.arange(4), h, w)
        bbx1, bby1, bbx2, bby2 = rand_bbox_cutmix_pytorch((4, 3, h, w), lam, row, col)
        got = ref_aug.plan_from_draws(draws, h, w).boxes
        assert got.dtype == torch.int64 and got.shape == (4, 4)
        assert (got == torch.tensor([bbx1, bbx2, bby1, bby2])).all(), (lam, row, col)
        # the named option keeps the exact side
        sh, sw = int(draws.side_h[0]), int(draws.side_w[0])
        want = [*exact_side_span(row, sh, h), *exact_side_span(col, sw, w)]
        exact = exact_aug.plan_from_draws(draws, h, w).boxes[0].tolist()
        assert exact == want
        odd += (sh % 2) or (sw % 2)
        clipped += bbx1 == 0 or bby1 == 0 or bbx2 == h or bby2 == w
        differ += exact != got[0].tolist()
    assert odd > n // 4 and clipped > n // 10 and differ > n // 10  # the cases that matter ran


@pytest.mark.parametrize("h,w", SIZES)
def test_cutmix_images_and_label_weights_equal_cutmix_pytorch_bit_for_bit(h, w):
    b, k = 5, 7
    rng = np.random.default_rng(7 * h + w)
    gen = torch.Generator().manual_seed(h + w)
    aug = build_augmentation("cutmix", k, prob=0.8)
    n = 40 if h * w > 10000 else 150
    for step in range(n):
        images = torch.randn(b, 3, h, w, generator=gen)
        labels = torch.randint(0, k, (b,), generator=gen)
        r = float(rng.random())
        lam = float(rng.beta(1.0, 1.0))
        perm = rng.permutation(b)
        row, col = int(rng.integers(h)), int(rng.integers(w))
        ref_images, ref_soft, ref_lam, _ = cutmix_pytorch_step(
            images, labels, k, 1.0, 0.8, r, lam, torch.from_numpy(perm), row, col
        )

        draws = _one_box_draws(lam, row, col, perm, h, w, applied=r < aug.prob)
        plan = aug.plan_from_draws(draws, h, w)
        ours = plan.paste(images)
        soft = aug.mix_targets(torch.eye(k)[labels], plan)
        assert torch.equal(_bits(ours), _bits(ref_images)), step
        assert torch.equal(_bits(soft), _bits(ref_soft)), step
        our_lam = aug.label_lam(plan.fraction(), plan.applied)
        assert our_lam.dtype == torch.float64
        assert all(float(v) == float(ref_lam) for v in our_lam), (step, our_lam, ref_lam)


def test_call_draws_then_runs_the_deterministic_half():
    """``aug(...)`` / ``sample`` = ``plan_from_draws(draw(...))`` with the generator's draws."""
    b, k, h, w = 6, 4, 31, 45
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(b, 3, h, w, generator=gen)
    labels = torch.randint(0, k, (b,), generator=gen)
    for name in ("cutmix", "cutmix_center_gaussian", "cutmix_fixed_size", "cutmix_one_hot", "cutmix_complete_label"):
        for per_sample in (False, True):
            for rule in BOX_RULES:
                aug = build_augmentation(name, k, per_sample=per_sample, box_rule=rule)
                for seed in range(5):
                    draws = aug.draw(b, h, w, torch.Generator().manual_seed(seed))
                    plan = aug.plan_from_draws(draws, h, w)
                    got = aug.sample(b, h, w, torch.Generator().manual_seed(seed))
                    assert torch.equal(got.boxes, plan.boxes) and torch.equal(got.perm, plan.perm)
                    out, soft = aug(images, labels, generator=torch.Generator().manual_seed(seed))
                    assert torch.equal(out, plan.paste(images))
                    assert torch.equal(soft, aug.mix_targets(torch.eye(k)[labels], plan))


@pytest.mark.parametrize(
    "name",
    [
        "cutmix",
        "cutmix_center_gaussian",
        "cutmix_fixed_size",
        "cutmix_scheduled",
        "cutmix_one_hot",
        "cutmix_complete_label",
        "feature_cutmix",
    ],
)
@pytest.mark.parametrize("rule", ["reference", "exact_side"])
def test_every_variant_lays_boxes_out_by_the_rule(name, rule):
    """Whatever the variant draws (sides, centres), its boxes follow ``box_rule``."""
    h, w = 37, 50
    aug = build_augmentation(name, 4, per_sample=True, box_rule=rule)
    if name == "cutmix_scheduled":
        aug.progress = 1.0
    seen_odd = 0
    for seed in range(30):
        d = aug.draw(8, h, w, torch.Generator().manual_seed(seed))
        boxes = aug.plan_from_draws(d, h, w).boxes
        for i in range(8):
            cy, cx, sh, sw = (int(t[i]) for t in (d.cy, d.cx, d.side_h, d.side_w))
            if rule == "reference":
                want = [
                    np.clip(cy - sh // 2, 0, h),
                    np.clip(cy + sh // 2, 0, h),
                    np.clip(cx - sw // 2, 0, w),
                    np.clip(cx + sw // 2, 0, w),
                ]
            else:
                want = [*exact_side_span(cy, sh, h), *exact_side_span(cx, sw, w)]
            assert boxes[i].tolist() == [int(v) for v in want]
            seen_odd += (sh % 2) or (sw % 2)
    assert seen_odd > 0


def test_feature_cutmix_box_rule_reaches_the_input_box():
    images = torch.randn(4, 3, 33, 33)
    labels = torch.arange(4)
    for rule in BOX_RULES:
        f = build_augmentation("feature_cutmix", 4, layer=2, box_rule=rule)
        c = build_augmentation("cutmix", 4, box_rule=rule)
        for seed in range(10):
            plan = f.plan(images, labels, generator=torch.Generator().manual_seed(seed))
            ref = c.sample(4, 33, 33, torch.Generator().manual_seed(seed))
            assert torch.equal(plan.cut.boxes, ref.boxes)


def test_box_span_rules():
    c, s = torch.tensor([0, 5, 9, 5]), torch.tensor([3, 3, 4, 0])
    lo, hi = box_span(c, s, 10, "reference")
    assert lo.tolist() == [0, 4, 7, 5] and hi.tolist() == [1, 6, 10, 5]
    lo, hi = box_span(c, s, 10, "exact_side")
    assert lo.tolist() == [0, 4, 7, 5] and hi.tolist() == [2, 7, 10, 5]
    with pytest.raises(UserError, match="box_rule"):
        box_span(c, s, 10, "official")


# ---------------------------------------------------------------------------------------------
# Cutout
@pytest.mark.parametrize("h,w", [(224, 224), (32, 32), (45, 32)])
@pytest.mark.parametrize("length,n_holes", [(16, 1), (17, 1), (112, 1), (9, 3), (1, 2)])
def test_cutout_equals_util_cutout_bit_for_bit(h, w, length, n_holes):
    b = 6
    rng = np.random.default_rng(length * 10 + n_holes + h)
    gen = torch.Generator().manual_seed(length)
    aug = build_augmentation("cutout", 3, size=length, n_holes=n_holes)
    exact = build_augmentation("cutout", 3, size=length, n_holes=n_holes, box_rule="exact_side")
    differ = 0
    for _ in range(8 if h == 224 else 25):
        images = torch.randn(b, 3, h, w, generator=gen)  # negatives: img * 0 gives -0.0
        ys = rng.integers(h, size=(n_holes, b))
        xs = rng.integers(w, size=(n_holes, b))
        draws = CutoutDraws(applied=torch.ones(b, dtype=torch.bool), cy=torch.from_numpy(ys), cx=torch.from_numpy(xs))
        ours = aug.cut(images, draws)
        ref = torch.stack([cutout_official(images[i], n_holes, length, ys[:, i], xs[:, i]) for i in range(b)])
        assert torch.equal(_bits(ours), _bits(ref))
        # the named option: exactly `length` pixels before clipping
        holes = exact.holes(draws, h, w)
        for j in range(n_holes):
            for i in range(b):
                want = [*exact_side_span(int(ys[j, i]), length, h), *exact_side_span(int(xs[j, i]), length, w)]
                assert holes[j, i].tolist() == want
        differ += not torch.equal(exact.cut(images, draws), ours)
    assert (differ > 0) == (length % 2 == 1)


def test_cutout_call_draws_then_cuts_and_prob():
    images = torch.randn(8, 3, 20, 20)
    aug = build_augmentation("cutout", 2, size=7, n_holes=2, prob=0.5)
    for seed in range(5):
        d = aug.draw(8, 20, 20, torch.Generator().manual_seed(seed))
        assert d.cy.shape == (2, 8) and d.applied.shape == (8,)
        out, _ = aug(images, torch.zeros(8, dtype=torch.long), generator=torch.Generator().manual_seed(seed))
        assert torch.equal(_bits(out), _bits(aug.cut(images, d)))
        assert torch.equal(out[~d.applied], images[~d.applied])
    filled = build_augmentation("cutout", 2, size=7, fill=-3.0)
    out, _ = filled(images, torch.zeros(8, dtype=torch.long), generator=torch.Generator())
    assert ((out == -3.0).sum(dim=(1, 2, 3)) > 0).all()
