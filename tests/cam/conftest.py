"""Tiny seeded WSOL models for the CAM tests (cam/ itself never imports wsol; the tests may)."""

from __future__ import annotations

import pytest
import torch


def make_small(seed: int = 0, dtype: torch.dtype = torch.float64, widths=(4, 6, 8, 8, 12), num_classes: int = 5):
    from wsol.models import create_model

    torch.manual_seed(seed)
    model = create_model("small_cnn", num_classes, widths=widths).to(dtype).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.3)
        model.fc.weight.normal_(0.0, 0.5)
        model.fc.bias.uniform_(-1.0, 1.0)
    return model


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every CAM test runs with one intra-op thread (see ``one_torch_thread``)."""


@pytest.fixture
def small_factory():
    """``small_factory(seed=0, dtype=float64, widths=..., num_classes=5)`` -> a seeded small_cnn."""
    return make_small


@pytest.fixture
def small():
    return make_small()


@pytest.fixture
def images():
    torch.manual_seed(1)
    return torch.randn(8, 3, 32, 32, dtype=torch.float64)
