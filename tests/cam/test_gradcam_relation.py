"""What the math says about grad-cam methods on a GAP + linear head, tested exactly.

For logits ``y_k = sum_c w_kc * mean_xy A_c(x, y) + b_k`` the gradient is constant over space,
``dy_k / dA_c(x, y) = w_kc / (h w)``. Hence, with ``CAM_k = sum_c w_kc A_c`` (no bias, no ReLU):

- Grad-CAM (before its ReLU) = ``CAM_k / (h w)``; HiResCAM is the same map; XGrad-CAM's weights
  ``sum(G A) / (sum A + eps)`` equal ``w_kc / (h w)`` up to eps;
- with grad-cam's ReLU: ``Grad-CAM = ReLU(CAM_k) / (h w)``, so after upsampling + min-max it
  equals vanilla CAM exactly when ``CAM_k >= 0`` everywhere, and ``minmax(bicubic(ReLU(CAM)))``
  in general (which differs where CAM has negative parts);
- LayerCAM = ``sum_c ReLU(w_kc) A_c / (h w)``;
- Ablation-CAM (zeroing channel c drops the logit by ``w_kc mean(A_c)``):
  ``sum_c w_kc mean(A_c) A_c / y_k``;
- InceptionV3-CAM (1x1 conv with bias, then GAP): Grad-CAM = ``ReLU(class map - bias) / (h w)``
  (tested in tests/wsol/test_models.py, next to the Inception model).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cam
from cam.postprocess import postprocess

IDX = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])


def _features(model, images):
    with torch.no_grad():
        return model.forward_features(images)


def test_gradcam_is_cam_over_hw(small, images):
    feats = _features(small, images)
    hw = feats.shape[-2] * feats.shape[-1]
    cam_raw, logits = cam.layer_cams(small, images, IDX, method="cam")
    grad_raw, logits2 = cam.layer_cams(small, images, IDX, method="gradcam", relu=False)
    assert torch.equal(logits, logits2)
    torch.testing.assert_close(grad_raw * hw, cam_raw, rtol=1e-9, atol=1e-12)
    hires, _ = cam.layer_cams(small, images, IDX, method="hirescam", relu=False)
    torch.testing.assert_close(hires, grad_raw, rtol=1e-9, atol=1e-12)
    xgrad, _ = cam.layer_cams(small, images, IDX, method="xgradcam", relu=False)
    torch.testing.assert_close(xgrad, grad_raw, rtol=1e-5, atol=1e-9)
    relu_raw, _ = cam.layer_cams(small, images, IDX, method="gradcam")
    torch.testing.assert_close(relu_raw * hw, cam_raw.clamp(min=0), rtol=1e-9, atol=1e-12)
    layer, _ = cam.layer_cams(small, images, IDX, method="layercam", relu=False)
    w = small.fc.weight[IDX].detach().clamp(min=0)
    torch.testing.assert_close(layer, torch.einsum("bc,bchw->bhw", w, feats) / hw, rtol=1e-9, atol=1e-12)


def test_final_maps_agree_exactly_when_cam_is_non_negative(images, small_factory):
    model = small_factory()
    with torch.no_grad():
        model.fc.weight.abs_()  # features are post-ReLU, so every CAM is >= 0
    vanilla = cam.compute_cams(model, images, IDX, method="cam")
    grad = cam.compute_cams(model, images, IDX, method="gradcam")
    assert float(vanilla.amax()) == 1.0
    torch.testing.assert_close(grad, vanilla, rtol=0, atol=1e-6)


def test_final_maps_differ_where_cam_is_negative(small, images):
    cam_raw, _ = cam.layer_cams(small, images, IDX, method="cam")
    negative = cam_raw.flatten(1).amin(1) < 0
    assert bool(negative.any()) and bool((~negative).any())  # both cases in this batch
    vanilla = cam.compute_cams(small, images, IDX, method="cam")
    grad = cam.compute_cams(small, images, IDX, method="gradcam")
    no_relu = cam.compute_cams(small, images, IDX, method="gradcam", relu=False)
    torch.testing.assert_close(no_relu, vanilla, rtol=0, atol=1e-6)
    torch.testing.assert_close(grad, postprocess(cam_raw.clamp(min=0), (32, 32)), rtol=0, atol=1e-6)
    diff = (grad - vanilla).abs().flatten(1).amax(1)
    assert bool((diff[negative] > 1e-2).all()) and bool((diff[~negative] < 1e-6).all())


def test_ablationcam_on_the_head_matches_the_formula(small, images):
    feats = _features(small, images)
    assert bool((feats.flatten(1).amin(1) == 0).all())  # grad-cam ablates by zeroing then
    raw, logits = cam.layer_cams(small, images, IDX, method="ablationcam", relu=False, batch_size=5)
    y = logits[torch.arange(8), IDX]
    weights = small.fc.weight[IDX].detach() * feats.mean((2, 3)) / y[:, None]
    expected = torch.einsum("bc,bchw->bhw", weights, feats)
    # grad-cam keeps the ablated scores in float32: (y - y_c) / y loses ~1e-7 * y / (y - y_c)
    torch.testing.assert_close(raw, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


def test_scorecam_matches_a_direct_computation(small_factory):
    model = small_factory(widths=(3, 4, 4, 4, 4), dtype=torch.float32)
    torch.manual_seed(2)
    x = torch.randn(2, 3, 16, 16)
    t = torch.tensor([3, 1])
    raw, _ = cam.layer_cams(model, x, t, method="scorecam", relu=False, batch_size=3)
    with torch.no_grad():
        feats = model.forward_features(x)
        up = torch.nn.functional.interpolate(feats, size=(16, 16), mode="bilinear", align_corners=True)
        lo, hi = up.amin((2, 3), keepdim=True), up.amax((2, 3), keepdim=True)
        masks = (up - lo) / (hi - lo + 1e-8)
        expected = []
        for i in range(2):
            scores = model(x[i][None] * masks[i][:, None])[:, t[i]]
            expected.append(torch.einsum("c,chw->hw", scores.softmax(0), feats[i]))
    torch.testing.assert_close(raw, torch.stack(expected), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", ["eigencam", "eigengradcam"])
def test_eigen_sign_correlates_with_channel_mean(small, images, method):
    raw, _ = cam.layer_cams(small, images, IDX, method=method, relu=False)
    feats = _features(small, images)
    ref = feats.mean(1)
    if method == "eigengradcam":
        # the factorised matrix is G * A with G = w / hw (constant over space)
        ref = (small.fc.weight[IDX].detach()[:, :, None, None] * feats).mean(1)
    m = raw - raw.mean((1, 2), keepdim=True)
    r = ref - ref.mean((1, 2), keepdim=True)
    assert bool(((m * r).sum((1, 2)) >= 0).all())
    # and it is grad-cam's principal-component map up to that sign
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    hw = feats.shape[-1] * feats.shape[-2]
    src = feats if method == "eigencam" else small.fc.weight[IDX][:, :, None, None].detach() * feats / hw
    proj = torch.from_numpy(get_2d_projection(src.float().numpy())).double()
    torch.testing.assert_close(raw.abs(), proj.abs(), rtol=1e-4, atol=1e-5)
    assert np.isfinite(raw.numpy()).all()
