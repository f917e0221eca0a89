"""ResNets with torchvision parameter names.

- ``resnet50``: wsolevaluation's ``ResNetCam`` layout by default: layer4 stride 1, so a 224x224
  input gives a 14x14 CAM; ``large_feature_map=True`` sets layer3's stride to 1 as well (28x28).
  ``layer4_stride=2`` gives the plain torchvision layout (7x7 at 224): the CutMix-PyTorch
  ImageNet ResNet-50.
- ``resnet18`` / ``resnet34``: torchvision layout (layer4 stride 2, 7x7 at 224), same options.
- ``resnet101`` / ``resnet152`` / ``resnext101_32x4d``: torchvision definitions (Bottleneck,
  ``[3, 4, 23, 3]`` / ``[3, 8, 36, 3]``; ResNeXt-101 32x4d = ``[3, 4, 23, 3]`` with ``groups=32``,
  ``width_per_group=4``), torchvision layout by default (layer4 stride 2): the CutMix-PyTorch
  ImageNet models.

Strides live in the first block of a stage (``conv2`` of a Bottleneck, ``conv1`` of a
BasicBlock, and the 1x1 ``downsample`` conv); stride changes never change a parameter shape, so
every checkpoint of the family loads into every layout.
Init: torchvision's (kaiming fan-out convs, BN 1/0); ``fc`` N(0, 0.01) weights, zero bias.
Feature map = ``layer4`` output (post-ReLU); CAM = ``sum_c fc.weight[t, c] * F_c`` (no bias).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn
from torchvision.models import resnet as tv_resnet

from wsol.errors import UserError
from wsol.models.base import WSOLModel, init_head_linear, linear_class_maps
from wsol.models.factory import MODELS
from wsol.models.pretrained import load_partial, torchvision_state_dict

_SPECS = {
    "resnet18": (tv_resnet.BasicBlock, [2, 2, 2, 2], "ResNet18_Weights.IMAGENET1K_V1"),
    "resnet34": (tv_resnet.BasicBlock, [3, 4, 6, 3], "ResNet34_Weights.IMAGENET1K_V1"),
    "resnet50": (tv_resnet.Bottleneck, [3, 4, 6, 3], "ResNet50_Weights.IMAGENET1K_V1"),
    "resnet101": (tv_resnet.Bottleneck, [3, 4, 23, 3], "ResNet101_Weights.IMAGENET1K_V1"),
    "resnet152": (tv_resnet.Bottleneck, [3, 8, 36, 3], "ResNet152_Weights.IMAGENET1K_V1"),
    "resnext101_32x4d": (tv_resnet.Bottleneck, [3, 4, 23, 3], None),  # torchvision has no 32x4d weights
}
# torchvision ResNet(...) keywords beyond (block, layers): ResNeXt's grouped 3x3 convs
_GROUPS = {"resnext101_32x4d": {"groups": 32, "width_per_group": 4}}


def _set_stage_stride(stage: nn.Sequential, stride: int) -> None:
    first = stage[0]
    strided = first.conv2 if isinstance(first, tv_resnet.Bottleneck) else first.conv1
    strided.stride = (stride, stride)
    first.stride = stride
    if first.downsample is not None:
        first.downsample[0].stride = (stride, stride)


class WSOLResNet(WSOLModel):
    """ResNet with the WSOL contract; module names as torchvision (``conv1``, ``layer1``..., ``fc``)."""

    cam_layer = "layer4"

    def __init__(self, arch: str, num_classes: int, large_feature_map: bool, layer4_stride: int) -> None:
        if layer4_stride not in (1, 2):
            raise UserError(f"{arch}: layer4_stride must be 1 or 2, got {layer4_stride!r}")
        super().__init__(
            num_classes, {"large_feature_map": bool(large_feature_map), "layer4_stride": int(layer4_stride)}
        )
        self.arch = arch
        block, layers, _ = _SPECS[arch]
        tv = tv_resnet.ResNet(block, layers, num_classes=num_classes, **_GROUPS.get(arch, {}))
        self.conv1, self.bn1, self.relu, self.maxpool = tv.conv1, tv.bn1, tv.relu, tv.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = tv.layer1, tv.layer2, tv.layer3, tv.layer4
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d(1), tv.fc
        _set_stage_stride(self.layer3, 1 if large_feature_map else 2)
        _set_stage_stride(self.layer4, int(layer4_stride))
        init_head_linear(self.fc)

    def _stem(self, x: Tensor) -> Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def stages(self) -> list[Callable[[Tensor], Tensor]]:
        return [
            self._stem,
            lambda x: self.layer1(x),
            lambda x: self.layer2(x),
            lambda x: self.layer3(x),
            lambda x: self.layer4(x),
        ]

    def forward_head(self, features: Tensor) -> Tensor:
        return self.fc(self.avgpool(features).flatten(1))

    def class_maps(self, features: Tensor, targets: Tensor) -> Tensor:
        return linear_class_maps(features, self.fc.weight, targets)


def _build(arch: str, num_classes: int, large_feature_map: bool, layer4_stride: int, pretrained: bool) -> WSOLResNet:
    if pretrained and _SPECS[arch][2] is None:
        raise UserError(
            f"{arch} has no torchvision ImageNet weights; load a checkpoint instead "
            "(e.g. --checkpoint zoo:resnext101-32x4d-cutmix)"
        )
    model = WSOLResNet(arch, num_classes, large_feature_map, layer4_stride)
    if pretrained:
        state = torchvision_state_dict(_SPECS[arch][2])
        if num_classes != 1000:  # wsolevaluation: keep the ImageNet fc only for 1000 classes
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        load_partial(model, state, f"{arch} ImageNet init")
    return model


@MODELS.register("resnet50", help="ResNet-50, wsolevaluation layout (layer4 stride 1: 14x14 CAM at 224)")
def resnet50(
    num_classes: int, large_feature_map: bool = False, layer4_stride: int = 1, pretrained: bool = False
) -> WSOLResNet:
    """ResNet-50; layer4 stride 1 (wsolevaluation) unless ``layer4_stride=2`` (torchvision/CutMix)."""
    return _build("resnet50", num_classes, large_feature_map, layer4_stride, pretrained)


@MODELS.register("resnet18", help="torchvision ResNet-18 (7x7 CAM at 224)")
def resnet18(
    num_classes: int, large_feature_map: bool = False, layer4_stride: int = 2, pretrained: bool = False
) -> WSOLResNet:
    """torchvision ResNet-18 layout."""
    return _build("resnet18", num_classes, large_feature_map, layer4_stride, pretrained)


@MODELS.register("resnet34", help="torchvision ResNet-34 (7x7 CAM at 224)")
def resnet34(
    num_classes: int, large_feature_map: bool = False, layer4_stride: int = 2, pretrained: bool = False
) -> WSOLResNet:
    """torchvision ResNet-34 layout."""
    return _build("resnet34", num_classes, large_feature_map, layer4_stride, pretrained)


@MODELS.register("resnet101", help="torchvision ResNet-101 (7x7 CAM at 224)")
def resnet101(
    num_classes: int, large_feature_map: bool = False, layer4_stride: int = 2, pretrained: bool = False
) -> WSOLResNet:
    """torchvision ResNet-101 layout (Bottleneck, [3, 4, 23, 3])."""
    return _build("resnet101", num_classes, large_feature_map, layer4_stride, pretrained)


@MODELS.register("resnet152", help="torchvision ResNet-152 (7x7 CAM at 224)")
def resnet152(
    num_classes: int, large_feature_map: bool = False, layer4_stride: int = 2, pretrained: bool = False
) -> WSOLResNet:
    """torchvision ResNet-152 layout (Bottleneck, [3, 8, 36, 3])."""
    return _build("resnet152", num_classes, large_feature_map, layer4_stride, pretrained)


@MODELS.register("resnext101_32x4d", help="ResNeXt-101 32x4d, torchvision definition (7x7 CAM at 224)")
def resnext101_32x4d(
    num_classes: int, large_feature_map: bool = False, layer4_stride: int = 2, pretrained: bool = False
) -> WSOLResNet:
    """torchvision ``ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=4)``."""
    return _build("resnext101_32x4d", num_classes, large_feature_map, layer4_stride, pretrained)
