"""``small_cnn``: a small, fast GAP CNN for the synthetic 64px CPU benchmark.

Five conv3x3-BN-ReLU stages (``stem``, ``layer1``..``layer4``) with default widths
16-32-64-96-128; ``stem`` and ``layer2`` have stride 2, so a 64x64 input gives a 16x16 feature
map (the output of ``layer4``, post-ReLU; total stride 4): the demo's CAM is 16x16, at least
the 14x14 that ResNet-50 (layer4 stride 1) gives on 224-pixel images; then GAP and ``fc``. About 0.19 M parameters and
~25 M multiply-adds per 64px image: roughly 250 training images/s on 2 busy CPU cores, i.e. about
a minute for 2,000 images x 8 epochs. ``widths`` (5 ints) scales it.
Init: kaiming-normal fan-out convs, BN 1/0, fc N(0, 0.01). CAM = ``sum_c fc.weight[t, c] * F_c``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from wsol.errors import UserError
from wsol.models.base import WSOLModel, init_head_linear, linear_class_maps
from wsol.models.factory import MODELS

DEFAULT_WIDTHS = (16, 32, 64, 96, 128)
_STRIDES = (2, 1, 2, 1, 1)
_NAMES = ("stem", "layer1", "layer2", "layer3", "layer4")


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
    )


class SmallCNN(WSOLModel):
    """Tiny GAP CNN; parameter names ``stem.0.weight``, ``layer1.1.running_mean``, ``fc.weight``..."""

    arch = "small_cnn"
    cam_layer = "layer4"

    def __init__(self, num_classes: int, widths: Sequence[int] = DEFAULT_WIDTHS) -> None:
        widths = [int(w) for w in widths]
        if len(widths) != 5 or min(widths) < 1:
            raise UserError(f"small_cnn: widths must be 5 positive integers, got {widths!r}")
        super().__init__(num_classes, {"widths": widths})
        c_in = 3
        for name, c_out, stride in zip(_NAMES, widths, _STRIDES):
            self.add_module(name, _block(c_in, c_out, stride))
            c_in = c_out
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        init_head_linear(self.fc)

    def stages(self) -> list[Callable[[Tensor], Tensor]]:
        return [lambda x, n=n: getattr(self, n)(x) for n in _NAMES]

    def forward_head(self, features: Tensor) -> Tensor:
        return self.fc(self.avgpool(features).flatten(1))

    def class_maps(self, features: Tensor, targets: Tensor) -> Tensor:
        return linear_class_maps(features, self.fc.weight, targets)


@MODELS.register("small_cnn", help="small fast GAP CNN for 64px synthetic data (16x16 CAM at 64)")
def small_cnn(num_classes: int, widths: Sequence[int] = DEFAULT_WIDTHS, pretrained: bool = False) -> SmallCNN:
    """Small GAP CNN (5 conv-BN-ReLU stages, strides 2,1,2,1,1). No pretrained weights exist."""
    if pretrained:
        raise UserError("small_cnn has no pretrained weights; train it from scratch")
    return SmallCNN(num_classes, widths)
