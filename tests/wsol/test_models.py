"""WSOL model registry and contract: shapes per layout, stages, class maps, options."""

from __future__ import annotations

import pytest
import torch

from wsol.errors import UserError
from wsol.models import MODELS, WSOLModel, create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _meta_features(arch: str, size: int = 224, **options) -> tuple[torch.Size, ...]:
    with torch.device("meta"):
        model = create_model(arch, 10, **options).eval()
        x = torch.empty(1, 3, size, size)
        captured = {}

        def hook(_m, _i, out):
            captured["out"] = out.shape

        model.get_submodule(model.cam_layer).register_forward_hook(hook)
        feats = model.forward_features(x)
        logits = model(x)
    return feats.shape, captured["out"], logits.shape


@pytest.mark.parametrize(
    "arch,options,hw",
    [
        ("resnet50", {}, 14),
        ("resnet50", {"large_feature_map": True}, 28),
        ("resnet50", {"layer4_stride": 2}, 7),
        ("vgg16", {}, 14),
        ("vgg16", {"large_feature_map": True}, 28),
        ("inception_v3", {}, 14),
        ("inception_v3", {"large_feature_map": True}, 28),
        ("resnet18", {}, 7),
        ("resnet34", {}, 7),
        ("resnet18", {"layer4_stride": 1}, 14),
    ],
)
def test_feature_map_size_at_224(arch, options, hw):
    feats, hooked, logits = _meta_features(arch, **options)
    assert tuple(feats[-2:]) == (hw, hw)
    assert hooked == feats  # cam_layer names the module whose output is the feature map
    assert tuple(logits) == (1, 10)


def test_small_cnn_is_16x16_at_64():
    feats, hooked, _ = _meta_features("small_cnn", size=64)
    assert tuple(feats) == (1, 128, 16, 16) and hooked == feats


def test_registry_and_errors():
    assert MODELS.names() == [
        "resnet50",
        "resnet18",
        "resnet34",
        "resnet101",
        "resnet152",
        "resnext101_32x4d",
        "vgg16",
        "inception_v3",
        "small_cnn",
    ]
    with pytest.raises(UserError, match="unknown model 'resnet999'"):
        create_model("resnet999", 3)
    with pytest.raises(UserError, match="does not take option.*'dropout'.*accepts: widths, pretrained"):
        create_model("small_cnn", 3, dropout=0.5)
    with pytest.raises(UserError, match="num_classes"):
        create_model("small_cnn", 0)
    with pytest.raises(UserError, match="layer4_stride"):
        create_model("resnet18", 3, layer4_stride=3)
    with pytest.raises(UserError, match="widths"):
        create_model("small_cnn", 3, widths=(8, 8))


def _small(seed: int = 0, dtype=torch.float64) -> WSOLModel:
    torch.manual_seed(seed)
    model = create_model("small_cnn", 5, widths=(4, 6, 8, 8, 12)).to(dtype).eval()
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model


