"""Upsampling + normalisation: agreement with OpenCV INTER_CUBIC (wsolevaluation) and hand cases."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from cam import CAMInputError
from cam.postprocess import normalize, postprocess, upsample


def _wsolevaluation(cam: np.ndarray, size: int = 224) -> np.ndarray:
    """wsolevaluation's inference.py: float64, cv2.resize INTER_CUBIC, then min-max."""
    out = cv2.resize(cam.astype(np.float64), (size, size), interpolation=cv2.INTER_CUBIC)
    out -= out.min()
    return out / out.max()


@pytest.mark.parametrize("hw", [7, 14, 28])
def test_bicubic_minmax_matches_opencv(hw):
    rng = np.random.default_rng(hw)
    cams = rng.normal(size=(6, hw, hw)).astype(np.float32) * rng.uniform(0.1, 50, size=(6, 1, 1)).astype(np.float32)
    ours = postprocess(torch.from_numpy(cams), (224, 224), "minmax")
    assert ours.dtype == torch.float32 and ours.shape == (6, 224, 224)
    ref = np.stack([_wsolevaluation(c) for c in cams])
    assert np.abs(ours.numpy() - ref).max() < 1e-5  # float32 on our side
    # in float64 the interpolation itself is the same formula (A = -0.75, half-pixel, replicate)
    up64 = upsample(torch.from_numpy(cams.astype(np.float64)), (224, 224)).numpy()
    cv64 = np.stack([cv2.resize(c.astype(np.float64), (224, 224), interpolation=cv2.INTER_CUBIC) for c in cams])
    assert np.abs(up64 - cv64).max() < 1e-12 * max(1.0, np.abs(cv64).max())


def test_non_square_size_matches_opencv():
    cam = np.random.default_rng(0).normal(size=(1, 5, 9))
    ours = upsample(torch.from_numpy(cam), (40, 72)).numpy()[0]
    ref = cv2.resize(cam[0], (72, 40), interpolation=cv2.INTER_CUBIC)  # cv2 takes (W, H)
    assert np.abs(ours - ref).max() < 1e-12


def test_hand_cases_minmax_and_max():
    m = torch.tensor([[[-1.0, 2.0], [1.0, 4.0]]])
    torch.testing.assert_close(postprocess(m, (2, 2), "minmax"), torch.tensor([[[0.0, 0.6], [0.4, 1.0]]]))
    # CAM 2016 convention: negatives clipped to 0, divided by the max
    torch.testing.assert_close(postprocess(m, (2, 2), "max"), torch.tensor([[[0.0, 0.5], [0.25, 1.0]]]))
    assert torch.equal(postprocess(-m.abs(), (2, 2), "max"), torch.zeros(1, 2, 2))  # max <= 0
    torch.testing.assert_close(normalize(m, "none"), m)


def test_constant_maps_become_zeros_and_range_is_unit():
    maps = torch.stack([torch.full((7, 7), 3.25), torch.randn(7, 7), torch.zeros(7, 7)])
    out = postprocess(maps, (224, 224), "minmax")
    assert torch.equal(out[0], torch.zeros(224, 224)) and torch.equal(out[2], torch.zeros(224, 224))
    assert float(out[1].min()) == 0.0 and float(out[1].max()) == 1.0
    assert torch.equal(postprocess(maps, (224, 224), "max")[0], torch.zeros(224, 224))  # same rule
    # top-k layout [B, k, h, w] is normalised per map
    both = postprocess(torch.stack([maps, maps * 2 + 1], 1), (16, 16), "minmax")
    assert both.shape == (3, 2, 16, 16)
    torch.testing.assert_close(both[:, 0], both[:, 1])


def test_non_finite_maps_name_the_image():
    maps = torch.randn(4, 7, 7)
    maps[2, 3, 3] = float("nan")
    with pytest.raises(CAMInputError, match="batch index 12 is not finite"):
        postprocess(maps, (14, 14), offset=10)
    maps[2, 3, 3] = float("inf")
    with pytest.raises(CAMInputError, match="batch index 2 is not finite"):
        postprocess(maps, (14, 14))
    with pytest.raises(CAMInputError, match="unknown normalize 'l2'"):
        normalize(maps, "l2")


def test_postprocess_many_equals_postprocess_per_mode():
    from cam import postprocess, postprocess_many

    g = torch.Generator().manual_seed(0)
    maps = torch.randn(3, 7, 7, generator=g)
    maps[1] = 2.0  # a constant map: zeros in every mode
    outs = postprocess_many(maps, (20, 24), ("minmax", "max", "none"))
    assert len(outs) == 3
    for mode, out in zip(("minmax", "max", "none"), outs):
        assert out.dtype == torch.float32 and out.shape == (3, 20, 24)
        assert torch.equal(out, postprocess(maps, (20, 24), mode))
