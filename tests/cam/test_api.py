"""compute_cams / cams_and_logits: shapes, targets, one forward, batch invariance, state restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cam
from cam import CAM_METHODS, CAMInputError

IDX = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])


def test_methods_registered():
    assert CAM_METHODS.names()[0] == "cam"
    for name in ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam", "scorecam", "ablationcam"):
        assert name in CAM_METHODS and CAM_METHODS[name].convention
    with pytest.raises(CAMInputError, match="unknown CAM method 'gradcam3'.*choose from: cam, gradcam"):
        CAM_METHODS.get("gradcam3")


def test_vanilla_cam_is_one_forward_and_no_backward(small, images):
    calls = {"features": 0, "fc": 0}
    hooks = [
        small.layer4.register_forward_hook(lambda *a: calls.__setitem__("features", calls["features"] + 1)),
        small.fc.register_forward_hook(lambda *a: calls.__setitem__("fc", calls["fc"] + 1)),
    ]
    try:
        with torch.inference_mode():  # no autograd at all
            cams, logits = cam.cams_and_logits(small, images, IDX)
    finally:
        for h in hooks:
            h.remove()
    assert calls == {"features": 1, "fc": 1}
    assert cams.shape == (8, 32, 32) and cams.dtype == torch.float32 and cams.device == images.device
    assert float(cams.min()) == 0.0 and float(cams.max()) == 1.0
    with torch.no_grad():
        torch.testing.assert_close(logits, small(images), rtol=0, atol=0)


def test_targets_none_topk_and_size(small, images):
    cams, logits = cam.cams_and_logits(small, images, None, size=(20, 24))
    top1 = logits.argmax(1)
    assert cams.shape == (8, 20, 24)
    torch.testing.assert_close(cams, cam.compute_cams(small, images, top1, size=(20, 24)), rtol=0, atol=0)
    topk = logits.topk(2, dim=1).indices
    both = cam.compute_cams(small, images, topk, method="gradcam")
    assert both.shape == (8, 2, 32, 32)
    torch.testing.assert_close(
        both[:, 1], cam.compute_cams(small, images, topk[:, 1], method="gradcam"), rtol=0, atol=0
    )
    assert cam.compute_cams(small, images, IDX.tolist(), size=16).shape == (8, 16, 16)


@pytest.mark.parametrize("method", ["cam", "gradcam", "gradcam++", "layercam", "eigencam"])
def test_batch_size_1_and_8_identical(small, images, method):
    one = cam.compute_cams(small, images, IDX, method=method, batch_size=1)
    eight = cam.compute_cams(small, images, IDX, method=method, batch_size=8)
    assert torch.equal(one, eight)  # float64 model: bit-identical


def test_batch_size_float32_tolerance(images, small_factory):
    model = small_factory(dtype=torch.float32)
    x = images.float()
    one = cam.compute_cams(model, x, IDX, batch_size=1)
    eight = cam.compute_cams(model, x, IDX, batch_size=8)
    # float32 convolutions may sum in a batch-size-dependent order: measured <= 1e-6
    torch.testing.assert_close(one, eight, rtol=0, atol=5e-6)


def test_heavy_method_on_tiny_model_is_finite_and_unit_range(small_factory):
    model = small_factory(widths=(3, 4, 4, 4, 4))
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    cams = cam.compute_cams(model, x, torch.tensor([1, 2]), method="scorecam", batch_size=2)
    assert cams.shape == (2, 16, 16) and bool(torch.isfinite(cams).all())
    assert float(cams.min()) >= 0 and float(cams.max()) <= 1


def _snapshot(model: nn.Module):
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())
    modes = [m.training for m in model.modules()]
    grads = [p.grad is None for p in model.parameters()]
    req = [p.requires_grad for p in model.parameters()]
    return hooks, modes, grads, req


@pytest.mark.parametrize("exc", [RuntimeError, IndexError])  # grad-cam's __exit__ swallows IndexError
def test_state_restored_after_an_exception_inside_a_method(small, images, monkeypatch, exc):
    import pytorch_grad_cam

    small.train()
    small.layer2.eval()  # a mixed state must come back as it was
    before = _snapshot(small)
    seen = {}

    def boom(self, *args, **kwargs):
        seen["training"] = self.model.training
        raise exc("inside the method")

    monkeypatch.setattr(pytorch_grad_cam.GradCAM, "get_cam_weights", boom)
    with pytest.raises(exc, match="inside the method"):
        cam.compute_cams(small, images, IDX, method="gradcam")
    assert seen == {"training": False}  # the method ran in eval mode
    assert _snapshot(small) == before


class _Plain(nn.Module):
    """A classifier without the WSOL contract: the hooked path with ``layer=``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def test_hooked_path_matches_and_removes_its_hook(small, images):
    plain = _Plain(small)
    wsol_maps = cam.compute_cams(small, images, IDX, method="gradcam")
    hooked = cam.compute_cams(plain, images, IDX, method="gradcam", layer="net.layer4")
    torch.testing.assert_close(hooked, wsol_maps, rtol=0, atol=1e-6)
    plain.train()
    before = _snapshot(plain)
    with pytest.raises(RuntimeError):
        cam.compute_cams(plain, images[:, :2], IDX, method="gradcam", layer="net.layer4")  # bad channels
    assert _snapshot(plain) == before
    with pytest.raises(CAMInputError, match="method 'cam' needs a wsol model"):
        cam.compute_cams(plain, images, IDX, method="cam")
    with pytest.raises(CAMInputError, match="no sub-module named 'net.layer9'"):
        cam.compute_cams(plain, images, IDX, method="gradcam", layer="net.layer9")


