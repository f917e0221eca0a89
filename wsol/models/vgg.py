"""VGG16-GAP (wsolevaluation's ``VggCam``).

``features`` is VGG16's conv stack without pool5: 13 3x3 convs (+ReLU) and the 2x2/2 max-pools
1-4, so a 224 input gives 14x14; ``large_feature_map=True`` removes pool4 as well (28x28) and
shifts the later ``features.N`` indices by one (24/26/28 -> 23/25/27), exactly as the published
checkpoints. Then ``conv6`` (3x3, 512->1024, pad 1) + ReLU = the feature map (non-negative), GAP,
``fc`` (1024->K). The VGG classifier is gone.
Init (wsolevaluation "he"): kaiming-normal fan-out convs, zero bias; fc N(0, 0.01), zero bias.
CAM = ``sum_c fc.weight[t, c] * F_c`` (no bias, no ReLU).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from wsol.models.base import WSOLModel, init_head_linear, linear_class_maps
from wsol.models.factory import MODELS
from wsol.models.pretrained import load_partial, torchvision_state_dict

_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]


def _make_features(large_feature_map: bool) -> tuple[nn.Sequential, list[int]]:
    """Conv stack and the stage boundaries (indices into it) after pool1, pool2, pool3, block4."""
    cfg = list(_CFG)
    if large_feature_map:
        del cfg[13]  # the 4th "M"
    layers: list[nn.Module] = []
    ends: list[int] = []
    in_ch, n_pool, n_conv = 3, 0, 0
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            n_pool += 1
            if n_pool <= 3:
                ends.append(len(layers))
            elif n_pool == 4:
                ends[-1] = len(layers)  # block 4 ends after pool4 when there is one
        else:
            layers += [nn.Conv2d(in_ch, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            in_ch = v
            n_conv += 1
            if n_conv == 10:  # conv4_3: end of block 4 (pool4 may extend it)
                ends.append(len(layers))
    return nn.Sequential(*layers), ends


class WSOLVGG16(WSOLModel):
    """VGG16-GAP; parameter names ``features.N.*``, ``conv6.*``, ``fc.*`` as wsolevaluation."""

    arch = "vgg16"
    cam_layer = "relu"

    def __init__(self, num_classes: int, large_feature_map: bool = False) -> None:
        super().__init__(num_classes, {"large_feature_map": bool(large_feature_map)})
        self.features, self._ends = _make_features(bool(large_feature_map))
        self.conv6 = nn.Conv2d(512, 1024, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=False)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1024, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        init_head_linear(self.fc)

    def _run(self, x: Tensor, start: int, stop: int) -> Tensor:
        for i in range(start, stop):
            x = self.features[i](x)
        return x

    def _last(self, x: Tensor) -> Tensor:
        x = self._run(x, self._ends[3], len(self.features))
        return self.relu(self.conv6(x))

    def stages(self) -> list[Callable[[Tensor], Tensor]]:
        e = [0] + self._ends
        return [lambda x, a=e[i], b=e[i + 1]: self._run(x, a, b) for i in range(4)] + [self._last]

    def forward_head(self, features: Tensor) -> Tensor:
        return self.fc(self.avgpool(features).flatten(1))

    def class_maps(self, features: Tensor, targets: Tensor) -> Tensor:
        return linear_class_maps(features, self.fc.weight, targets)


@MODELS.register("vgg16", help="VGG16-GAP with conv6 (wsolevaluation; 14x14 CAM at 224)")
def vgg16(num_classes: int, large_feature_map: bool = False, pretrained: bool = False) -> WSOLVGG16:
    """VGG16-GAP (conv6 3x3 512->1024 + ReLU, GAP, fc); ``large_feature_map`` drops pool4."""
    model = WSOLVGG16(num_classes, large_feature_map)
    if pretrained:
        tv = torchvision_state_dict("VGG16_Weights.IMAGENET1K_V1")
        tv_idx = sorted({int(k.split(".")[1]) for k in tv if k.startswith("features.")})
        our_idx = [i for i, m in enumerate(model.features) if isinstance(m, nn.Conv2d)]
        state = {
            f"features.{o}.{s}": tv[f"features.{t}.{s}"] for t, o in zip(tv_idx, our_idx) for s in ("weight", "bias")
        }
        load_partial(model, state, "vgg16 ImageNet init")
    return model
