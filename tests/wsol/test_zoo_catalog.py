"""The zoo catalog (every field, every entry), ``wsol zoo list``, and the deeper ResNets it needs
(torchvision definitions, recognised from their keys and shapes, strict loading on the meta device)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from tests.wsol.zoo_server import checkpoint_bytes, zoo_env  # noqa: F401
from wsol.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CUTMIX = [
    "resnet50-baseline",
    "resnet50-cutmix",
    "resnet50-feature-cutmix",
    "resnet50-mixup",
    "resnet50-manifold-mixup",
    "resnet50-cutout",
    "resnet101-cutmix",
    "resnet152-cutmix",
    "resnext101-32x4d-cutmix",
]
TORCHVISION = ["resnet50-tv-v1", "resnet50-tv-v2"]
FIELDS = {
    "name",
    "arch",
    "arch_options",
    "num_classes",
    "augmentation",
    "source",
    "published",
    "url",
    "filename",
    "member",
    "sha256",
}


def test_zoo_list_json_has_every_entry_and_field(zoo_env, capsys):
    assert main(["zoo", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert set(CUTMIX + TORCHVISION) <= set(by_name)
    for row in rows:
        assert FIELDS <= set(row), row["name"]
        assert row["num_classes"] == 1000
        assert row["arch_options"] == {"layer4_stride": 2, "large_feature_map": False}
        assert row["published"]["top1_err"] > 0
        assert row["source"]["repository"] and row["source"]["paper"]
        assert row["sha256"] is None and row["recorded_sha256"] is None  # none published: recorded on first use
    published = {n: by_name[n]["published"] for n in by_name}
    assert published["resnet50-baseline"] == {
        "top1_err": 23.68,
        "top1_loc": 46.3,
        "loc_source": published["resnet50-baseline"]["loc_source"],
    }
    assert [published[n].get("top1_loc") for n in ("resnet50-mixup", "resnet50-cutout", "resnet50-cutmix")] == [
        45.84,
        46.69,
        47.25,
    ]
    assert "top1_loc" not in published["resnet50-feature-cutmix"]
    assert [published[n]["top1_err"] for n in CUTMIX] == [23.68, 21.40, 21.80, 22.58, 22.50, 22.93, 20.17, 19.20, 19.47]


def test_cutmix_links_download_and_name_what_they_give():
    from wsol.zoo import ZOO

    for name in CUTMIX:
        e = ZOO.get(name)
        assert e.url.startswith("https://www.dropbox.com/") and e.url.endswith("?dl=1"), name
        assert e.page == e.url.replace("?dl=1", "?dl=0")
        if "/sh/" in e.url:  # a shared folder: a zip of it, holding model_best.pth.tar
            assert e.filename.endswith(".zip") and e.member == "model_best.pth.tar"
        else:  # a single file: the file itself
            assert e.member is None and e.filename == os.path.basename(e.url.split("?")[0])
    assert ZOO.get("resnet152-cutmix").filename == "resnet152_cutmix_acc_80_80.pth"
    assert ZOO.get("resnext101-32x4d-cutmix").filename == "resnext_cutmix.pth.tar"
    filenames = [ZOO.get(n).filename for n in ZOO]
    assert len(set(filenames)) == len(filenames)  # one mirror folder holds them all


def test_torchvision_entries_match_torchvision():
    from torchvision.models import get_weight

    from wsol.zoo import ZOO

    for name, weights in (
        ("resnet50-tv-v1", "ResNet50_Weights.IMAGENET1K_V1"),
        ("resnet50-tv-v2", "ResNet50_Weights.IMAGENET1K_V2"),
    ):
        e = ZOO.get(name)
        w = get_weight(weights)
        assert (e.kind, e.torchvision_weights, e.url) == ("torchvision", weights, w.url)
        assert e.filename == os.path.basename(w.url) and e.sha256_prefix == e.filename.split("-")[1][:8]
        assert e.size_mb == pytest.approx(w.meta["_file_size"], abs=0.1)
        assert e.published.top1_err == pytest.approx(100 - w.meta["_metrics"]["ImageNet-1K"]["acc@1"], abs=0.01)


def test_study_lists_the_eight_resnet50s():
    from wsol.zoo import STUDIES

    s = STUDIES.get("imagenet-resnet50")
    assert s.entries == tuple(CUTMIX[:6] + TORCHVISION) and s.reference == "resnet50-baseline"
    assert s.preset == "cutmix"


def test_unknown_entry_is_one_line(zoo_env, capsys):
    from wsol.checkpoints import load_checkpoint
    from wsol.errors import UserError

    with pytest.raises(UserError, match="unknown zoo model 'nope'; choose from: resnet50-baseline"):
        load_checkpoint("zoo:nope")


# ------------------------------------------------------------------------------ deeper ResNets

_TV = {
    "resnet101": ("resnet101", {}),
    "resnet152": ("resnet152", {}),
    "resnext101_32x4d": ("ResNet", {"groups": 32, "width_per_group": 4, "layers": [3, 4, 23, 3]}),
}


def _torchvision_meta_state_dict(arch: str) -> dict:
    from torchvision.models import resnet as tv

    fn, kw = _TV[arch]
    with torch.device("meta"):
        if fn == "ResNet":
            layers = kw.pop("layers")
            model = tv.ResNet(tv.Bottleneck, layers, **kw)
            kw["layers"] = layers
        else:
            model = getattr(tv, fn)()
    return model.state_dict()


@pytest.mark.parametrize("arch", ["resnet101", "resnet152", "resnext101_32x4d"])
def test_deep_resnets_match_torchvision_and_are_recognised(arch, tmp_path):
    from wsol.checkpoints import infer_arch, load_checkpoint
    from wsol.models import create_model

    tv_sd = _torchvision_meta_state_dict(arch)
    with torch.device("meta"):
        ours = create_model(arch, 1000).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in tv_sd.items()}
    assert infer_arch(tv_sd) == (arch, {})
    # a CutMix-PyTorch-style file (module. prefix), every tensor a zero expanded to its shape
    sd = {f"module.{k}": torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in tv_sd.items()}
    path = tmp_path / "model_best.pth.tar"
    path.write_bytes(
        checkpoint_bytes({"epoch": 300, "arch": arch, "state_dict": sd, "best_err1": 20.0, "optimizer": {}})
    )
    model = load_checkpoint(path, map_location="meta")
    assert (model.arch, model.num_classes) == (arch, 1000)
    assert model.arch_options == {"large_feature_map": False, "layer4_stride": 2}
    feats = model.forward_features(torch.empty(1, 3, 224, 224, device="meta"))
    assert tuple(feats.shape) == (1, 2048, 7, 7)


def test_resnext_has_no_torchvision_weights():
    from wsol.errors import UserError
    from wsol.models import create_model

    with pytest.raises(UserError, match="no torchvision ImageNet weights"):
        create_model("resnext101_32x4d", 10, pretrained=True)