def test_non_finite_cam_names_the_image(small, images):
    bad = images.clone()
    bad[3, 0, 5, 5] = float("nan")
    with pytest.raises(CAMInputError, match="batch index 3 is not finite"):
        cam.compute_cams(small, bad, IDX, batch_size=2)


def test_bad_targets_and_options(small, images):
    with pytest.raises(CAMInputError, match="target 9 of image at batch index 1 is outside the model's 5 classes"):
        cam.compute_cams(small, images[:2], torch.tensor([0, 9]))
    with pytest.raises(CAMInputError, match="integer class indices"):
        cam.compute_cams(small, images[:2], torch.tensor([0.0, 1.0]))
    with pytest.raises(CAMInputError, match=r"shape \[B\] or \[B, k\] with B=2, got \(3,\)"):
        cam.compute_cams(small, images[:2], torch.tensor([0, 1, 2]))
    with pytest.raises(CAMInputError, match="takes no option.*'relu'"):
        cam.compute_cams(small, images[:2], torch.tensor([0, 1]), method="cam", relu=False)
    with pytest.raises(CAMInputError, match=r"images must be a float tensor \[B, C, H, W\]"):
        cam.compute_cams(small, images[0], torch.tensor([0]))
    with pytest.raises(CAMInputError, match="unknown normalize"):
        cam.compute_cams(small, images[:2], torch.tensor([0, 1]), normalize="z")
    with torch.inference_mode(), pytest.raises(CAMInputError, match="needs gradients"):
        cam.compute_cams(small, images[:2], torch.tensor([0, 1]), method="gradcam")


def test_bf16_autocast_and_channels_last_on_cpu(images, small_factory):
    model = small_factory(dtype=torch.float32)
    x = images.float()
    ref = cam.compute_cams(model, x, IDX)
    cl = cam.compute_cams(model.to(memory_format=torch.channels_last), x, IDX, channels_last=True)
    torch.testing.assert_close(cl, ref, rtol=0, atol=1e-5)
    amp, logits = cam.cams_and_logits(model, x, IDX, amp_dtype=torch.bfloat16)
    assert amp.dtype == torch.float32 and logits.dtype == torch.float32
    assert float((amp - ref).abs().mean()) < 0.03  # bf16 features: ~3 significant digits