def test_contract_on_small_cnn():
    model = _small()
    x = torch.randn(3, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert torch.equal(model(x), model.forward_head(feats))
        stages = model.stages()
        assert len(stages) >= 5
        y = x
        for s in stages:
            y = s(y)
        assert torch.equal(y, feats)
        t = torch.tensor([0, 4, 2])
        maps = model.class_maps(feats, t)
        assert maps.shape == (3, 16, 16)
        # CAM definition: sum_c w[t, c] F_c, no bias; its spatial mean + bias is the logit
        expected = (model.fc.weight[t][:, :, None, None] * feats).sum(1)
        torch.testing.assert_close(maps, expected, rtol=0, atol=1e-12)
        logits = model(x)
        torch.testing.assert_close(maps.mean((1, 2)) + model.fc.bias[t], logits[torch.arange(3), t], rtol=0, atol=1e-12)
    assert model.arch == "small_cnn" and model.arch_options == {"widths": [4, 6, 8, 8, 12]}
    again = create_model(model.arch, model.num_classes, **model.arch_options)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_inception_class_map_includes_bias_and_averages_to_logit():
    torch.manual_seed(0)
    model = create_model("inception_v3", 4).eval()
    with torch.no_grad():
        model.SPG_A4.bias.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
        model.SPG_A4.weight.mul_(20)
        x = torch.randn(2, 3, 75, 75)
        feats = model.forward_features(x)
        t = torch.tensor([2, 1])
        maps = model.class_maps(feats, t)
        full = model.SPG_A4(feats)
        torch.testing.assert_close(maps, full[torch.arange(2), t], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(maps.mean((1, 2)), model(x)[torch.arange(2), t], rtol=1e-5, atol=1e-5)
    assert model.cam_layer == "SPG_A3_2b" and len(model.stages()) == 5
    # the gradient of GAP(1x1 conv) is W/(hw): Grad-CAM = ReLU(class map - bias) / (hw)
    import cam

    grad, _ = cam.layer_cams(model, x, t, method="gradcam")
    hw = maps.shape[-1] * maps.shape[-2]
    expected = (maps - model.SPG_A4.bias[t][:, None, None].detach()).clamp(min=0) / hw
    torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6)
    assert float(grad.amax()) > 0


def test_vgg_stages_and_class_maps():
    torch.manual_seed(0)
    model = create_model("vgg16", 3, large_feature_map=True).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        y = x
        sizes = []
        for s in model.stages():
            y = s(y)
            sizes.append(tuple(y.shape[1:]))
        assert sizes == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 8, 8), (1024, 8, 8)]
        assert torch.equal(y, model.forward_features(x))
        assert bool((y >= 0).all())  # conv6 + ReLU
        maps = model.class_maps(y, torch.tensor([1]))
        torch.testing.assert_close(maps.mean((1, 2)) + model.fc.bias[1], model(x)[:, 1], rtol=1e-5, atol=1e-5)


def test_resnet18_matches_torchvision_and_stride_option():
    import torchvision

    torch.manual_seed(0)
    tv = torchvision.models.resnet18(num_classes=7).eval()
    ours = create_model("resnet18", 7).eval()
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), rtol=0, atol=0)
    with torch.device("meta"):
        s1 = create_model("resnet18", 7, layer4_stride=1)
    assert s1.layer4[0].conv1.stride == (1, 1) and s1.layer4[0].downsample[0].stride == (1, 1)
    assert s1.layer3[0].conv1.stride == (2, 2) and ours.layer4[0].conv1.stride == (2, 2)


def test_pretrained_init_mapping_offline(monkeypatch):
    """ImageNet init without downloading: the torchvision state dict is replaced by a local one."""
    import torchvision
    from torchvision.models import vgg as tv_vgg

    import wsol.models.resnet as resnet_mod
    import wsol.models.vgg as vgg_mod

    torch.manual_seed(0)
    tv_resnet = torchvision.models.resnet18().state_dict()
    monkeypatch.setattr(resnet_mod, "torchvision_state_dict", lambda name: dict(tv_resnet))
    same = create_model("resnet18", 1000, pretrained=True)
    assert all(torch.equal(v, tv_resnet[k]) for k, v in same.state_dict().items())
    cub = create_model("resnet18", 200, pretrained=True)  # fc re-initialised, N(0, 0.01)
    assert torch.equal(cub.layer4[1].conv2.weight, tv_resnet["layer4.1.conv2.weight"])
    assert cub.fc.weight.shape == (200, 512) and float(cub.fc.weight.detach().std()) < 0.02

    features = tv_vgg.make_layers(tv_vgg.cfgs["D"])  # torchvision VGG16 conv stack, indices 0..30
    tv_features = {f"features.{k}": v for k, v in features.state_dict().items()}
    monkeypatch.setattr(vgg_mod, "torchvision_state_dict", lambda name: dict(tv_features))
    lfm = create_model("vgg16", 200, pretrained=True, large_feature_map=True)
    # pool4 is gone: torchvision's conv 24/26/28 land on 23/25/27
    assert torch.equal(lfm.features[23].weight, tv_features["features.24.weight"])
    assert torch.equal(lfm.features[27].bias, tv_features["features.28.bias"])
    assert torch.equal(lfm.features[21].weight, tv_features["features.21.weight"])
