"""InceptionV3-CAM (wsolevaluation's ``InceptionCam``; protocol sections 1.2-1.3).

Torchvision's InceptionV3 trunk up to ``Mixed_6e`` with three changes: ``Conv2d_1a_3x3`` has
padding 1, ``Mixed_6a`` has stride 1 / padding 1, and after ``Mixed_5d`` a 3x3/2 ceil-mode
max-pool (no padding) unless ``large_feature_map``. At 224: 112 -> 110 -> pool 56 -> 54 -> pool 28
-> (pool 14). ``Mixed_7*``, ``AuxLogits`` and ``fc`` are gone. Head: ``SPG_A3_1b`` (3x3 768->1024
+ ReLU), ``SPG_A3_2b`` (3x3 1024->1024 + ReLU; its output is the feature map), ``SPG_A4`` (1x1
conv 1024->K, with bias) and GAP. Dropout 0.5 precedes each head conv in training only.
CAM = channel ``t`` of ``SPG_A4`` (bias included). Init: xavier-uniform convs, zero bias, BN 1/0.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.inception import BasicConv2d, InceptionA, InceptionC

from wsol.models.base import WSOLModel
from wsol.models.factory import MODELS
from wsol.models.pretrained import load_partial, torchvision_state_dict


class InceptionB(nn.Module):
    """Torchvision's InceptionB (same parameter names) with configurable stride and padding."""

    def __init__(self, in_channels: int, stride: int = 2, padding: int = 0) -> None:
        super().__init__()
        self.stride = stride
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=stride, padding=padding)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=stride, padding=padding)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=self.stride, padding=1)
        return torch.cat([b3, bd, bp], 1)


class WSOLInceptionV3(WSOLModel):
    """InceptionV3 with the SPG-style 1x1 class-map head."""

    arch = "inception_v3"
    cam_layer = "SPG_A3_2b"

    def __init__(self, num_classes: int, large_feature_map: bool = False) -> None:
        super().__init__(num_classes, {"large_feature_map": bool(large_feature_map)})
        self.large_feature_map = bool(large_feature_map)
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2, padding=1)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288, stride=1, padding=1)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.SPG_A3_1b = nn.Sequential(nn.Conv2d(768, 1024, 3, padding=1), nn.ReLU(inplace=True))
        self.SPG_A3_2b = nn.Sequential(nn.Conv2d(1024, 1024, 3, padding=1), nn.ReLU(inplace=True))
        self.SPG_A4 = nn.Conv2d(1024, num_classes, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _pool(x: Tensor, padding: int = 1) -> Tensor:
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=padding, ceil_mode=True)

    def _stage0(self, x: Tensor) -> Tensor:
        return self._pool(self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x))))

    def _stage1(self, x: Tensor) -> Tensor:
        return self._pool(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))

    def _stage2(self, x: Tensor) -> Tensor:
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))
        return x if self.large_feature_map else self._pool(x, padding=0)

    def _stage3(self, x: Tensor) -> Tensor:
        x = self.Mixed_6b(self.Mixed_6a(x))
        return self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(x)))

    def _stage4(self, x: Tensor) -> Tensor:
        x = self.SPG_A3_1b(F.dropout(x, 0.5, self.training))
        return self.SPG_A3_2b(F.dropout(x, 0.5, self.training))

    def stages(self) -> list[Callable[[Tensor], Tensor]]:
        return [self._stage0, self._stage1, self._stage2, self._stage3, self._stage4]

    def forward_head(self, features: Tensor) -> Tensor:
        return self.avgpool(self.SPG_A4(F.dropout(features, 0.5, self.training))).flatten(1)

    def class_maps(self, features: Tensor, targets: Tensor) -> Tensor:
        if targets.ndim != 1 or targets.shape[0] != features.shape[0]:
            raise ValueError(f"targets must be [B={features.shape[0]}], got shape {tuple(targets.shape)}")
        t = targets.to(features.device).long()
        w = self.SPG_A4.weight[t, :, 0, 0].to(features.dtype)
        b = self.SPG_A4.bias[t].to(features.dtype)
        return torch.einsum("bc,bchw->bhw", w, features) + b[:, None, None]


@MODELS.register("inception_v3", help="InceptionV3-CAM, SPG_A4 1x1 class-map head (14x14 CAM at 224)")
def inception_v3(num_classes: int, large_feature_map: bool = False, pretrained: bool = False) -> WSOLInceptionV3:
    """InceptionV3 CAM variant; ``large_feature_map`` skips the pool after Mixed_5d (28x28)."""
    model = WSOLInceptionV3(num_classes, large_feature_map)
    if pretrained:
        tv = torchvision_state_dict("Inception_V3_Weights.IMAGENET1K_V1")
        drop = ("Mixed_7", "AuxLogits", "fc.")
        load_partial(model, {k: v for k, v in tv.items() if not k.startswith(drop)}, "inception_v3 ImageNet init")
    return model
