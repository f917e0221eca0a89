"""wsol.model_info.cam_size: the feature-map size from a meta-device forward, else a real one."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wsol.model_info import _meta_cam_size, cam_size
from wsol.models import create_model


@pytest.mark.parametrize("arch", ["small_cnn", "resnet18", "vgg16", "inception_v3"])
@pytest.mark.parametrize("side", [64, 224])
def test_meta_forward_gives_the_size_of_a_real_forward(arch, side):
    torch.manual_seed(0)
    model = create_model(arch, 5).eval()
    with torch.no_grad():
        real = model.forward_features(torch.zeros(1, 3, side, side)).shape[-2:]
    assert _meta_cam_size(model, (side, side)) == list(real)
    model.train()
    assert cam_size(model, (side, side)) == list(real)
    assert model.training  # restored
    assert all(p.device.type == "cpu" for p in model.parameters())  # the model itself stays put


class _DataDependent(nn.Module):
    """forward_features whose shape depends on the values: the meta device cannot run it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        f = self.conv(x)
        keep = int((x.abs().sum() >= 0).item()) + 1  # .item() needs real data
        return f[..., ::keep, ::keep]


def test_a_model_the_meta_device_cannot_run_is_really_run():
    model = _DataDependent().train()
    with pytest.raises(RuntimeError):  # torch: "Tensor.item() cannot be called on meta tensors"
        _meta_cam_size(model, (32, 32))
    assert cam_size(model, (32, 32)) == [8, 8]
    assert model.training


def test_no_forward_features_no_size():
    assert cam_size(nn.Linear(2, 2), (8, 8)) is None
